"""Who owns a host and which case holds it: the offline attribution of one host (contacts
list, AS table, country, sector) and the one case per organisation, opened and judged for many
organisations at once."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from exhunt.cases.attribution import (
    AsnSource,
    Attributed,
    NetworkIndex,
    choose_sector,
    country_of,
)
from exhunt.cases.tracking import RESOLVED_STATES
from exhunt.store.bulk import bulk_insert, bulk_update, core, fetch_rows, in_parts
from exhunt.store.models import (
    COMPROMISED,
    RANK,
    Case,
    Event,
    Host,
    HostState,
    Network,
    Organisation,
)


def case_reference(organisation_name: str) -> str:
    """Stable across runs and databases: derived from the organisation's name."""
    digest = hashlib.sha256(organisation_name.encode("utf-8")).hexdigest()[:10].upper()
    return f"EXH-{digest}"


def load_network_index(session: Session) -> NetworkIndex:
    index = NetworkIndex()
    for cidr, org_id in session.execute(select(Network.cidr, Network.organisation_id)):
        index.add(cidr, org_id)
    return index


_ORGS = select(Organisation.id, Organisation.name, Organisation.sector)


class Attributor:
    """Fills a host's owner, AS, country and sector from what is known offline."""

    def __init__(self, session: Session, asn_table: AsnSource | None = None) -> None:
        self.session = session
        self.asn_table = asn_table
        # both read on first use: a daily report that only repeats what is known needs neither
        self._index: NetworkIndex | None = None
        self._orgs: dict[int, tuple[str, str | None]] | None = None

    @property
    def index(self) -> NetworkIndex:
        if self._index is None:
            self._index = load_network_index(self.session)
        return self._index

    def organisation(self, org_id: int) -> tuple[str, str | None]:
        """(name, sector) of an organisation."""
        if self._orgs is None:  # read once as plain rows: a constituency has 10,000s of them
            self._orgs = {org: (name, sector)
                          for org, name, sector in fetch_rows(self.session, _ORGS)}
        if org_id not in self._orgs:
            row = self.session.execute(_ORGS.where(Organisation.id == org_id)).one()
            self._orgs[org_id] = (row.name, row.sector)
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
        _place(host)
        org_sector = self.organisation(new_org)[1] if new_org else None
        host.sector, host.sector_source = choose_sector(org_sector, host.naics, feed_sector)
        return changed


def _place(host: Attributed) -> None:
    """Both countries kept: the feed's (what a new host's row said) and the registry's (RIR
    allocation, offline). The case uses the registry's where it knows the address, as the
    feed's geolocation can place a host where it is not registered; else the feed's."""
    if not getattr(host, "id", None) and host.country_source is None:
        host.feed_country = host.country  # a host not stored yet: its country is the feed's
    host.registry_country = country_of(host.ip) or host.registry_country
    if host.registry_country:
        host.country, host.country_source = host.registry_country, "registry"
    elif host.feed_country:
        host.country, host.country_source = host.feed_country, "feed"


EVENT_COLUMNS = ("case_id", "host_id", "kind", "at", "detail")


class CaseBook:
    """Cases of many organisations at once: opened where missing, open or resolved by the
    states of their hosts."""

    def __init__(self, session: Session, attributor: Attributor, now: datetime) -> None:
        self.session = session
        self.attributor = attributor
        self.now = now
        self.cases: dict[int, tuple[int, str, str]] = {}  # org -> (case id, status, reference)
        self.counts: dict[int, tuple[int, int]] = {}  # org -> (hosts, worst rank) as stored

    def ensure(self, org_ids: set[int]) -> dict[int, int]:
        table = core(Case)
        wanted = sorted(org_ids)
        query = select(table.c.id, table.c.organisation_id, table.c.status, table.c.reference,
                       table.c.hosts, table.c.worst_rank)
        for part in in_parts(self.session, query, table.c.organisation_id, wanted):
            for case_id, org_id, status, reference, hosts, rank in fetch_rows(self.session,
                                                                              part):
                if org_id in org_ids:
                    self.cases[org_id] = (case_id, status, reference)
                    self.counts[org_id] = (hosts, rank)
        missing = [o for o in wanted if o not in self.cases]
        if missing:
            self._open(missing)
        return {o: self.cases[o][0] for o in wanted}

    def _open(self, org_ids: list[int]) -> None:
        table = core(Case)
        names = {o: self.attributor.organisation(o)[0] for o in org_ids}
        bulk_insert(self.session, table, ["reference", "organisation_id", "status", "flagged",
                                          "opened_at", "hosts", "worst_rank"],
                    [(case_reference(names[o]), o, "open", False, self.now, 0, -1)
                     for o in org_ids])
        events: list[tuple[object, ...]] = []
        query = select(table.c.id, table.c.organisation_id, table.c.reference)
        for part in in_parts(self.session, query, table.c.organisation_id, org_ids):
            for case_id, org_id, reference in fetch_rows(self.session, part):
                if org_id in names:
                    self.cases[org_id] = (case_id, "open", reference)
                    events.append((case_id, "case-opened", self.now,
                                   f"case {reference} opened for {names[org_id]}"))
        bulk_insert(self.session, core(Event), ["case_id", "kind", "at", "detail"], events)

    def judge(self, org_ids: set[int]) -> list[tuple[object, ...]]:
        """Each case's status from the states of its hosts (status_of), and the host count
        and worst state the case lists sort by; the events of the cases whose status moved.
        The hosts are counted in SQL, one grouped row per organisation."""
        hosts = core(Host).c
        rank = func.max(case({s.value: RANK[s] for s in HostState}, value=hosts.state))
        resolved = hosts.state.in_([s.value for s in RESOLVED_STATES])
        settled = or_(resolved, and_(hosts.unreported_since.is_not(None),
                                     hosts.state.is_not(None),
                                     hosts.state.not_in([s.value for s in COMPROMISED])))
        query = (select(hosts.organisation_id, func.count(), rank,
                        func.sum(case((resolved, 1), else_=0)),
                        func.sum(case((settled, 1), else_=0)))
                 .group_by(hosts.organisation_id))
        held: dict[int, tuple[int, int, int, int]] = {}
        for part in in_parts(self.session, query, hosts.organisation_id, sorted(org_ids)):
            for org_id, n, worst_rank, n_resolved, n_settled in fetch_rows(self.session, part):
                if org_id in org_ids:
                    held[org_id] = (n, -1 if worst_rank is None else worst_rank,
                                    n_resolved, n_settled)
        moved: list[tuple[object, ...]] = []
        counted: list[tuple[object, ...]] = []
        events: list[tuple[object, ...]] = []
        for org_id in sorted(org_ids):
            n, worst_rank, n_resolved, n_settled = held.get(org_id, (0, -1, 0, 0))
            if self.counts.get(org_id) != (n, worst_rank):
                counted.append((n, _BY_RANK.get(worst_rank), worst_rank, self.cases[org_id][0]))
            status = status_of(n, n_resolved, n_settled)
            case_id, was, reference = self.cases[org_id]
            if status == was:
                continue
            self.cases[org_id] = (case_id, status, reference)
            moved.append((status, self.now if status == "resolved" else None, case_id))
            events.append((case_id, None, "case-" + status, self.now,
                           f"case {reference} {STATUS_TEXT[status]}"))
        bulk_update(self.session, core(Case), ["hosts", "worst", "worst_rank"], counted)
        bulk_update(self.session, core(Case), ["status", "resolved_at"], moved)
        return events


_BY_RANK = {rank: state.value for state, rank in RANK.items()}


STATUS_TEXT = {"open": "open", "resolved": "resolved",
               "unconfirmed": "probably remediated, unconfirmed"}


def status_of(hosts: int, resolved: int, settled: int) -> str:
    """A case's status from how many hosts it has, how many are confirmed patched or clean,
    and how many are either that or no longer reported and not compromised. Resolved: every
    host confirmed. Unconfirmed ("probably remediated"): every host settled (a report leaving
    out a back-doored host proves nothing: patching closes the hole but removes no back
    door). Else open."""
    if not hosts:
        return "open"
    if resolved == hosts:
        return "resolved"
    if settled == hosts:
        return "unconfirmed"
    return "open"
