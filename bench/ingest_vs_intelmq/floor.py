"""How fast could any `exhunt ingest` into this store be? The floor under the goals.

`run.py` times the real ingest, this floor and IntelMQ's parser in the same run (the one
command). The floor is what no ingest into the same SQLite schema can go below:

- reading: pyarrow's multi-threaded CSV reader splitting the file into text columns, no rule
  applied, no Python object made;
- first day: the very rows exhunt's first day stores (hosts, evidence runs, cases, history,
  the file's ledger row, its listing and the day's counts), copied out of a store the real
  ingest filled and written again into the state before it by one bare executemany per
  table, values ready, one commit;
- next day: reading each stored host's id, address, state and last sighting and each open
  run's finding (what any ingest must know to tell "the same again" from "new"), then writing
  exactly the inserts and updates the real next-day ingest made, bare, one commit.

The first day's goal is 2x this floor. The next day's goal, 30x IntelMQ's parser, has the time
budget rows / (30 x IntelMQ's rows/s): when reading plus the bare writes already take longer,
no code path into this schema meets it on this machine.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from exhunt.cases.contacts import import_contacts
from exhunt.cases.ingest import Ingestor
from exhunt.store.db import Store

TABLES = ("ingested_files", "hosts", "observations", "cases", "events", "report_days",
          "daily_states")


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
    return _timed(lambda: pacsv.read_csv(pa.BufferReader(data), convert_options=options))


def _rows(con: sqlite3.Connection, table: str) -> dict[int, tuple[object, ...]]:
    return {row[0]: row for row in con.execute(f"SELECT * FROM {table}")}


Diff = dict[str, tuple[list[tuple[object, ...]], dict[tuple[str, ...], list[list[object]]]]]


def _diff(before: Path, after: Path) -> Diff:
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


def _write_floor(base: Path, diff: Diff, read_state: bool) -> float:
    """Bare writes of `diff` onto a copy of `base` (the copy is not timed)."""
    target = base.with_name("floor.db")
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
    seconds = time.perf_counter() - start
    con.close()
    target.unlink()
    return seconds


def snapshots(work: Path, first: Path, second: Path) -> dict[str, Path]:
    """The real ingest of both days once, the store copied before and after each: day0 (the
    contacts list imported), day1, day2."""
    db = work / "store.db"
    store = Store(f"sqlite:///{db}")
    import_contacts(store, work / "contacts.csv")
    _snapshot(db, work / "day0.db")
    Ingestor(store).ingest(first)
    _snapshot(db, work / "day1.db")
    Ingestor(store).ingest(second)
    _snapshot(db, work / "day2.db")
    store.close()
    return {name: work / f"{name}.db" for name in ("day0", "day1", "day2")}


@dataclass
class Floor:
    """One day's floor: the bare read of its file and the bare writes of what it stored."""

    data: bytes
    base: Path
    diff: Diff
    read_state: bool

    def shape(self) -> str:
        return ", ".join(f"{t} +{len(a)}" + (f"/~{sum(len(r) for r in m.values())}" if m else "")
                         for t, (a, m) in self.diff.items() if a or m)

    def seconds(self) -> float:
        return _read_floor(self.data) + _write_floor(self.base, self.diff, self.read_state)


def floors(stores: dict[str, Path], first: Path, second: Path) -> tuple[Floor, Floor]:
    return (Floor(first.read_bytes(), stores["day0"], _diff(stores["day0"], stores["day1"]),
                  read_state=False),
            Floor(second.read_bytes(), stores["day1"], _diff(stores["day1"], stores["day2"]),
                  read_state=True))
