"""Who owns a host and which case holds it: the offline attribution of one host (contacts
list, AS table, country, sector) and the one case per organisation."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from exhunt.cases.attribution import (
    AsnSource,
    Attributed,
    NetworkIndex,
    choose_sector,
    country_of,
)
from exhunt.store.models import Case, Event, Network, Organisation, utcnow


def case_reference(organisation_name: str) -> str:
    """Stable across runs and databases: derived from the organisation's name."""
    digest = hashlib.sha256(organisation_name.encode("utf-8")).hexdigest()[:10].upper()
    return f"EXH-{digest}"


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
