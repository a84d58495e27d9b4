"""`exhunt builds`, `exhunt scan` and `exhunt lab fleet`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from exhunt.errors import UsageError
from exhunt.intel import builds_cli
from exhunt.scan.engine import Result, ScanOptions, run_scan
from exhunt.scan.output import JsonlSink, done_keys, repair_tail
from exhunt.scan.scope import build_scope
from exhunt.scan.targets import count_endpoints, endpoints, gather


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
    repair_tail(path)
    with path.open("ab") as fh:
        yield fh


def register(app: typer.Typer, lab: typer.Typer) -> None:
    """Add `builds` and `scan` to the top-level app and `fleet` to `exhunt lab`."""

    @app.command("builds")
    def builds_cmd(
        builds: Annotated[list[str], typer.Argument(
            help="Exchange builds, e.g. 15.1.2176.9 or 15.1.2176; '-' reads one per line "
            "from standard input")] = [],  # noqa: B006 (typer reads the default, never changes it)
        fmt: Annotated[str, typer.Option(
            "--format", help="text, json (one object for one build, else an array) or "
            "jsonl")] = "text",
        table: Annotated[Path | None, typer.Option(
            help="explain with this build table (exchange_builds.csv's layout)")] = None,
        check_table: Annotated[Path | None, typer.Option(
            "--check-table", help="check a build table and say what is wrong with it")] = None,
    ) -> None:
        """Explain Exchange builds: product, CU, update, status per CVE, what to install."""
        try:
            if check_table is not None:
                raise typer.Exit(builds_cli.check(check_table, sys.stdout))
            local = builds_cli.local_table(table) if table is not None else None
            status = builds_cli.run(builds, fmt, sys.stdout, sys.stderr, sys.stdin, local)
        except builds_cli.UsageProblem as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        if status:
            raise typer.Exit(status)

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
        fmt: Annotated[str, typer.Option("--format", help="jsonl")] = "jsonl",
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
        if fmt != "jsonl":
            typer.echo("error: --format jsonl is the only scan format", err=True)
            raise typer.Exit(2)
        tokens = list(targets or [])
        stdin_text = None
        if "-" in tokens or (not tokens and not sys.stdin.isatty()):
            stdin_text = sys.stdin.read()
            if not tokens:
                tokens = ["-"]
        if not tokens:
            typer.echo("error: no targets (give hosts, @file or pipe a list)", err=True)
            raise typer.Exit(2)
        specs, problems = gather(tokens, stdin_text)
        for p in problems[:50]:
            typer.echo(f"warning: {p.source}: {p.message}", err=True)
        if len(problems) > 50:
            typer.echo(f"warning: {len(problems) - 50} more target problems", err=True)
        if not specs:
            typer.echo("error: no usable targets", err=True)
            raise typer.Exit(2)
        try:
            scope = build_scope(specs, scope_file, exclude_file)
        except (OSError, ValueError) as e:
            typer.echo(f"error: scope: {e}", err=True)
            raise typer.Exit(2) from None
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

                try:
                    if dask:
                        from exhunt.scan.shard import scan_on_dask

                        scan_on_dask(dask, list(todo), scope, opts, emit)
                    else:
                        asyncio.run(run_scan(todo, scope, opts, emit))
                except UsageError as e:
                    typer.echo(f"error: {e}", err=True)
                    raise typer.Exit(2) from None
        if skip and not quiet:
            typer.echo(f"resumed: {len(skip)} endpoints already in {output}", err=True)

    @lab.command("fleet")
    def fleet_cmd(
        count: Annotated[int, typer.Option("--count", "-n", help="number of servers")] = 20,
        modes: Annotated[
            str | None, typer.Option(help="comma-separated modes (default: a realistic mix)")
        ] = None,
        seed: Annotated[int, typer.Option(help="seed for builds and modes")] = 1,
        manifest: Annotated[
            Path | None, typer.Option(help="write the host list (JSONL) here, not stdout")
        ] = None,
        duration: Annotated[float, typer.Option(help="seconds to run; 0 = until Ctrl-C")] = 0.0,
    ) -> None:
        """Start simulated OWA front ends on loopback (127.x.y.z) for tests and demos."""
        from exhunt.lab.fleet import ALL_MODES, Fleet

        chosen = tuple(m.strip() for m in modes.split(",") if m.strip()) if modes else None
        if chosen and any(m not in ALL_MODES for m in chosen):
            typer.echo(f"error: modes are {', '.join(ALL_MODES)}", err=True)
            raise typer.Exit(2)

        async def serve() -> None:
            async with Fleet(count, modes=chosen, seed=seed) as hosts:
                lines = [json.dumps(h.as_dict()) for h in hosts]
                if manifest:
                    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
                else:
                    for line in lines:
                        typer.echo(line)
                typer.echo(f"fleet of {len(hosts)} servers up; Ctrl-C to stop", err=True)
                if duration > 0:
                    await asyncio.sleep(duration)
                else:
                    await asyncio.Event().wait()

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve())
