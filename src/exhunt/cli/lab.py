"""`exhunt lab`: synthetic servers, triage copies and feeds for tests, demos and benchmarks.

`lab triage` writes one server's triage copy, `lab fleet` starts simulated OWA front ends on
loopback, `lab campaign` writes a synthetic Shadowserver-style campaign.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from exhunt.cli.common import EXIT_USAGE, QuietOption, error, failures, shows_progress
from exhunt.errors import UsageError


def register(app: typer.Typer, lab: typer.Typer) -> None:
    """Add `triage`, `fleet` and `campaign` to the `exhunt lab` group."""
    del app
    lab.command("triage")(triage_command)
    lab.command("fleet")(fleet_command)
    lab.command("campaign")(campaign_command)


def triage_command(
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
    quiet: QuietOption = False,
) -> None:
    """Write a synthetic triage copy of one Exchange server; the truth goes to OUT.truth.json."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from exhunt.lab.triage import (
        LAYOUTS,
        Scenario,
        TriageSpec,
        build_triage,
        truth_path,
        zip_triage,
    )
    from exhunt.lab.units import parse_size

    with failures():
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
        if shows_progress(quiet):
            with Progress(
                TextColumn("triage copy"), BarColumn(), DownloadColumn(),
                TransferSpeedColumn(), TimeRemainingColumn(), console=Console(stderr=True),
                transient=True,
            ) as bar:
                task = bar.add_task("write", total=spec.size_bytes)
                truth = build_triage(out, spec, lambda n: bar.advance(task, n))
        else:
            truth = build_triage(out, spec)
        if make_zip:
            zip_triage(out, out.parent / (out.name + ".zip"))
    print(f"{out}: {truth.scenario} copy, {truth.bytes_written} bytes in {truth.files_written} "
          f"files; truth: {truth_path(out)}" + (f"; zip: {out}.zip" if make_zip else ""))


def fleet_command(
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
        error(f"modes are {', '.join(ALL_MODES)}")
        raise typer.Exit(EXIT_USAGE)

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


def campaign_command(
    out: Annotated[Path, typer.Argument(help="Folder for the CSVs, contacts and Parquet")],
    servers: Annotated[int, typer.Option(help="Exposed servers")] = 400_000,
    days: Annotated[int, typer.Option(help="Days of daily reports")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed")] = 2021,
    parquet: Annotated[bool, typer.Option(help="Also write Parquet observations")] = True,
    partial_day: Annotated[int | None, typer.Option(
        help="Day (0 = first) whose report is a partial scan, listing ~30% of servers"
    )] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Synthetic campaign: daily Shadowserver-style CSVs following the March 2021 uptake."""
    from rich.console import Console
    from rich.progress import Progress

    with failures():
        from exhunt.lab.campaign import write_campaign

        with Progress(console=Console(stderr=True), disable=not shows_progress(quiet)) as bar:
            task = bar.add_task("writing days", total=days)
            summary = write_campaign(out, servers=servers, days=days, seed=seed,
                                     parquet=parquet, partial_day=partial_day,
                                     progress=lambda done: bar.update(task, completed=done))
    print(f"{out}: {summary.servers} servers in {summary.organisations} organisations, "
          f"{summary.days} daily CSVs with {summary.csv_rows} rows, "
          f"{summary.observations} Parquet observations, {summary.webshells} web shells")
