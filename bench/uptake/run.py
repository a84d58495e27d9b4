"""Patch-uptake curve over a campaign's observations (default 400,000 servers x 30 days =
12 million rows in Parquet): exhunt's DuckDB query vs a single pass in Python over the same
Parquet columns (pyarrow read, dict of first-vulnerable / first-fixed per address).

    .venv/bin/python bench/uptake/run.py [--servers 400000 --days 30]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

import pyarrow.parquet as pq

from exhunt.lab.campaign import write_campaign
from exhunt.store.lake import ObservationLake


def python_uptake(folder: Path) -> tuple[int, dict[str, int]]:
    first_vuln: dict[str, datetime] = {}
    first_fix: dict[str, datetime] = {}
    days: set[date] = set()
    for part in sorted(folder.glob("*.parquet")):
        table = pq.read_table(part, columns=["ip", "seen_at", "state"])
        ips = table.column("ip").to_pylist()
        times = table.column("seen_at").to_pylist()
        states = table.column("state").to_pylist()
        for ip, seen, state in zip(ips, times, states, strict=True):
            days.add(seen.date())
            if state == "vulnerable":
                if ip not in first_vuln or seen < first_vuln[ip]:
                    first_vuln[ip] = seen
            elif (state in ("patched", "clean") and ip in first_vuln and seen >= first_vuln[ip]
                  and (ip not in first_fix or seen < first_fix[ip])):
                first_fix[ip] = seen
    curve: dict[str, int] = {}
    fixed_days = sorted(v.date() for v in first_fix.values())
    count = 0
    for day in sorted(days):
        while count < len(fixed_days) and fixed_days[count] <= day:
            count += 1
        curve[str(day)] = count
    return len(first_vuln), curve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", type=int, default=400_000)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="exhunt-bench-uptake-"))
    start = time.perf_counter()
    summary = write_campaign(work, servers=args.servers, days=args.days, csvs=False)
    print(f"generated {summary.observations} observations in {time.perf_counter() - start:.1f} s")
    lake = ObservationLake(work / "observations")

    start = time.perf_counter()
    total, curve = lake.uptake()
    duck_s = time.perf_counter() - start

    start = time.perf_counter()
    py_total, py_curve = python_uptake(work / "observations")
    py_s = time.perf_counter() - start

    assert total == py_total and {p.day: p.patched for p in curve} == py_curve, "curves differ"
    marks = {p.day: p.share for p in curve}
    print(f"hosts first seen vulnerable: {total}; patched share on 2021-03-09 "
          f"{marks.get('2021-03-09', 0):.1%}, 2021-03-22 {marks.get('2021-03-22', 0):.1%}")
    print(f"exhunt (DuckDB over Parquet): {duck_s:6.2f} s")
    print(f"Python single pass (pyarrow): {py_s:6.2f} s")
    print(f"ratio: {py_s / duck_s:.1f}x")


if __name__ == "__main__":
    main()
