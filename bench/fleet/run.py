"""Hunting a fleet: serial vs local processes vs a Dask LocalCluster, in servers/minute.

One command: `.venv/bin/python bench/fleet/run.py [--copies 200] [--size 300KB] [--workers 2]`

The peer is the serial loop (one hunt after another in one process, as `exhunt hunt` did for
several PATHs before hunt_many). The same 200 lab triage copies (a mix of every scenario, one
attacker per seed) are hunted three ways; every way must give the same reports. Copies are
built once into bench/out/fleet-<copies>x<size>/ and reused.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from exhunt.hunt.fleet import fleet_summary, hunt_many
from exhunt.hunt.fleet_dask import local_cluster
from exhunt.lab.triage import Scenario, TriageSpec, build_triage
from exhunt.model import HuntReport

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out"


def parse_size(text: str) -> int:
    units = {"KB": 1_000, "MB": 1_000_000, "GB": 1_000_000_000, "B": 1}
    for unit, factor in units.items():
        if text.upper().endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def build_one(folder: Path, seed: int, size: int) -> None:
    scenarios = list(Scenario)
    spec = TriageSpec(scenario=scenarios[seed % len(scenarios)], size_bytes=size, seed=seed,
                      host=f"EXCH{seed:04d}")
    build_triage(folder / f"server{seed:04d}", spec)


def build_fleet(copies: int, size: int) -> list[str]:
    folder = OUT / f"fleet-{copies}x{size}"
    folder.mkdir(parents=True, exist_ok=True)
    sources = [str(folder / f"server{seed:04d}") for seed in range(copies)]
    todo = [(seed, size) for seed in range(copies)
            if not (folder / f"server{seed:04d}.truth.json").exists()]
    for seed, _ in todo:
        if (folder / f"server{seed:04d}").exists():
            sys.exit(f"server{seed:04d} is half-built: remove {folder} and run again")
    started = time.perf_counter()
    with ProcessPoolExecutor() as pool:
        list(pool.map(build_one, [folder] * len(todo), *zip(*todo, strict=True)))
    took = time.perf_counter() - started
    total = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    print(f"fleet: {copies} copies in {folder} ({total / 1e6:.1f} MB; ready in {took:.1f} s)")
    return sources


def timed(label: str, run: object) -> tuple[float, list[HuntReport]]:
    started = time.perf_counter()
    reports = run()  # type: ignore[operator]
    took = time.perf_counter() - started
    print(f"{label:<28}: {len(reports)} servers in {took:7.2f} s = "
          f"{len(reports) / took * 60:8.0f} servers/min")
    return took, reports


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=200)
    parser.add_argument("--size", default="300KB")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    sources = build_fleet(args.copies, parse_size(args.size))
    hunt_many(sources[:5], workers=1)  # warm the page cache and imports alike
    serial_t, serial = timed("serial (peer)", lambda: hunt_many(sources, workers=1))
    local_t, local = timed(f"local processes ({args.workers})",
                           lambda: hunt_many(sources, workers=args.workers))
    started = time.perf_counter()
    with local_cluster(n_workers=args.workers) as address:
        startup = time.perf_counter() - started
        hunt_many(sources[:8], dask_address=address)  # workers load rules, as serial did
        warm = time.perf_counter() - started - startup
        print(f"{'Dask LocalCluster start':<28}: {startup:7.2f} s + {warm:.2f} s warm-up "
              "(not counted below)")
        dask_t, dask = timed(f"Dask LocalCluster ({args.workers} workers)",
                             lambda: hunt_many(sources, dask_address=address))
    same = ([r.to_json() for r in local] == [r.to_json() for r in serial]
            == [r.to_json() for r in dask])
    print(f"ratio local/serial servers/min = {serial_t / local_t:.2f}x")
    print(f"ratio Dask/serial servers/min  = {serial_t / dask_t:.2f}x")
    print(f"same reports all three ways: {same}")
    summary = fleet_summary(serial)
    print(f"verdicts: {summary['verdicts']}; waves: {summary['waves']}; "
          f"clusters: {len(summary['clusters'])}")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.system()} "
          f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    if not same:
        sys.exit("the three ways disagree")


if __name__ == "__main__":
    main()
