"""The `exhunt` command line: hunt, scan, coordinate, and the lab that feeds them."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from exhunt.hunt.engine import Progress as ProgressSink
from exhunt.hunt.engine import hunt
from exhunt.hunt.report import report_html, report_json, report_text
from exhunt.model import HuntReport

app = typer.Typer(
    help="Response toolkit for mass compromise of on-premises Exchange: hunt, scan, coordinate.",
    no_args_is_help=True,
    add_completion=False,
)
lab = typer.Typer(help="Synthetic servers, triage copies and feeds for tests, demos, benchmarks.",
                  no_args_is_help=True)
app.add_typer(lab, name="lab")

EXIT_UNREADABLE = 3


class ReportFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    HTML = "html"


@contextmanager
def progress_bar(label: str, quiet: bool) -> Iterator[ProgressSink | None]:
    """A rich bar on a terminal; nothing when piped or quiet."""
    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, advance=done, total=total)

        yield advance


@app.command("hunt")
def hunt_command(
    paths: Annotated[list[str] | None, typer.Argument(
        help="Exchange install root, triage copy (C:\\ copy, KAPE, Velociraptor) or .zip")] = None,
    each: Annotated[Path | None, typer.Option(
        "--each", help="Hunt every copy (folder or .zip) directly inside this folder.")] = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.TEXT,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write here instead of standard output (a folder for several "
        "HTML reports).")] = None,
    yara: Annotated[list[Path] | None, typer.Option(
        "--yara", help="Also run the YARA rules in this folder on web files (repeatable).")] = None,
    sigma: Annotated[list[Path] | None, typer.Option(
        "--sigma", help="Also run the Sigma rules in this folder (e.g. SigmaHQ's rules/windows) "
        "on the event logs (repeatable).")] = None,
    iocs: Annotated[list[Path] | None, typer.Option(
        "--iocs", help="IOC list: hashes (HASH;COMMENT) or file names (REGEX;SCORE) "
        "(repeatable).")] = None,
    baseline: Annotated[list[Path] | None, typer.Option(
        "--baseline", help="Known-good web-file hashes from `exhunt baseline build` "
        "(repeatable).")] = None,
    summary: Annotated[Path | None, typer.Option(
        "--summary", metavar="FILE.json|FILE.html",
        help="Also write the fleet summary: verdicts, shared infrastructure, waves.")] = None,
    dask: Annotated[str | None, typer.Option(
        "--dask", metavar="tcp://HOST:PORT",
        help="Hunt on this Dask scheduler; every worker must read the copies under the same "
        "path.")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Processes to read with (with several copies: copies hunted at once).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Was this Exchange server probed, exploited, back-doored or re-entered? Since when? Who?"""
    from exhunt.hunt.files import FileStageSettings
    from exhunt.hunt.fleet import hunt_many, server_progress, write_fleet_summary

    sources = list(paths or [])
    if each is not None:
        sources.extend(_copies_in(each))
    if not sources:
        raise typer.BadParameter("give at least one PATH, or --each FOLDER")
    if fmt is ReportFormat.HTML and len(sources) > 1 and (output is None or output.is_file()):
        raise typer.BadParameter("several HTML reports need --output FOLDER")
    if summary is not None and summary.suffix.lower() not in (".json", ".html", ".htm"):
        raise typer.BadParameter("--summary must end in .json or .html")
    files = FileStageSettings(yara_dirs=tuple(str(p) for p in yara or ()),
                              ioc_files=tuple(str(p) for p in iocs or ()),
                              baselines=tuple(str(p) for p in baseline or ()),
                              sigma_dirs=tuple(str(p) for p in sigma or ()))
    if len(sources) == 1 and dask is None:
        with progress_bar(f"hunting {sources[0]}", quiet) as progress:
            reports = [hunt(sources[0], workers=workers, progress=progress, files=files)]
    else:
        with server_progress(quiet) as progress:
            reports = hunt_many(sources, workers=workers, dask_address=dask,
                                progress=progress, file_stage=files)
    _emit(reports, fmt, output)
    if summary is not None:
        write_fleet_summary(reports, summary)
    if any(r.unreadable for r in reports):
        raise typer.Exit(EXIT_UNREADABLE)


def _copies_in(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise typer.BadParameter(f"{folder} is not a folder")
    return [str(p) for p in sorted(folder.iterdir()) if p.is_dir() or p.suffix.lower() == ".zip"]


def _emit(reports: list[HuntReport], fmt: ReportFormat, output: Path | None) -> None:
    if fmt is ReportFormat.HTML and len(reports) > 1 and output is not None:
        output.mkdir(parents=True, exist_ok=True)
        for i, report in enumerate(reports, 1):
            name = Path(report.source.rstrip("/\\")).name or f"copy{i}"
            (output / f"{i:03d}-{name}.html").write_text(report_html(report), "utf-8")
        return
    if fmt is ReportFormat.JSON:
        data = [report_json(r) for r in reports]
        text = json.dumps(data[0] if len(data) == 1 else data, indent=2, ensure_ascii=False)
        text += "\n"
    elif fmt is ReportFormat.HTML:
        text = report_html(reports[0])
    else:
        text = "\n".join(report_text(r) for r in reports)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, "utf-8")


@app.command("demo")
def demo_command(
    port: Annotated[int, typer.Option(help="Dashboard port on 127.0.0.1.")] = 8000,
    hunt_only: Annotated[bool, typer.Option(
        "--hunt-only", help="Only build one compromised lab copy and hunt it.")] = False,
    out: Annotated[Path, typer.Option(help="Where --hunt-only builds its lab copy.")] = Path(
        "demo-out"),
) -> None:
    """The whole of exhunt on loopback: fleet, scan, hunts, feed, notices, then the dashboard."""
    if hunt_only:
        _hunt_demo(out)
        return
    from exhunt.errors import UsageError
    from exhunt.web.demo import run_demo

    try:
        run_demo(port=port)
    except UsageError as exc:
        raise typer.BadParameter(str(exc)) from exc
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _hunt_demo(out: Path) -> None:
    from exhunt.lab.triage import Scenario, TriageSpec, build_triage

    copy = out / "EXCH01-triage"
    console = Console(stderr=True)
    console.print(f"Building a lab triage copy of a re-entered server in {copy} ...")
    build_triage(copy, TriageSpec(scenario=Scenario.REENTERED, size_bytes=50_000_000, seed=2021))
    console.print(f"Hunting it: exhunt hunt {copy}\n")
    with progress_bar("hunting", False) as progress:
        report = hunt(str(copy), progress=progress)
    sys.stdout.write(report_text(report))
    html = out / "EXCH01-report.html"
    html.write_text(report_html(report), "utf-8")
    console.print(f"\nThe same report as one HTML file: {html}")


def _register_parts() -> None:
    """Each part adds its own commands; their heavy imports wait until a command runs."""
    from exhunt.cases.cli import register as case_commands
    from exhunt.collect.cli import register as collect_commands
    from exhunt.hunt.baseline_cli import register as baseline_commands
    from exhunt.lab.cli import register as lab_commands
    from exhunt.scan.cli import register as scan_commands
    from exhunt.web.cli import register as web_commands

    for register in (collect_commands, lab_commands, baseline_commands, scan_commands,
                     case_commands, web_commands):
        register(app, lab)


def main() -> None:
    # The hunt is often one command in a loop over many copies: it does not wait for the
    # coordinator's database layer or the scanner's HTTP stack to import.
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    if command != "hunt":
        _register_parts()
    app()


if __name__ == "__main__":
    main()
