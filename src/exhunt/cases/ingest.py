"""Take evidence files into the store: ledger, observations, hosts, attribution, cases.

Re-ingesting adds nothing twice: a file whose bytes were seen is skipped by its SHA-256, and a
sighting already stored (same source, address, port, time and finding) is skipped by its
natural key, whichever file it came in.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Table, func, insert, or_, select
from sqlalchemy.orm import Session

from exhunt.cases.attribution import AsnTable, NetworkIndex, choose_sector, country_of
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

    def __init__(self, session: Session, asn_table: AsnTable | None = None) -> None:
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

    def attribute(self, host: Host, feed_sector: str | None = None) -> bool:
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
    def __init__(self, store: Store, asn_table: AsnTable | None = None,
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


class _FileWork:
    """The store updates for one file's sightings, in one transaction."""

    def __init__(self, session: Session, ledger: IngestedFile, asn_table: AsnTable | None):
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
        hosts, new_ips = self._hosts_for(by_host)
        before = {ip: hosts[ip].state for ip in by_host}
        # states move in memory first, so a new host is written once, fully formed; a host
        # whose new evidence is older than what we hold is replayed from the store afterwards
        late = [ip for ip in by_host if self._move(hosts[ip], by_host[ip], ip in new_ips)]
        for ip in set(by_host) - set(late):
            self._note_worse(hosts[ip], before[ip])
        self._insert_new_hosts([hosts[ip] for ip in sorted(new_ips)])
        self.session.flush()  # updates to hosts already stored
        self._insert_observations(fresh, hosts)
        for ip in late:
            replay(self.session, hosts[ip])
            self._note_worse(hosts[ip], before[ip])
        touched = self._record_moves(hosts, before)
        for org_id in touched:
            case = ensure_case(self.session, self.attributor.organisation(org_id))
            refresh_case_status(self.session, case, self.now)
        return len(fresh)

    def _new_sightings(self, sightings: list[Sighting]) -> list[tuple[str, Sighting]]:
        keyed: dict[str, Sighting] = {}
        for s in sightings:
            keyed.setdefault(natural_key(s), s)
        keys = list(keyed)
        known: set[str] = set()
        for part in chunks(keys):
            known.update(self.session.scalars(
                select(Observation.natural_key).where(Observation.natural_key.in_(part))))
        return [(k, keyed[k]) for k in keys if k not in known]

    def _hosts_for(self, by_host: dict[str, list[Sighting]]) -> tuple[dict[str, Host], set[str]]:
        hosts: dict[str, Host] = {}
        for part in chunks(sorted(by_host)):
            for host in self.session.scalars(select(Host).where(Host.ip.in_(part))):
                hosts[host.ip] = host
        new_ips = set(by_host) - set(hosts)
        for ip in new_ips:
            s = by_host[ip][0]
            host = Host(ip=ip, naics=s.naics, country=s.country, asn=s.asn)
            self.attributor.attribute(host, s.feed_sector)
            hosts[ip] = host
        return hosts, new_ips

    def _insert_new_hosts(self, new_hosts: list[Host]) -> None:
        """New hosts go in through Core in one executemany (the ORM unit of work costs more
        than the insert itself at 100,000s of rows); the objects stay outside the session and
        only learn their ids."""
        if not new_hosts:
            return
        table = core(Host)
        columns = [c.key for c in table.columns if c.key != "id"]
        rows = [{c: getattr(h, c) for c in columns} for h in new_hosts]
        for batch in chunks(rows, 5000):
            self.session.execute(insert(table), list(batch))
        by_ip = {h.ip: h for h in new_hosts}
        for ips in chunks(list(by_ip)):
            for host_id, ip in self.session.execute(
                    select(Host.id, Host.ip).where(Host.ip.in_(ips))):
                by_ip[ip].id = host_id

    def _insert_observations(self, fresh: list[tuple[str, Sighting]], hosts: dict[str, Host]
                             ) -> None:
        rows = [
            {"natural_key": key, "host_id": hosts[s.ip].id, "file_id": self.ledger.id,
             "source": s.source, "seen_at": s.seen_at, "state": s.state.value, "port": s.port,
             "build": s.build, "evidence": s.evidence}
            for key, s in fresh if s.ip
        ]
        for part in chunks(rows, 5000):
            # the Core table, not the ORM entity: no per-row ORM bookkeeping at 100,000s of rows
            self.session.execute(insert(core(Observation)), list(part))

    def _move(self, host: Host, seen: list[Sighting], is_new: bool) -> bool:
        """Apply one host's new sightings; True when it must be replayed from the store."""
        seen.sort(key=lambda s: s.seen_at)
        self._describe(host, seen)
        late = host.last_seen is not None and seen[0].seen_at < host.last_seen
        if not late:
            self._apply_in_order(host, seen, is_new)
        host.first_seen = min(filter(None, [host.first_seen, seen[0].seen_at]))
        host.last_seen = max(filter(None, [host.last_seen, seen[-1].seen_at]))
        return late

    def _note_worse(self, host: Host, was: str | None) -> None:
        if host.state and (was is None or RANK[HostState(host.state)] > RANK[HostState(was)]):
            host.last_worse_at = self.now  # when we learned it: drives re-notification

    def _record_moves(self, hosts: dict[str, Host], before: dict[str, str | None]) -> set[int]:
        touched: set[int] = set()
        events: list[dict[str, object]] = []
        for ip, was in before.items():
            host = hosts[ip]
            if host.organisation_id is not None:
                touched.add(host.organisation_id)
            if host.state != was:
                events.append({"host_id": host.id, "kind": "host-state", "at": self.now,
                               "detail": f"{ip}: {was or 'new'} -> {host.state}"})
        if events:
            self.session.execute(insert(core(Event)), events)
        return touched

    def _apply_in_order(self, host: Host, seen: list[Sighting], is_new: bool) -> None:
        last_scan: HostState | None = None
        if not is_new and host.state is not None and any(s.state is HostState.CLEAN for s in seen):
            last_scan = last_scan_state(self.session, host.id)
        for s in seen:
            if s.source != "hunt" and s.state in SCAN_STATES:
                last_scan = s.state
            apply(host, s.state, s.seen_at, last_scan)

    @staticmethod
    def _describe(host: Host, seen: list[Sighting]) -> None:
        latest = seen[-1]
        host.hostname = latest.hostname or host.hostname
        host.servername = latest.servername or host.servername
        if latest.naics:
            host.naics = latest.naics
        if host.asn is None and latest.asn is not None:
            host.asn = latest.asn

