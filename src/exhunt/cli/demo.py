"""`exhunt demo`: the whole of exhunt on loopback, or with --hunt-only one lab copy hunted."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from exhunt.cli.common import failures, progress_bar


def register(app: typer.Typer, lab: typer.Typer) -> None:
    """Add `demo` to the top-level app."""
    del lab
    app.command("demo")(demo_command)


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
    with failures():
        from exhunt.web.demo import run_demo

        try:
            run_demo(port=port)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None


def _hunt_demo(out: Path) -> None:
    from rich.console import Console

    from exhunt.hunt.engine import hunt
    from exhunt.hunt.report import report_html, report_text
    from exhunt.lab.triage import Scenario, TriageSpec, build_triage

    copy = out / "EXCH01-triage"
    console = Console(stderr=True, markup=False, highlight=False)
    console.print(f"Building a lab triage copy of a re-entered server in {copy} ...")
    build_triage(copy, TriageSpec(scenario=Scenario.REENTERED, size_bytes=50_000_000, seed=2021))
    console.print(f"Hunting it: exhunt hunt {copy}\n")
    with progress_bar("hunting", False) as progress:
        report = hunt(str(copy), progress=progress)
    sys.stdout.write(report_text(report))
    html = out / "EXCH01-report.html"
    html.write_text(report_html(report), "utf-8")
    console.print(f"\nThe same report as one HTML file: {html}")
