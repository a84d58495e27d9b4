"""Observations at internet scale: Parquet part files in one folder, queried with DuckDB.

One part per ingested file, named by the file's SHA-256, so taking a file in twice rewrites
the same part instead of adding rows. Columns: ip (text), seen_at (timestamp, UTC),
state (HostState value), source.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA = pa.schema([
    ("ip", pa.string()),
    ("seen_at", pa.timestamp("s")),
    ("state", pa.dictionary(pa.int8(), pa.string())),
    ("source", pa.dictionary(pa.int8(), pa.string())),
])
REMEDIATED = ("patched", "clean")


@dataclass(frozen=True, slots=True)
class UptakePoint:
    day: str  # YYYY-MM-DD
    patched: int
    share: float


class ObservationLake:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def write_part(self, name: str, rows: Iterable[tuple[str, datetime, str, str]]) -> Path:
        """Write (ip, seen_at, state, source) rows as part `name` (replacing it if present)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        ips: list[str] = []
        times: list[datetime] = []
        states: list[str] = []
        sources: list[str] = []
        for ip, seen_at, state, source in rows:
            ips.append(ip)
            times.append(seen_at)
            states.append(state)
            sources.append(source)
        table = pa.table([pa.array(ips, pa.string()), pa.array(times, pa.timestamp("s")),
                          pa.array(states).dictionary_encode(),
                          pa.array(sources).dictionary_encode()], names=SCHEMA.names)
        return self.write_table(name, table)

    def write_table(self, name: str, table: pa.Table) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"{name}.parquet"
        partial = self.folder / f".{name}.parquet.tmp"
        pq.write_table(table, partial, compression="zstd")
        partial.replace(final)  # a reader never sees half a part
        return final

    def parts(self) -> list[Path]:
        return sorted(self.folder.glob("*.parquet"))

    def _connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        glob = str(self.folder / "*.parquet").replace("'", "''")
        con.execute(f"CREATE VIEW obs AS SELECT * FROM read_parquet('{glob}')")
        return con

    def count(self) -> int:
        if not self.parts():
            return 0
        with self._connect() as con:
            row = con.execute("SELECT count(*) FROM obs").fetchone()
        return int(row[0]) if row else 0

    def uptake(self) -> tuple[int, list[UptakePoint]]:
        """Of the hosts first seen vulnerable, how many were seen patched or clean (after that)
        by the end of each day: (hosts first seen vulnerable, curve)."""
        if not self.parts():
            return 0, []
        query = """
            WITH first_vuln AS (
                SELECT ip, min(seen_at) AS fv FROM obs WHERE state = 'vulnerable' GROUP BY ip),
            first_fix AS (
                SELECT o.ip, min(o.seen_at) AS ff FROM obs o JOIN first_vuln f USING (ip)
                WHERE o.state IN ('patched', 'clean') AND o.seen_at >= f.fv GROUP BY o.ip),
            days AS (SELECT DISTINCT CAST(seen_at AS DATE) AS day FROM obs),
            fixed_per_day AS (
                SELECT CAST(ff AS DATE) AS day, count(*) AS n FROM first_fix GROUP BY 1)
            SELECT d.day, coalesce(sum(f.n) OVER (ORDER BY d.day), 0) AS patched,
                   (SELECT count(*) FROM first_vuln) AS total
            FROM days d LEFT JOIN fixed_per_day f USING (day) ORDER BY d.day
        """
        with self._connect() as con:
            rows = con.execute(query).fetchall()
        total = int(rows[0][2]) if rows else 0
        curve = [UptakePoint(str(day), int(patched), int(patched) / total if total else 0.0)
                 for day, patched, _ in rows]
        return total, curve
