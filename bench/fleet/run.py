"""Hunting a fleet: serial vs local processes vs a Dask LocalCluster, in servers/minute.

    .venv/bin/python bench/fleet/run.py [--copies 8 --size 100MB --workers 2 --runs 3]

The peer is the serial loop (one hunt after another in one process). The same lab triage
copies (a mix of every scenario, of realistic size: 100 MB each by default) are hunted
three ways, alternated: serial, the local process pool, and a Dask LocalCluster of WORKERS
processes. The clusters (WORKERS and 1 worker, for the scaling) are started once, outside
the timing, as a standing cluster would be. Every way must give the same reports. Copies are
built in a temporary folder that is removed at the end.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import alternate, arguments, ratio_span, record, workdir

from exhunt.hunt.fleet import fleet_summary
from exhunt.hunt.fleet_dask import local_cluster
from exhunt.hunt.fleet_run import hunt_many
from exhunt.lab.triage import Scenario, TriageSpec, build_triage
from exhunt.lab.units import parse_size
from exhunt.model import HuntReport


def build_one(folder: Path, seed: int, size: int) -> None:
    scenarios = list(Scenario)
    spec = TriageSpec(scenario=scenarios[seed % len(scenarios)], size_bytes=size, seed=seed,
                      host=f"EXCH{seed:04d}")
    build_triage(folder / f"server{seed:04d}", spec)


def build_fleet(folder: Path, copies: int, size: int) -> list[str]:
    started = time.perf_counter()
    seeds = list(range(copies))
    with ProcessPoolExecutor() as pool:
        list(pool.map(build_one, [folder] * copies, seeds, [size] * copies))
    total = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    print(f"fleet: {copies} copies, {total / 1e6:,.0f} MB, built in "
          f"{time.perf_counter() - started:.1f} s")
    return [str(folder / f"server{seed:04d}") for seed in seeds]


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--size", default="100MB")
    parser.add_argument("--workers", type=int, default=2)
    parser.set_defaults(runs=3)
    args = parser.parse_args()
    reports: dict[str, list[HuntReport]] = {}
    with workdir("fleet", args.keep) as work, ExitStack() as clusters:
        sources = build_fleet(work, args.copies, parse_size(args.size))
        started = time.perf_counter()
        dask_n = clusters.enter_context(local_cluster(n_workers=args.workers))
        dask_1 = clusters.enter_context(local_cluster(n_workers=1))
        print(f"two LocalClusters up in {time.perf_counter() - started:.1f} s (not counted)")
        hunt_many(sources[:1], workers=1)  # warm the page cache and this process's imports

        def way(name: str, **kw: object) -> float:
            started = time.perf_counter()
            reports[name] = hunt_many(sources, **kw)  # type: ignore[arg-type]
            return time.perf_counter() - started

        series = alternate(args.runs, {
            "serial": lambda: way("serial", workers=1),
            "pool": lambda: way("pool", workers=args.workers),
            "dask": lambda: way("dask", dask_address=dask_n),
            "dask1": lambda: way("dask1", dask_address=dask_1)})
    jsons = {name: [r.to_json() for r in got] for name, got in reports.items()}
    if any(j != jsons["serial"] for j in jsons.values()):
        sys.exit("the ways disagree on the reports")
    n = args.copies
    lines = [f"{n} copies of {args.size} each, {args.runs} alternated runs, median (min-max)"]
    for name, label in (("serial", "serial loop (peer)"),
                        ("pool", f"local processes ({args.workers})"),
                        ("dask", f"Dask LocalCluster ({args.workers} workers)"),
                        ("dask1", "Dask LocalCluster (1 worker)")):
        s = series[name]
        lines.append(f"{label:30}: {s.span()}, {n / s.median * 60:6.1f} servers/min")
    lines += [f"pool / serial servers/min      : {ratio_span(series['serial'], series['pool'])}",
              f"Dask / pool servers/min        : {ratio_span(series['pool'], series['dask'])}",
              f"Dask 2 workers / 1 worker      : {ratio_span(series['dask1'], series['dask'])}"]
    summary = fleet_summary(reports["serial"])
    lines.append(f"same reports every way; verdicts {summary['verdicts']}")
    record(args, "Fleet: serial vs process pool vs Dask", "\n".join(lines))


if __name__ == "__main__":
    main()
