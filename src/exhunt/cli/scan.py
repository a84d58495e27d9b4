"""`exhunt scan`: find Exchange servers and their build, non-intrusively, within scope."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer

from exhunt.cli.common import EXIT_USAGE, Format, error, failures, format_option, plain, wanted

if TYPE_CHECKING:
    from exhunt.scan.engine import Result


def _ports(text: str) -> tuple[int, ...]:
    try:
        ports = tuple(int(p) for p in text.replace(" ", "").split(",") if p)
    except ValueError:
        raise typer.BadParameter(f"ports must be numbers: {text!r}") from None
    if not ports or any(not 0 < p < 65536 for p in ports):
        raise typer.BadParameter(f"ports must be 1-65535: {text!r}")
    return ports


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[IO[bytes]]:
    if path is None:
        yield sys.stdout.buffer
        return
    from exhunt.scan.output import repair_tail

    repair_tail(path)
    with path.open("ab") as fh:
        yield fh


def register(app: typer.Typer, lab: typer.Typer) -> None:
    """Add `scan` to the top-level app."""
    del lab

    @app.command("scan")
    def scan_cmd(
        targets: Annotated[
            list[str] | None,
            typer.Argument(
                help="hosts, IPs, CIDRs, host:port, @file (masscan JSON, ZMap CSV "
                "or one per line), '-' for standard input"
            ),
        ] = None,
        ports: Annotated[str, typer.Option("--ports", "-p", help="ports, comma-separated")] = "443",
        scope_file: Annotated[
            Path | None, typer.Option("--scope", help="file of IPs/CIDRs/names in scope")
        ] = None,
        exclude_file: Annotated[
            Path | None, typer.Option("--exclude", help="exclusion (opt-out) list")
        ] = None,
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="JSONL file; a rerun resumes it")
        ] = None,
        fmt: Annotated[Format, format_option(Format.JSONL)] = Format.JSONL,
        concurrency: Annotated[int, typer.Option(help="endpoints in flight")] = 256,
        rate: Annotated[float, typer.Option(help="max requests/s overall, 0 = no limit")] = 0.0,
        per_host: Annotated[int, typer.Option(help="requests in flight per IP")] = 2,
        host_delay: Annotated[float, typer.Option(help="seconds between requests to one IP")] = 0.0,
        connect_timeout: Annotated[float, typer.Option(help="seconds")] = 5.0,
        read_timeout: Annotated[float, typer.Option(help="seconds without a byte")] = 10.0,
        timeout: Annotated[float, typer.Option(help="seconds for one request")] = 20.0,
        target_timeout: Annotated[float, typer.Option(help="seconds for one endpoint")] = 90.0,
        max_body: Annotated[int, typer.Option(help="bytes read of a response body")] = 262144,
        retries: Annotated[int, typer.Option(help="retries on connection errors")] = 1,
        dask: Annotated[
            str | None, typer.Option("--dask", help="Dask scheduler, tcp://HOST:PORT")
        ] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    ) -> None:
        """Find Exchange servers and their build, non-intrusively, within scope."""
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from exhunt.scan.engine import ScanOptions, run_scan
        from exhunt.scan.output import JsonlSink, done_keys
        from exhunt.scan.scope import build_scope
        from exhunt.scan.targets import count_endpoints, endpoints, gather

        wanted(fmt, Format.JSONL)
        tokens = list(targets or [])
        stdin_text = None
        if "-" in tokens or (not tokens and not sys.stdin.isatty()):
            stdin_text = sys.stdin.read()
            if not tokens:
                tokens = ["-"]
        if not tokens:
            error("no targets (give hosts, @file or pipe a list)")
            raise typer.Exit(EXIT_USAGE)
        specs, problems = gather(tokens, stdin_text)
        for p in problems[:50]:
            typer.echo(plain(f"warning: {p.source}: {p.message}"), err=True)
        if len(problems) > 50:
            typer.echo(f"warning: {len(problems) - 50} more target problems", err=True)
        if not specs:
            error("no usable targets")
            raise typer.Exit(EXIT_USAGE)
        try:
            scope = build_scope(specs, scope_file, exclude_file)
        except (OSError, ValueError) as e:
            error(f"scope: {e}")
            raise typer.Exit(EXIT_USAGE) from None
        opts = ScanOptions(
            ports=_ports(ports), concurrency=max(1, concurrency), rate=max(0.0, rate),
            per_host=max(1, per_host), host_delay=max(0.0, host_delay),
            connect_timeout=connect_timeout, read_timeout=read_timeout,
            request_timeout=timeout, target_timeout=target_timeout,
            max_body=max(1024, max_body), retries=max(0, retries),
        )  # fmt: skip
        skip = done_keys(output) if output else set()
        todo = (ep for ep in endpoints(specs, opts.ports) if ep.key not in skip)
        total = max(0, count_endpoints(specs, opts.ports) - len(skip))
        show = not quiet and sys.stderr.isatty()
        err_console = Console(stderr=True)
        with _output(output) as stream:
            sink = JsonlSink(stream)
            progress = Progress(
                TextColumn("scan"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=err_console, disable=not show, transient=False,
            )  # fmt: skip
            with progress:
                task = progress.add_task("scan", total=total or None)

                def emit(result: Result) -> None:
                    sink(result)
                    progress.advance(task)

                with failures():
                    if dask:
                        from exhunt.scan.shard import scan_on_dask

                        scan_on_dask(dask, list(todo), scope, opts, emit)
                    else:
                        asyncio.run(run_scan(todo, scope, opts, emit))
        if skip and not quiet:
            typer.echo(f"resumed: {len(skip)} endpoints already in {output}", err=True)
