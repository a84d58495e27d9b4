"""How fast could any `exhunt ingest` into this store be? The floor under the 30x goal.

    .venv/bin/python bench/ingest_vs_intelmq/floor.py [--rows 50000]

`run.py` measures the real ingest. This measures what no ingest into the same SQLite schema can
go below, on the same machine and in the same run as IntelMQ's parser (the peer):

- reading: pyarrow's multi-threaded CSV reader splitting the file into text columns, no rule
  applied, no Python object made;
- first day: the very rows exhunt's first day stores (hosts, evidence runs, cases, history,
  the file's ledger row), copied out of a store the real ingest filled and written again into
  the state before it by one bare executemany per table, values ready, one commit;
- next day: reading each stored host's id, address, state and last sighting and each open
  run's finding (what any ingest must know to tell "the same again" from "new"), then writing
  exactly the inserts and updates the real next-day ingest made, bare, one commit.

The goal's time budget is rows / (30 x IntelMQ's rows/s). When reading plus the bare writes
already take longer, no code path into this schema meets the goal on this machine.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
from shared import intelmq_parse, lab_days  # beside this script

from exhunt.cases.contacts import import_contacts
from exhunt.cases.ingest import Ingestor
from exhunt.store.db import Store

TABLES = ("ingested_files", "hosts", "observations", "cases", "events")


def _snapshot(db: Path, to: Path) -> None:
    """A consistent copy of the SQLite file (WAL folded in first)."""
    with sqlite3.connect(db) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(db, to)


def _timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def _read_floor(data: bytes) -> float:
    names = data.split(b"\n", 1)[0].decode().rstrip("\r").split(",")
    options = pacsv.ConvertOptions(column_types={n: pa.string() for n in names})
    return min(_timed(lambda: pacsv.read_csv(pa.BufferReader(data), convert_options=options))
               for _ in range(3))


def _rows(con: sqlite3.Connection, table: str) -> dict[int, tuple[object, ...]]:
    return {row[0]: row for row in con.execute(f"SELECT * FROM {table}")}


def _diff(before: Path, after: Path) -> dict[str, tuple[list[tuple[object, ...]],
                                                          dict[tuple[str, ...], list[list[object]]]]]:
    """Per table: (rows added, updates grouped by the columns that moved)."""
    out = {}
    with sqlite3.connect(before) as old, sqlite3.connect(after) as new:
        for table in TABLES:
            columns = [c[1] for c in new.execute(f"PRAGMA table_info({table})")]
            was, now = _rows(old, table), _rows(new, table)
            added = [row for key, row in now.items() if key not in was]
            moved: dict[tuple[str, ...], list[list[object]]] = {}
            for key, row in now.items():
                if key in was and row != was[key]:
                    changed = tuple(i for i, (a, b) in enumerate(zip(row, was[key], strict=True)) if a != b)
                    moved.setdefault(tuple(columns[i] for i in changed), []).append(
                        [*(row[i] for i in changed), key])
            out[table] = (added, moved)
    return out


def _write_floor(base: Path, diff: dict[str, tuple[list[tuple[object, ...]],
                                                   dict[tuple[str, ...], list[list[object]]]]],
                 read_state: bool) -> float:
    """Bare writes of `diff` onto a copy of `base`; best of three."""
    best = float("inf")
    for attempt in range(3):
        target = base.with_name(f"floor-{attempt}.db")
        shutil.copy(base, target)
        con = sqlite3.connect(target, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        start = time.perf_counter()
        con.execute("BEGIN")
        if read_state:
            con.execute("SELECT id, ip, state, last_seen FROM hosts").fetchall()
            con.execute("SELECT host_id, source, state, evidence, build FROM observations"
                        " WHERE last_seen_at IS NULL").fetchall()
        for table, (added, moved) in diff.items():
            if added:
                marks = ", ".join("?" * len(added[0]))
                con.executemany(f"INSERT INTO {table} VALUES ({marks})", added)
            for columns, rows in moved.items():
                sets = ", ".join(f"{c} = ?" for c in columns)
                con.executemany(f"UPDATE {table} SET {sets} WHERE id = ?", rows)
        con.execute("COMMIT")
        best = min(best, time.perf_counter() - start)
        con.close()
        target.unlink()
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    work, first, second = lab_days(args.rows, "exhunt-bench-floor-")
    db = work / "store.db"
    store = Store(f"sqlite:///{db}")
    import_contacts(store, work / "contacts.csv")
    _snapshot(db, work / "day0.db")
    day1 = Ingestor(store).ingest(first)
    _snapshot(db, work / "day1.db")
    day2 = Ingestor(store).ingest(second)
    _snapshot(db, work / "day2.db")
    store.close()

    read1 = _read_floor(first.read_bytes())
    read2 = _read_floor(second.read_bytes())
    diff1 = _diff(work / "day0.db", work / "day1.db")
    diff2 = _diff(work / "day1.db", work / "day2.db")
    write1 = _write_floor(work / "day0.db", diff1, read_state=False)
    write2 = _write_floor(work / "day1.db", diff2, read_state=True)

    intelmq = intelmq_parse(first)
    rate = intelmq["events"] / intelmq["seconds"]

    for label, rows, read, write, diff in (("first day", day1.rows, read1, write1, diff1),
                                           ("next day", day2.rows, read2, write2, diff2)):
        budget = rows / (30 * rate)
        floor = read + write
        shape = ", ".join(f"{t} +{len(a)}" + (f"/~{sum(len(r) for r in m.values())}" if m else "")
                          for t, (a, m) in diff.items() if a or m)
        print(f"{label}: {rows} rows; writes {shape}")
        print(f"  bare read {read:.3f} s + bare {'reads and ' if label == 'next day' else ''}"
              f"writes {write:.3f} s = floor {floor:.3f} s")
        print(f"  30x budget at IntelMQ's {rate:,.0f} rows/s: {budget:.3f} s;"
              f" best possible ratio {rows / floor / rate:.1f}x")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
