"""`exhunt lab triage`: write a synthetic triage copy of one Exchange server."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from exhunt.errors import UsageError
from exhunt.lab.triage import (
    LAYOUTS,
    Scenario,
    TriageSpec,
    build_triage,
    truth_path,
    zip_triage,
)
from exhunt.lab.units import parse_size


def _triage(
    out: Annotated[Path, typer.Argument(help="Folder to create (must be absent or empty).")],
    scenario: Annotated[str, typer.Option(
        help="clean, probed, exploited, backdoored or reentered.")] = "clean",
    size: Annotated[str, typer.Option(help="Approximate total size, e.g. 500MB, 2GB, 10k.")]
    = "5MB",
    seed: Annotated[int, typer.Option(help="Same seed, same copy.")] = 0,
    layout: Annotated[str, typer.Option(
        help="plain (OUT is C:\\), kape (OUT/C), velociraptor (OUT/uploads/auto/C%3A) or "
             "live (OUT is the Exchange V15 folder).")] = "plain",
    days: Annotated[int, typer.Option(help="Days of logs.")] = 14,
    start: Annotated[str, typer.Option(help="First day (UTC), YYYY-MM-DD.")] = "2021-02-20",
    traffic: Annotated[str, typer.Option(
        help="busy (a large front end: logon pages, ECP pages, autodiscover.json, remote "
             "PowerShell all day) or quiet (a small office).")] = "busy",
    make_zip: Annotated[bool, typer.Option("--zip", help="Also write OUT.zip.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Write a synthetic triage copy of one Exchange server; the truth goes to OUT.truth.json."""
    err = Console(stderr=True)
    try:
        if scenario not in {s.value for s in Scenario}:
            raise UsageError(f"unknown scenario {scenario!r}; one of "
                             + ", ".join(s.value for s in Scenario))
        if layout not in LAYOUTS:
            raise UsageError(f"unknown layout {layout!r}; one of {', '.join(LAYOUTS)}")
        try:
            first_day = datetime.strptime(start, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError as exc:
            raise UsageError(f"start {start!r}: expected YYYY-MM-DD") from exc
        spec = TriageSpec(scenario=Scenario(scenario), size_bytes=parse_size(size), seed=seed,
                          layout=layout, start=first_day, days=days,
                          traffic=traffic)
        show = not quiet and sys.stderr.isatty()
        if show:
            with Progress(
                TextColumn("[bold]triage copy[/bold]"), BarColumn(), DownloadColumn(),
                TransferSpeedColumn(), TimeRemainingColumn(), console=err, transient=True,
            ) as bar:
                task = bar.add_task("write", total=spec.size_bytes)
                truth = build_triage(out, spec, lambda n: bar.advance(task, n))
        else:
            truth = build_triage(out, spec)
        if make_zip:
            zip_triage(out, out.parent / (out.name + ".zip"))
    except UsageError as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from exc
    print(f"{out}: {truth.scenario} copy, {truth.bytes_written} bytes in {truth.files_written} "
          f"files; truth: {truth_path(out)}" + (f"; zip: {out}.zip" if make_zip else ""))


def register(app: typer.Typer, lab: typer.Typer) -> None:
    """Add `exhunt lab triage` to the lab group."""
    del app
    lab.command("triage")(_triage)
