"""Shadowserver scan_exchange CSV: the whole `exhunt ingest` vs its floor and IntelMQ's parser.

    .venv/bin/python bench/ingest_vs_intelmq/run.py [--rows 50000] [--runs 3] [--append]

The peer, IntelMQ's Shadowserver parser in library mode, lives in a venv of its own (AGPL,
pinned dependencies): `bash bench/setup-peers.sh` makes it under ~/.cache/exhunt-bench (or
point INTELMQ_PYTHON at another venv's python).

Input: `exhunt lab campaign`, `--rows` servers, day 1 and day 2 (day 2 leaves out the servers
patched overnight), the campaign's contacts list imported first. Timed in alternation, each
run on a fresh copy of the store it needs (the copy is not timed):
- exhunt, first day: the whole ingest (parse, attribute, store, move states, open cases,
  absence, the day's counts) into the store holding only the contacts list;
- the first day's floor (floor.py: bare read plus bare writes of the same rows);
- exhunt, next day: the whole ingest of day 2 onto the store day 1 left;
- the next day's floor;
- IntelMQ's parser on day 1 (CSV rows to events in memory; it stores nothing).
Goals (issue 13): first day within 2x its floor, next day at least 30x IntelMQ's rows/s, in
every run. Both are shown per run, then as medians (min-max).
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from floor import floors, snapshots  # beside this script
from harness import Series, alternate, arguments, record, workdir
from shared import intelmq_parse

from exhunt.cases.ingest import Ingestor
from exhunt.lab.campaign import write_campaign
from exhunt.store.db import Store


def _ingest(base: Path, report: Path) -> float:
    """The whole ingest of `report` onto a copy of the store `base`."""
    target = base.with_name("run.db")
    shutil.copy(base, target)
    store = Store(f"sqlite:///{target}")
    start = time.perf_counter()
    Ingestor(store).ingest(report)
    seconds = time.perf_counter() - start
    store.close()
    for leftover in target.parent.glob("run.db*"):
        leftover.unlink()
    return seconds


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--rows", type=int, default=50_000, help="servers in the campaign")
    parser.set_defaults(runs=3)
    args = parser.parse_args()
    with workdir("ingest", args.keep) as work:
        write_campaign(work, servers=args.rows, days=2, parquet=False)
        first, second = sorted(work.glob("*-scan_exchange.csv"))
        stores = snapshots(work, first, second)
        floor1, floor2 = floors(stores, first, second)
        rows1, rows2 = (f.read_bytes().count(b"\n") - 1 for f in (first, second))
        peer: list[int] = []

        def intelmq() -> float:
            result = intelmq_parse(first)
            peer.append(int(result["events"]))
            return float(result["seconds"])

        series = alternate(args.runs, {
            "first day": lambda: _ingest(stores["day0"], first),
            "floor, first day": floor1.seconds,
            "next day": lambda: _ingest(stores["day1"], second),
            "floor, next day": floor2.seconds,
            "IntelMQ": intelmq})
        record(args, f"Ingest vs its floor and IntelMQ, {rows1:,} rows (issue 13)",
               _body(series, rows1, rows2, peer, floor1.shape(), floor2.shape()))


def _body(series: dict[str, Series], rows1: int, rows2: int, peer: list[int],
          shape1: str, shape2: str) -> str:
    s = {name: v.values for name, v in series.items()}
    lines = [f"rows: first day {rows1}, next day {rows2}; IntelMQ events {peer[0]}",
             f"first day writes {shape1}", f"next day writes {shape2}", ""]
    over_floor, over_peer, budget_ratio = [], [], []
    for i in range(len(s["IntelMQ"])):
        rate = peer[i] / s["IntelMQ"][i]
        over_floor.append(s["first day"][i] / s["floor, first day"][i])
        over_peer.append(rows2 / s["next day"][i] / rate)
        budget_ratio.append(rows2 / s["floor, next day"][i] / rate)
        lines += [
            f"run {i + 1}: first day {s['first day'][i]:.2f} s, its floor "
            f"{s['floor, first day'][i]:.2f} s: {over_floor[-1]:.2f}x the floor "
            f"({'met' if over_floor[-1] <= 2 else 'NOT met'})",
            f"       next day {s['next day'][i]:.2f} s (its floor "
            f"{s['floor, next day'][i]:.2f} s), IntelMQ {rate:,.0f} rows/s: "
            f"{over_peer[-1]:.1f}x IntelMQ ({'met' if over_peer[-1] >= 30 else 'NOT met'})"]
    lines.append("")
    for name, values in s.items():
        lines.append(f"{name + ':':20} {statistics.median(values):7.2f} s "
                     f"({min(values):.2f}-{max(values):.2f})")

    def span(values: list[float], unit: str) -> str:
        return (f"{statistics.median(values):.2f}{unit} ({min(values):.2f}-{max(values):.2f})")
    lines += [f"first day / its floor:    {span(over_floor, 'x')}  goal <= 2x in every run: "
              f"{'met' if max(over_floor) <= 2 else 'NOT met'}",
              f"next day vs IntelMQ:      {span(over_peer, 'x')}  goal >= 30x in every run: "
              f"{'met' if min(over_peer) >= 30 else 'NOT met'}",
              f"next day's floor vs IntelMQ (the best any ingest could do): "
              f"{span(budget_ratio, 'x')}"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
