"""Take evidence files into the store: ledger, evidence runs, hosts, attribution, cases.

Re-ingesting adds nothing twice: a file whose bytes were seen is skipped by its SHA-256, and a
sighting the store already holds (inside a run of the same finding from the same source) adds
nothing, whichever file it came in. A sighting that repeats a host's latest finding only moves
the host's last sighting; one that says something new starts a run (see models.Observation).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import func, insert, or_, select
from sqlalchemy.orm import Session

from exhunt.cases.absence import PARTIAL_BELOW, after_file, listing_of
from exhunt.cases.attribution import AsnSource
from exhunt.cases.feeds import RowProblem, Sighting, hunt_report_row, read_any
from exhunt.cases.filework import FileWork
from exhunt.cases.owners import Attributor
from exhunt.cases.repeats import held_hosts, settle_repeats
from exhunt.cases.reports import EVENT, EXCHANGE, NOT_A_REPORT, ReportKind, classify
from exhunt.cases.shadowcsv import SightingColumns, read_shadowserver_columns
from exhunt.errors import InputError
from exhunt.readers.base import BoundedGzip
from exhunt.readers.feeds import MAX_RAW_CHARS, clean_text, csv_header, sniff_kind
from exhunt.store.bulk import core, gc_paused
from exhunt.store.db import Store
from exhunt.store.lake import ObservationLake
from exhunt.store.models import Host, IngestedFile, Reject, utcnow

# what reading a file gives: plain sightings as a table, the other usable ones as columns,
# unusable rows, rows read, the stored hosts when read meanwhile
ReadFile = tuple[pa.Table, SightingColumns, list[RowProblem], int, pa.Table | None]


@dataclass(frozen=True, slots=True)
class FileResult:
    name: str
    kind: str
    status: str  # ingested | set aside | skipped | already ingested
    rows: int = 0
    added: int = 0
    rejected: int = 0
    report: str | None = None  # the Shadowserver report type, when the file is one
    # in one line: why a file was set aside or skipped, and what absence made of it
    note: str = ""


class Ingestor:
    def __init__(self, store: Store, asn_table: AsnSource | None = None,
                 lake: ObservationLake | None = None, *,
                 partial_below: float = PARTIAL_BELOW) -> None:
        self.store = store
        self.partial_below = partial_below
        self.asn_table = asn_table
        self.lake = lake  # also keep every sighting in Parquet, for campaign-scale analytics

    def ingest(self, path: Path, *, host_ip: str | None = None) -> FileResult:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        return self.ingest_bytes(data, str(path), host_ip=host_ip)

    def ingest_bytes(self, data: bytes, name: str, *, host_ip: str | None = None) -> FileResult:
        data, inner = unpacked(data, name)
        kind = sniff_kind(data, inner)
        report = classify(csv_header(data), inner) if kind == "shadowserver" else None
        if report is not None and report.family == NOT_A_REPORT:
            return FileResult(name, report.report, "skipped", note=_not_a_report(report))
        hashed = hashlib.sha256(data)
        if kind == "hunt" and host_ip:
            # the same report bytes tied to another address are a different piece of evidence
            hashed.update(b"\x00host-ip=" + host_ip.encode("utf-8", "replace"))
        digest = hashed.hexdigest()
        return self._take_in(digest, name, kind, lambda session: self._read(
            session, data, inner, kind, host_ip, report), report)

    def ingest_report(self, report: dict[str, Any], data: bytes, name: str, *,
                      host_ip: str) -> FileResult:
        """One hunt report already parsed (the portal's upload), tied to `host_ip`: read by
        the same hunt-report reader, never sniffed again, never taken as another kind. The
        caller chose the host; the name inside the report does not rename it, and its dates
        cannot put it after its arrival (a report dated in the future would outrank all later
        evidence)."""
        digest = hashlib.sha256(data + b"\x00host-ip=" + host_ip.encode()).hexdigest()

        def read(session: Session) -> ReadFile:
            now = utcnow()
            row = hunt_report_row(report, name, host_ip=host_ip, received=now)
            if isinstance(row, Sighting):
                row = replace(row, hostname=None, seen_at=min(row.seen_at, now))
            columns, problems = self._sorted(session, [row])
            return SightingColumns.empty_table(), columns, problems, 1, None

        return self._take_in(digest, name, "hunt", read, None)

    def _take_in(self, digest: str, name: str, kind: str,
                 read: Callable[[Session], ReadFile], report: ReportKind | None) -> FileResult:
        with gc_paused(), self.store.writing() as session:
            if session.scalar(select(IngestedFile.id).where(IngestedFile.sha256 == digest)):
                return FileResult(name, kind, "already ingested")
            ledger = IngestedFile(sha256=digest, name=clean_text(name), kind=kind)
            session.add(ledger)
            session.flush()
            table, others, problems, rows, held = read(session)
            lake_rows = self._lake_rows(table, others)
            exchange_report = report is not None and report.family == EXCHANGE
            listing = listing_of(name, table, others) if exchange_report else None
            latest = _latest(table, others)
            repeated, table = settle_repeats(session, table, set(others.ip), held)
            columns = SightingColumns.from_table(table)
            columns.extend(others)
            now = utcnow()
            added = repeated + FileWork(session, ledger, Attributor(session, self.asn_table),
                                        now).run(columns)
            outcome = after_file(session, ledger, listing, latest, now, self.partial_below)
            self._store_rejects(session, ledger.id, problems)
            ledger.rows, ledger.added, ledger.rejected = rows, added, len(problems)
            taken = table.num_rows + len(others)
        if self.lake is not None:  # after the commit; the part is named by the file's hash
            self.lake.write_part(digest, lake_rows)
        absence = outcome.note() or ""
        if report is None:
            return FileResult(name, kind, "ingested", rows, added, len(problems), note=absence)
        status, note = _report_outcome(report, rows, taken)
        note = "; ".join(part for part in (note, absence) if part)
        return FileResult(name, kind, status, rows, added, len(problems), report.report, note)

    def _read(self, session: Session, data: bytes, name: str, kind: str, host_ip: str | None,
              report: ReportKind | None
              ) -> tuple[pa.Table, SightingColumns, list[RowProblem], int, pa.Table | None]:
        """(plain sightings as a table, the other usable ones as columns, unusable rows,
        rows read, the stored hosts when read meanwhile)."""
        if report is not None and report.family == EXCHANGE:
            # Arrow parses the file, mostly outside the GIL, while the stored hosts are read
            with ThreadPoolExecutor(max_workers=1) as pool:
                reading = pool.submit(read_shadowserver_columns, data, Path(name).name)
                held = held_hosts(session, data.count(b"\n"))
                fast = reading.result()
            if fast is not None:
                columns, problems = self._sorted(session, fast.others)
                return (fast.table, columns, problems, fast.table.num_rows + len(fast.others),
                        held)
        rows = list(read_any(data, name, kind, host_ip=host_ip, received=utcnow()))
        columns, problems = self._sorted(session, rows)
        return SightingColumns.empty_table(), columns, problems, len(rows), None

    def _sorted(self, session: Session, rows: list[Sighting | RowProblem]
                ) -> tuple[SightingColumns, list[RowProblem]]:
        """Usable sightings (hunt reports tied to their host) and the rest, with reasons."""
        sightings = [r for r in rows if isinstance(r, Sighting)]
        problems = [r for r in rows if isinstance(r, RowProblem)]
        sightings, unmatched = self._resolve_hunt_hosts(session, sightings)
        return SightingColumns.of(sightings), problems + unmatched

    def _lake_rows(self, table: pa.Table, others: SightingColumns
                   ) -> list[tuple[str, datetime, str, str]]:
        """Every sighting of the file for the Parquet lake (when there is one)."""
        if self.lake is None:
            return []
        read = SightingColumns.from_table(table)
        read.extend(others)
        return list(zip(read.ip, read.seen_at, read.state, read.source, strict=True))

    @staticmethod
    def _resolve_hunt_hosts(
        session: Session, sightings: list[Sighting]
    ) -> tuple[list[Sighting], list[RowProblem]]:
        """A hunt report without an address is tied to the one known host with its name."""
        kept: list[Sighting] = []
        problems: list[RowProblem] = []
        for s in sightings:
            if s.ip is not None:
                kept.append(s)
                continue
            name = (s.hostname or "").lower()
            ips = session.scalars(
                select(Host.ip).where(or_(func.lower(Host.hostname) == name,
                                          func.lower(Host.servername) == name)).limit(2)
            ).all()
            if len(ips) == 1:
                kept.append(_with_ip(s, ips[0]))
            else:
                why = "no known host" if not ips else "several known hosts"
                problems.append(RowProblem(
                    "hunt", s.line, f"hunt report host name {s.hostname!r} matches {why}; "
                    "ingest it with --host-ip ADDRESS", s.evidence))
        return kept, problems

    @staticmethod
    def _store_rejects(session: Session, file_id: int, problems: list[RowProblem]) -> None:
        if not problems:
            return
        session.execute(insert(core(Reject)), [
            {"file_id": file_id, "source": clean_text(p.source), "line": p.line,
             "reason": clean_text(p.reason), "raw": clean_text(p.raw, MAX_RAW_CHARS),
             "at": utcnow()}
            for p in problems
        ])


def _not_a_report(report: ReportKind) -> str:
    if report.report == "contacts list":
        return ("a contacts list (network, org, email), not a report: "
                "import it with `exhunt contacts import`; nothing ingested")
    return "not a report: its header has no 'ip' or 'src_ip' column; nothing ingested"


def _report_outcome(report: ReportKind, rows: int, taken: int) -> tuple[str, str]:
    """(status, one line) for a Shadowserver report: an Exchange report is ingested; any other
    is set aside unless some of its rows name Exchange."""
    if report.family == EXCHANGE:
        return "ingested", ""
    what = f"{report.summary}, {rows} rows"
    if taken:
        return "ingested", (f"{what}: {taken} name Exchange and were taken; the rest set aside, "
                            "not about Exchange")
    if report.family == EVENT:
        return "set aside", (f"{what}: set aside, events name who attacked or called out "
                             "(src_ip), not an Exchange server of the address's owner")
    return "set aside", f"{what}: set aside, not about Exchange"


GZIP_MAGIC = b"\x1f\x8b"
MAX_EXPANDED = 1 << 30  # a daily report is tens of MB; more than this from a .gz is a bomb


def unpacked(data: bytes, name: str) -> tuple[bytes, str]:
    """A gzip file (reports are often kept compressed) as the bytes it holds, and its name
    without '.gz'; any other file as it is. Bounded: a file that expands beyond MAX_EXPANDED,
    is cut short or is not gzip after all is an InputError naming it."""
    if not data.startswith(GZIP_MAGIC):
        return data, name
    stream = BoundedGzip(io.BufferedReader(io.BytesIO(data)), limit=MAX_EXPANDED)
    try:
        body = b"".join(iter(lambda: stream.read(8 << 20), b""))
    except EOFError as exc:
        raise InputError(f"{name}: the gzip file is cut short") from exc
    except ValueError as exc:  # the bound
        raise InputError(f"{name}: {exc}; not read") from exc
    except OSError as exc:
        raise InputError(f"{name}: not a readable gzip file: {exc}") from exc
    inner = name[:-3] if name.lower().endswith(".gz") else name
    return body, inner


def _latest(table: pa.Table, others: SightingColumns) -> datetime | None:
    """The file's latest sighting (the day whose counts it moves)."""
    times = [t for t in (pc.max(table.column("seen_at")).as_py() if table.num_rows else None,
                         max(others.seen_at, default=None)) if t is not None]
    return max(times, default=None)


def _with_ip(s: Sighting, ip: str) -> Sighting:
    return Sighting(s.source, ip, s.seen_at, s.state, s.evidence, s.line, s.port, s.hostname,
                    s.servername, s.build, s.asn, s.country, s.naics, s.feed_sector)
