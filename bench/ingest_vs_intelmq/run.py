"""Shadowserver scan_exchange CSV: exhunt vs IntelMQ's Shadowserver parser (library mode).

    .venv/bin/python bench/ingest_vs_intelmq/run.py [--rows 50000]

Set-up of the peer, once: `bash bench/setup-peers.sh` (IntelMQ is AGPL and pins its own
dependencies, so it lives in a venv of its own under ~/.cache/exhunt-bench; or point
INTELMQ_PYTHON at another venv's python).

Measured: (a) exhunt's readers alone (the column reader it uses, and the row reader it falls
back to) vs IntelMQ's parser alone (like for like: CSV rows to normalised events in memory),
(b) the whole `exhunt ingest` (parse, attribute against the campaign's contacts list, store in
SQLite, move host states, open cases) vs IntelMQ's parser alone (which stores nothing), for the
first day into an empty store and for the next day onto it (every host already stored). Also
shown: how many evidence-run rows the store holds for the sightings taken in.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import sqlalchemy as sa
from shared import intelmq_parse, lab_days  # beside this script

from exhunt.cases.contacts import import_contacts
from exhunt.cases.feeds import Sighting, read_shadowserver
from exhunt.cases.ingest import Ingestor
from exhunt.cases.shadowcsv import read_shadowserver_columns
from exhunt.store.db import Store
from exhunt.store.models import Case, Observation


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    work, csv_path, next_day = lab_days(args.rows, "exhunt-bench-ingest-")
    try:
        measure(work, csv_path, next_day)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(work: Path, csv_path: Path, next_day: Path) -> None:
    data = csv_path.read_bytes()

    start = time.perf_counter()
    parsed = sum(1 for r in read_shadowserver(data, csv_path.name) if isinstance(r, Sighting))
    parse_s = time.perf_counter() - start
    start = time.perf_counter()
    columns = read_shadowserver_columns(data, csv_path.name)
    column_s = time.perf_counter() - start
    assert columns is not None and len(columns.columns) == parsed

    store = Store(f"sqlite:///{work / 'bench.db'}")
    import_contacts(store, work / "contacts.csv")
    start = time.perf_counter()
    result = Ingestor(store).ingest(csv_path)
    ingest_s = time.perf_counter() - start
    start = time.perf_counter()
    second = Ingestor(store).ingest(next_day)
    second_s = time.perf_counter() - start
    with store.session() as session:
        runs = session.scalar(sa.select(sa.func.count()).select_from(Observation))
        cases = session.scalar(sa.select(sa.func.count()).select_from(Case))
    store.close()

    intelmq = intelmq_parse(csv_path)

    rows = result.rows
    exhunt_parse = parsed / parse_s
    exhunt_ingest = rows / ingest_s
    intelmq_rate = intelmq["events"] / intelmq["seconds"]
    print(f"rows: {rows} (exhunt parsed {parsed}, stored {result.added}; "
          f"IntelMQ events {intelmq['events']})")
    print(f"exhunt column reader:       {parsed / column_s:10.0f} rows/s ({column_s:.2f} s)")
    print(f"exhunt row reader:          {exhunt_parse:10.0f} rows/s ({parse_s:.2f} s)")
    print(f"exhunt ingest (SQLite):     {exhunt_ingest:10.0f} rows/s ({ingest_s:.2f} s)")
    print(f"exhunt ingest, next day:    {second.rows / second_s:10.0f} rows/s ({second_s:.2f} s,"
          f" {second.rows} rows onto the stored hosts)")
    print(f"IntelMQ parser (library):   {intelmq_rate:10.0f} rows/s ({intelmq['seconds']:.2f} s)")
    print(f"store: {runs} evidence-run rows for {result.added + second.added} sightings, "
          f"{cases} cases")
    print(f"ratio column reader/IntelMQ:{parsed / column_s / intelmq_rate:10.1f}x")
    print(f"ratio full ingest/IntelMQ:  {exhunt_ingest / intelmq_rate:10.1f}x (first day)")
    print(f"ratio next day/IntelMQ:     {second.rows / second_s / intelmq_rate:10.1f}x")


if __name__ == "__main__":
    main()
