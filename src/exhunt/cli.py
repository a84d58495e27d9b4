"""The `exhunt` command line: hunt, scan, coordinate, and the lab that feeds them."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # the modules themselves load with the command that needs them
    from exhunt.hunt.engine import Progress as ProgressSink
    from exhunt.model import HuntReport
    from exhunt.share.options import ShareOptions

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
    # The field's exchange formats (exhunt.share): one output for all the copies hunted.
    STIX = "stix"
    MISP = "misp"
    TIMELINE = "timeline"
    TIMELINE_CSV = "timeline-csv"
    ECS = "ecs"


class Tlp(StrEnum):
    CLEAR = "clear"
    WHITE = "white"
    GREEN = "green"
    AMBER = "amber"
    RED = "red"


@contextmanager
def progress_bar(label: str, quiet: bool) -> Iterator[ProgressSink | None]:
    """A rich bar on a terminal; nothing when piped or quiet."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

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
        "--iocs", help="IOC list: hashes (HASH;COMMENT), file names (REGEX;SCORE), a STIX 2.1 "
        "bundle or a MISP event (repeatable).")] = None,
    baseline: Annotated[list[Path] | None, typer.Option(
        "--baseline", help="Known-good web-file hashes from `exhunt baseline build` "
        "(repeatable).")] = None,
    summary: Annotated[Path | None, typer.Option(
        "--summary", metavar="FILE.json|FILE.html",
        help="Also write the fleet summary: verdicts, shared infrastructure, waves.")] = None,
    stix: Annotated[Path | None, typer.Option(
        "--stix", metavar="FILE.json",
        help="Also write a STIX 2.1 bundle of all the copies: indicators, sightings, CVEs, "
        "one intrusion-set per shared-infrastructure cluster.")] = None,
    tlp: Annotated[Tlp, typer.Option(
        "--tlp", help="TLP marking of STIX and MISP output.")] = Tlp.AMBER,
    producer: Annotated[str, typer.Option(
        "--producer", help="Who produces STIX and MISP output (its identity / organisation)."
    )] = "exhunt",
    dask: Annotated[str | None, typer.Option(
        "--dask", metavar="tcp://HOST:PORT",
        help="Hunt on this Dask scheduler; every worker must read the copies under the same "
        "path.")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Processes to read with (with several copies: copies hunted at once).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Was this Exchange server probed, exploited, back-doored or re-entered? Since when? Who?"""
    from exhunt.hunt.engine import hunt
    from exhunt.hunt.files import FileStageSettings
    from exhunt.hunt.fleet import hunt_many, server_progress, write_fleet_summary
    from exhunt.share.options import ShareOptions
    from exhunt.share.writers import render

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
    share = ShareOptions(producer=producer, tlp=tlp.value)
    _emit(reports, fmt, output, share)
    if summary is not None:
        write_fleet_summary(reports, summary)
    if stix is not None:
        stix.write_text(render("stix", reports, share), "utf-8")
    if any(r.unreadable for r in reports):
        raise typer.Exit(EXIT_UNREADABLE)


def _copies_in(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise typer.BadParameter(f"{folder} is not a folder")
    return [str(p) for p in sorted(folder.iterdir()) if p.is_dir() or p.suffix.lower() == ".zip"]


def _emit(reports: list[HuntReport], fmt: ReportFormat, output: Path | None,
          share: ShareOptions) -> None:
    from exhunt.hunt.report import report_html, report_json, report_text
    from exhunt.share.writers import WRITERS, render

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
    elif fmt.value in WRITERS:
        text = render(fmt.value, reports, share)
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
    from rich.console import Console

    from exhunt.hunt.engine import hunt
    from exhunt.hunt.report import report_html, report_text
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


# The part that registers each top-level command. A run loads only the part its command
# needs (`exhunt scan` does not wait for the coordinator's database layer); help, `lab` and
# anything unknown load every part.
_PART_OF = {
    "artifacts": "exhunt.collect.cli",
    "baseline": "exhunt.hunt.baseline_cli",
    "scan": "exhunt.scan.cli",
    "ingest": "exhunt.cases.cli",
    "contacts": "exhunt.cases.cli",
    "cases": "exhunt.cases.cli",
    "rejects": "exhunt.cases.cli",
    "notify": "exhunt.cases.cli",
    "stats": "exhunt.cases.cli",
    "serve": "exhunt.web.cli",
    "users": "exhunt.web.cli",
}
_ALL_PARTS = ("exhunt.collect.cli", "exhunt.lab.cli", "exhunt.hunt.baseline_cli",
              "exhunt.scan.cli", "exhunt.cases.cli", "exhunt.web.cli")


def _register_parts(command: str | None) -> None:
    """Each part adds its own commands; their heavy imports wait until a command runs."""
    if command in ("hunt", "demo"):
        return
    part = _PART_OF.get(command or "")
    for name in (part,) if part else _ALL_PARTS:
        importlib.import_module(name).register(app, lab)


def main() -> None:
    if sys.argv[1:2] == ["builds"]:
        # answered from the build table alone: a CERT pipes hundreds of builds through it
        from exhunt.intel.builds_cli import main as builds_main

        sys.exit(builds_main(sys.argv[2:]))
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    wants_help = any(arg in ("--help", "-h") for arg in sys.argv[1:2])
    _register_parts(None if wants_help else command)
    app()


if __name__ == "__main__":
    main()
