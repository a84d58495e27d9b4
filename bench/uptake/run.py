"""Patch-uptake curve over a campaign's observations (default 400,000 servers x 30 days =
12 million rows in Parquet): exhunt's DuckDB query against two peers over the same Parquet
columns, all three in this process, alternated:

- pyarrow, vectorised (group-by minimum, join, cumulative count): the peer at its best, the
  way a data engineer would write it without a query engine;
- a single pass in Python over the columns (dicts of first-vulnerable / first-fixed per
  address): the way the curve was first computed, kept as the naive baseline.

All three must give the identical curve, or the run stops.

    .venv/bin/python bench/uptake/run.py [--servers 400000 --days 30 --runs 5] [--append]
"""

from __future__ import annotations

import sys
import time
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import alternate, arguments, ratio_span, record, workdir

from exhunt.lab.campaign import write_campaign
from exhunt.store.lake import ObservationLake

Curve = tuple[int, dict[str, int]]


def python_uptake(folder: Path) -> Curve:
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
    fixed_days = sorted(v.date() for v in first_fix.values())
    curve: dict[str, int] = {}
    count = 0
    for day in sorted(days):
        while count < len(fixed_days) and fixed_days[count] <= day:
            count += 1
        curve[str(day)] = count
    return len(first_vuln), curve


def arrow_uptake(folder: Path) -> Curve:
    """The same curve with pyarrow's kernels only: no Python object per row."""
    obs = pq.read_table(sorted(folder.glob("*.parquet")), columns=["ip", "seen_at", "state"])
    obs = obs.unify_dictionaries()  # the parts were written with dictionaries of their own
    vuln = obs.filter(pc.equal(obs["state"], "vulnerable"))
    first_vuln = vuln.group_by("ip").aggregate([("seen_at", "min")]).rename_columns(["ip", "fv"])
    fixes = obs.filter(pc.is_in(obs["state"], value_set=pa.array(["patched", "clean"])))
    fixes = fixes.join(first_vuln, "ip", join_type="inner")
    fixes = fixes.filter(pc.greater_equal(fixes["seen_at"], fixes["fv"]))
    first_fix = fixes.group_by("ip").aggregate([("seen_at", "min")])
    per_day = pa.table({"day": pc.cast(first_fix["seen_at_min"], pa.date32())}).group_by(
        "day").aggregate([("day", "count")])
    days = pa.table({"day": pc.unique(pc.cast(obs["seen_at"], pa.date32()))})
    days = days.join(per_day, "day", join_type="left outer").sort_by("day")
    counts = pc.cumulative_sum(pc.fill_null(days["day_count"], 0))
    curve = dict(zip(map(str, days["day"].to_pylist()), counts.to_pylist(), strict=True))
    return first_vuln.num_rows, curve


def duckdb_uptake(folder: Path) -> Curve:
    total, points = ObservationLake(folder).uptake()
    return total, {p.day: p.patched for p in points}


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--servers", type=int, default=400_000)
    parser.add_argument("--days", type=int, default=30)
    parser.set_defaults(runs=3)
    args = parser.parse_args()
    with workdir("uptake", args.keep) as work:
        start = time.perf_counter()
        summary = write_campaign(work, servers=args.servers, days=args.days, csvs=False)
        print(f"generated {summary.observations:,} observations in "
              f"{time.perf_counter() - start:.1f} s")
        folder = work / "observations"
        answers: dict[str, Curve] = {}

        def timed(name: str, fn: object) -> float:
            start = time.perf_counter()
            answers[name] = fn(folder)  # type: ignore[operator]
            return time.perf_counter() - start

        tools = {"exhunt (DuckDB)": lambda: timed("duckdb", duckdb_uptake),
                 "pyarrow vectorised": lambda: timed("arrow", arrow_uptake),
                 "Python single pass": lambda: timed("python", python_uptake)}
        series = alternate(args.runs, tools)
        if not answers["duckdb"] == answers["arrow"] == answers["python"]:
            sys.exit("the three curves differ")
    duck, arrow, naive = series.values()
    body = (f"{summary.observations:,} observations ({args.servers:,} servers x {args.days} "
            f"days), {args.runs} alternated runs, median (min-max)\n"
            f"exhunt, DuckDB over Parquet : {duck.span()}\n"
            f"pyarrow vectorised (peer)   : {arrow.span()}\n"
            f"Python single pass (naive)  : {naive.span()}\n"
            f"ratio pyarrow / exhunt      : {ratio_span(arrow, duck)}\n"
            f"ratio naive / exhunt        : {ratio_span(naive, duck)}\n")
    record(args, "Uptake curve: DuckDB vs vectorised pyarrow", body)


if __name__ == "__main__":
    main()
