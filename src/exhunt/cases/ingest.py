"""Take evidence files into the store: ledger, observations, hosts, attribution, cases.

Re-ingesting adds nothing twice: a file whose bytes were seen is skipped by its SHA-256, and a
sighting already stored (same source, address, port, time and finding) is skipped by its
natural key, whichever file it came in.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from exhunt.cases.attribution import (
    AsnSource,
    Attributed,
    NetworkIndex,
    choose_sector,
    country_of,
)
from exhunt.cases.feeds import MAX_RAW_CHARS, RowProblem, Sighting, clean_text, read_any, sniff_kind
from exhunt.cases.tracking import SCAN_STATES, apply, last_scan_state, refresh_case_status, replay
from exhunt.errors import InputError
from exhunt.store.db import Store
from exhunt.store.lake import ObservationLake
from exhunt.store.models import (
    RANK,
    Base,
    Case,
    Event,
    Host,
    HostState,
    IngestedFile,
    Network,
    Observation,
    Organisation,
    Reject,
    utcnow,
)

T = TypeVar("T")
CHUNK = 500  # rows per IN (...) query; both databases accept this comfortably


@dataclass(frozen=True, slots=True)
class FileResult:
    name: str
    kind: str
    status: str  # ingested | already ingested
    rows: int = 0
    added: int = 0
    rejected: int = 0


def core(model: type[Base]) -> Table:
    """The Core table of a model (bulk inserts without per-row ORM bookkeeping)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _driver_rows(
    session: Session, table: Table, columns: Sequence[str], rows: Sequence[Sequence[object]]
) -> tuple[str, list[tuple[object, ...]]] | None:
    """(parameter marker, rows converted for the driver), or None for a driver whose
    parameter style is not positional. Each column's bind conversion (SQLite keeps datetimes
    as text) is looked up once and applied only where the dialect has one."""
    dialect = session.connection().dialect
    marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
    if marker is None:
        return None
    converters = [_fast(table.c[c].type.dialect_impl(dialect).bind_processor(dialect))
                  for c in columns]
    convert: list[tuple[int, Callable[[Any], Any], dict[object, object]]] = [
        (i, f, {}) for i, f in enumerate(converters) if f is not None]
    if not convert:
        return marker, [tuple(r) for r in rows]
    out: list[tuple[object, ...]] = []
    for row in rows:
        values = list(row)
        for i, f, memo in convert:  # feeds repeat timestamps: convert each distinct one once
            value = values[i]
            if value is not None:
                done = memo.get(value)
                if done is None:
                    done = memo[value] = f(value)
                values[i] = done
        out.append(tuple(values))
    return marker, out


_PROBE = datetime(2021, 3, 2, 23, 59, 58, 123456)


def _fast(convert: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """SQLite stores a naive datetime as 'YYYY-MM-DD HH:MM:SS.ffffff', which the C-level
    isoformat writes several times faster than the dialect's Python formatter; used only when
    both give the same text (checked here), and only for naive datetimes."""
    if convert is None:
        return None
    try:
        same = convert(_PROBE) == _PROBE.isoformat(" ", "microseconds")
    except (TypeError, ValueError, AttributeError):
        same = False
    if not same:
        return convert

    def iso_or_dialect(value: Any) -> Any:
        if type(value) is datetime and value.tzinfo is None:
            return value.isoformat(" ", "microseconds")
        return convert(value)

    return iso_or_dialect


def bulk_insert(session: Session, table: Table, columns: Sequence[str],
                rows: Sequence[Sequence[object]]) -> None:
    """INSERT many rows (values in `columns` order) straight through the driver's
    executemany: Core's executemany spends more time building each row's parameters than the
    database spends storing them."""
    if not rows:
        return
    prepared = _driver_rows(session, table, columns, rows)
    if prepared is None:  # another parameter style: let Core do it
        for part in chunks(rows, 5000):
            session.execute(insert(table), [dict(zip(columns, r, strict=True)) for r in part])
        return
    marker, values = prepared
    quote = session.connection().dialect.identifier_preparer.quote
    sql = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
           f"VALUES ({', '.join([marker] * len(columns))})")
    for batch in chunks(values, 5000):
        session.connection().exec_driver_sql(sql, list(batch))


def bulk_update(session: Session, table: Table, columns: Sequence[str],
                rows: Sequence[Sequence[object]]) -> None:
    """UPDATE table SET columns WHERE id = ..., one executemany; each row holds the new
    values in `columns` order, then the id."""
    if not rows:
        return
    prepared = _driver_rows(session, table, [*columns, "id"], rows)
    if prepared is None:
        statement = (update(table).where(table.c.id == bindparam("row_id"))
                     .values({c: bindparam("new_" + c) for c in columns}))
        params = [{"row_id": r[-1], **{"new_" + c: v for c, v in zip(columns, r, strict=False)}}
                  for r in rows]
        for part in chunks(params, 5000):
            session.connection().execute(statement, list(part))
        return
    marker, values = prepared
    quote = session.connection().dialect.identifier_preparer.quote
    sql = (f"UPDATE {quote(table.name)} SET {', '.join(f'{quote(c)} = {marker}' for c in columns)}"
           f" WHERE {quote('id')} = {marker}")
    for batch in chunks(values, 5000):
        session.connection().exec_driver_sql(sql, list(batch))


def case_reference(organisation_name: str) -> str:
    """Stable across runs and databases: derived from the organisation's name."""
    digest = hashlib.sha256(organisation_name.encode("utf-8")).hexdigest()[:10].upper()
    return f"EXH-{digest}"


def natural_key(s: Sighting) -> str:
    text = "\x1f".join(
        [s.source, s.ip or "", str(s.port or ""), s.seen_at.isoformat(), s.state.value, s.evidence]
    )
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def load_network_index(session: Session) -> NetworkIndex:
    index = NetworkIndex()
    for cidr, org_id in session.execute(select(Network.cidr, Network.organisation_id)):
        index.add(cidr, org_id)
    return index


def ensure_case(session: Session, organisation: Organisation) -> Case:
    case = session.scalar(select(Case).where(Case.organisation_id == organisation.id))
    if case is None:
        case = Case(organisation_id=organisation.id, reference=case_reference(organisation.name),
                    status="open", opened_at=utcnow())
        session.add(case)
        session.flush()
        session.add(Event(case_id=case.id, kind="case-opened",
                          detail=f"case {case.reference} opened for {organisation.name}"))
    return case


class Attributor:
    """Fills a host's owner, AS, country and sector from what is known offline."""

    def __init__(self, session: Session, asn_table: AsnSource | None = None) -> None:
        self.session = session
        self.index = load_network_index(session)
        self.asn_table = asn_table
        self._orgs: dict[int, Organisation] = {
            o.id: o for o in session.scalars(select(Organisation))}

    def organisation(self, org_id: int) -> Organisation:
        if org_id not in self._orgs:
            org = self.session.get(Organisation, org_id)
            assert org is not None
            self._orgs[org_id] = org
        return self._orgs[org_id]

    def attribute(self, host: Attributed, feed_sector: str | None = None) -> bool:
        """True when the host's owner changed."""
        owner = self.index.lookup(host.ip)
        new_org = owner.organisation_id if owner else None
        changed = new_org != host.organisation_id
        host.organisation_id = new_org
        host.network = owner.cidr if owner else None
        if self.asn_table is not None:
            info = self.asn_table.lookup(host.ip)
            if info is not None:
                host.asn, host.as_name = info.asn, info.name
        host.country = country_of(host.ip) or host.country
        org_sector = self.organisation(new_org).sector if new_org else None
        host.sector, host.sector_source = choose_sector(org_sector, host.naics, feed_sector)
        return changed


class Ingestor:
    def __init__(self, store: Store, asn_table: AsnSource | None = None,
                 lake: ObservationLake | None = None) -> None:
        self.store = store
        self.asn_table = asn_table
        self.lake = lake  # also keep every sighting in Parquet, for campaign-scale analytics

    def ingest(self, path: Path, *, host_ip: str | None = None) -> FileResult:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        return self.ingest_bytes(data, str(path), host_ip=host_ip)

    def ingest_bytes(self, data: bytes, name: str, *, host_ip: str | None = None) -> FileResult:
        kind = sniff_kind(data, name)
        hashed = hashlib.sha256(data)
        if kind == "hunt" and host_ip:
            # the same report bytes tied to another address are a different piece of evidence
            hashed.update(b"\x00host-ip=" + host_ip.encode("utf-8", "replace"))
        digest = hashed.hexdigest()
        with self.store.transaction() as session:
            if session.scalar(select(IngestedFile.id).where(IngestedFile.sha256 == digest)):
                return FileResult(name, kind, "already ingested")
            ledger = IngestedFile(sha256=digest, name=clean_text(name), kind=kind)
            session.add(ledger)
            session.flush()
            rows = list(read_any(data, name, kind, host_ip=host_ip, received=utcnow()))
            sightings = [r for r in rows if isinstance(r, Sighting)]
            problems = [r for r in rows if isinstance(r, RowProblem)]
            sightings, unmatched = self._resolve_hunt_hosts(session, sightings)
            problems += unmatched
            added = _FileWork(session, ledger, self.asn_table).run(sightings)
            self._store_rejects(session, ledger.id, problems)
            ledger.rows, ledger.added, ledger.rejected = len(rows), added, len(problems)
        if self.lake is not None:  # after the commit; the part is named by the file's hash
            self.lake.write_part(digest, ((s.ip, s.seen_at, s.state.value, s.source)
                                          for s in sightings if s.ip))
        return FileResult(name, kind, "ingested", len(rows), added, len(problems))

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


def _with_ip(s: Sighting, ip: str) -> Sighting:
    return Sighting(s.source, ip, s.seen_at, s.state, s.evidence, s.line, s.port, s.hostname,
                    s.servername, s.build, s.asn, s.country, s.naics, s.feed_sector)


@dataclass(slots=True)
class HostRow:
    """A plain, mutable copy of one hosts row: ingest moves thousands of these per file, and
    the ORM's per-attribute instrumentation cost more than the SQL itself."""

    ip: str
    id: int = 0  # 0 until inserted
    hostname: str | None = None
    servername: str | None = None
    organisation_id: int | None = None
    network: str | None = None
    asn: int | None = None
    as_name: str | None = None
    country: str | None = None
    sector: str | None = None
    sector_source: str | None = None
    naics: str | None = None
    state: str | None = None
    worst_state: str | None = None
    state_since: datetime | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    last_worse_at: datetime | None = None
    first_vulnerable_at: datetime | None = None
    first_patched_at: datetime | None = None

    def values(self) -> tuple[object, ...]:
        return tuple(getattr(self, c) for c in HOST_COLUMNS)


HOST_COLUMNS: tuple[str, ...] = tuple(c.key for c in core(Host).columns)
assert set(HOST_COLUMNS) == set(HostRow.__slots__), "HostRow must mirror the hosts table"


class _FileWork:
    """The store updates for one file's sightings, in one transaction, set at a time: one
    query per chunk of keys or addresses, one executemany per table, case bookkeeping once
    per organisation."""

    def __init__(self, session: Session, ledger: IngestedFile, asn_table: AsnSource | None):
        self.session = session
        self.ledger = ledger
        self.attributor = Attributor(session, asn_table)
        self.now = utcnow()

    def run(self, sightings: list[Sighting]) -> int:
        fresh = self._new_sightings(sightings)
        if not fresh:
            return 0
        by_host: dict[str, list[Sighting]] = defaultdict(list)
        for _, s in fresh:
            if s.ip:
                by_host[s.ip].append(s)
        hosts, stored = self._hosts_for(by_host)
        before = {ip: hosts[ip].state for ip in by_host}
        # states move in memory first, so a new host is written once, fully formed; a host
        # whose new evidence is older than what we hold is replayed from the store afterwards
        late = [ip for ip in by_host if self._move(hosts[ip], by_host[ip], ip not in stored)]
        for ip in set(by_host) - set(late):
            self._note_worse(hosts[ip], before[ip])
        self._insert_new_hosts([hosts[ip] for ip in sorted(by_host) if ip not in stored])
        self._insert_observations(fresh, hosts)
        for ip in late:
            replay(self.session, hosts[ip])
            self._note_worse(hosts[ip], before[ip])
        self._update_stored_hosts(hosts, stored)
        touched = self._record_moves(hosts, before)
        for org_id in sorted(touched):
            case = ensure_case(self.session, self.attributor.organisation(org_id))
            refresh_case_status(self.session, case, self.now)
        return len(fresh)

    def _new_sightings(self, sightings: list[Sighting]) -> list[tuple[str, Sighting]]:
        keyed: dict[str, Sighting] = {}
        for s in sightings:
            keyed.setdefault(natural_key(s), s)
        if not self._any_observations():
            return list(keyed.items())
        keys = list(keyed)
        known: set[str] = set()
        for part in chunks(keys):
            known.update(self.session.scalars(
                select(Observation.natural_key).where(Observation.natural_key.in_(part))))
        return [(k, keyed[k]) for k in keys if k not in known]

    def _any_observations(self) -> bool:
        return self.session.scalar(select(Observation.id).limit(1)) is not None

    def _hosts_for(
        self, by_host: dict[str, list[Sighting]]
    ) -> tuple[dict[str, HostRow], dict[str, tuple[object, ...]]]:
        """Every host the file names, as plain rows; and, for those already stored, their
        values as read (to write back only what changed)."""
        table = core(Host)
        hosts: dict[str, HostRow] = {}
        stored: dict[str, tuple[object, ...]] = {}
        if self.session.scalar(select(Host.id).limit(1)) is not None:
            for part in chunks(sorted(by_host)):
                for row in self.session.execute(select(table).where(table.c.ip.in_(part))):
                    host = HostRow(**row._asdict())
                    hosts[host.ip] = host
                    stored[host.ip] = host.values()
        for ip, seen in by_host.items():
            if ip in hosts:
                continue
            s = seen[0]
            host = HostRow(ip=ip, naics=s.naics, country=s.country, asn=s.asn)
            self.attributor.attribute(host, s.feed_sector)
            hosts[ip] = host
        return hosts, stored

    def _insert_new_hosts(self, new_hosts: list[HostRow]) -> None:
        if not new_hosts:
            return
        table = core(Host)
        columns = [c for c in HOST_COLUMNS if c != "id"]
        # ids only grow (SQLite rowid, PostgreSQL sequence): the new rows are the ones above
        # the highest id before the insert, read back in one query rather than one per chunk
        floor = self.session.scalar(select(func.max(table.c.id))) or 0
        bulk_insert(self.session, table, columns,
                    [[getattr(h, c) for c in columns] for h in new_hosts])
        by_ip = {h.ip: h for h in new_hosts}
        for host_id, ip in self.session.execute(
                select(table.c.id, table.c.ip).where(table.c.id > floor)):
            if ip in by_ip:  # a host another run stored meanwhile is not ours
                by_ip[ip].id = host_id
        missing = [ip for ip, h in by_ip.items() if not h.id]
        assert not missing, f"inserted hosts not read back: {missing[:3]}"

    def _update_stored_hosts(self, hosts: dict[str, HostRow],
                             stored: dict[str, tuple[object, ...]]) -> None:
        """One executemany UPDATE for the stored hosts whose values moved."""
        changed = [hosts[ip] for ip, was in stored.items() if hosts[ip].values() != was]
        if not changed:
            return
        columns = [c for c in HOST_COLUMNS if c not in ("id", "ip")]
        bulk_update(self.session, core(Host), columns,
                    [[*(getattr(h, c) for c in columns), h.id] for h in changed])

    def _insert_observations(self, fresh: list[tuple[str, Sighting]], hosts: dict[str, HostRow]
                             ) -> None:
        file_id = self.ledger.id
        columns = ["natural_key", "host_id", "file_id", "source", "seen_at", "state", "port",
                   "build", "evidence"]
        bulk_insert(self.session, core(Observation), columns, [
            (key, hosts[s.ip].id, file_id, s.source, s.seen_at, s.state.value, s.port, s.build,
             s.evidence)
            for key, s in fresh if s.ip])

    def _move(self, host: HostRow, seen: list[Sighting], is_new: bool) -> bool:
        """Apply one host's new sightings; True when it must be replayed from the store."""
        seen.sort(key=lambda s: s.seen_at)
        self._describe(host, seen)
        late = host.last_seen is not None and seen[0].seen_at < host.last_seen
        if not late:
            self._apply_in_order(host, seen, is_new)
        first, last = seen[0].seen_at, seen[-1].seen_at
        host.first_seen = first if host.first_seen is None else min(host.first_seen, first)
        host.last_seen = last if host.last_seen is None else max(host.last_seen, last)
        return late

    def _note_worse(self, host: HostRow, was: str | None) -> None:
        if host.state and (was is None or RANK[HostState(host.state)] > RANK[HostState(was)]):
            host.last_worse_at = self.now  # when we learned it: drives re-notification

    def _record_moves(self, hosts: dict[str, HostRow], before: dict[str, str | None]) -> set[int]:
        touched: set[int] = set()
        events: list[tuple[object, ...]] = []
        for ip, was in before.items():
            host = hosts[ip]
            if host.organisation_id is not None:
                touched.add(host.organisation_id)
            if host.state != was:
                events.append((host.id, "host-state", self.now,
                               f"{ip}: {was or 'new'} -> {host.state}"))
        bulk_insert(self.session, core(Event), ["host_id", "kind", "at", "detail"], events)
        return touched

    def _apply_in_order(self, host: HostRow, seen: list[Sighting], is_new: bool) -> None:
        last_scan: HostState | None = None
        if not is_new and host.state is not None and any(s.state is HostState.CLEAN for s in seen):
            last_scan = last_scan_state(self.session, host.id)
        for s in seen:
            if s.source != "hunt" and s.state in SCAN_STATES:
                last_scan = s.state
            apply(host, s.state, s.seen_at, last_scan)

    @staticmethod
    def _describe(host: HostRow, seen: list[Sighting]) -> None:
        latest = seen[-1]
        host.hostname = latest.hostname or host.hostname
        host.servername = latest.servername or host.servername
        if latest.naics:
            host.naics = latest.naics
        if host.asn is None and latest.asn is not None:
            host.asn = latest.asn
