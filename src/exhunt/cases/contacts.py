"""Import the coordinator's constituency list: network,org,country,sector,email.

An organisation may appear on many rows (one per network); its e-mail addresses are kept in
order of first appearance, the first being tried first and the next one after a bounce.
A row that cannot be used goes to the rejects table with its reason.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from exhunt.cases.feeds import MAX_RAW_CHARS, clean_text
from exhunt.cases.owners import EVENT_COLUMNS, Attributor, CaseBook
from exhunt.errors import InputError
from exhunt.store.bulk import bulk_insert, core
from exhunt.store.db import Store
from exhunt.store.models import Contact, Event, Host, Network, Organisation, Reject, utcnow

# Deliberately narrow: an address that could carry header syntax (CR, LF, comma, angle
# brackets, quotes, spaces) is refused rather than repaired.
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251})$")
REQUIRED = ("network", "org", "email")


@dataclass(frozen=True, slots=True)
class ContactsResult:
    rows: int
    organisations: int
    networks: int
    contacts: int
    rejected: int
    hosts_attributed: int


# Other names the same columns go by in constituency lists exported from elsewhere
ALIASES = {
    "organisation": "org", "organization": "org", "org_name": "org",
    "organisation_name": "org", "organization_name": "org",
    "cidr": "network", "prefix": "network", "netblock": "network", "net": "network",
    "networks": "network", "range": "network",
    "e-mail": "email", "emails": "email", "mail": "email", "contact": "email",
    "abuse_email": "email", "abuse-c": "email", "contact_email": "email",
    "cc": "country", "country_code": "country", "industry": "sector",
}


def split_emails(field: str) -> list[str]:
    """The addresses in a cell: separated by commas, semicolons or spaces, each bare or in a
    'Name <address>' form. What is returned is still to be checked against EMAIL."""
    found: list[str] = []
    for part in re.split(r"[;,]+", field):
        part = part.strip()
        named = re.fullmatch(r"[^<>]*<([^<>]*)>", part)
        if named:
            found.append(named.group(1).strip())
        else:
            found.extend(word for word in part.split() if word)
    return [address for address in found if address]


def split_networks(field: str) -> list[str]:
    """The networks in a cell: CIDRs or addresses separated by spaces, commas or semicolons,
    or one 'first - last' address range (as RIR databases print them), as CIDRs. Raises
    ValueError for anything else."""
    text = field.strip()
    if "-" in text and "/" not in text:
        first, _, last = (part.strip() for part in text.partition("-"))
        start, end = ipaddress.ip_address(first), ipaddress.ip_address(last)
        if start.version != end.version or int(start) > int(end):
            raise ValueError("not an address range")
        return [str(n) for n in ipaddress.summarize_address_range(start, end)]
    parts = [p for p in re.split(r"[\s,;]+", text) if p]
    if not parts:
        raise ValueError("no network")
    return [str(ipaddress.ip_network(p, strict=False)) for p in parts]


def _dialect(header: str) -> str:
    """The column separator: a comma, else the semicolon or tab the header line uses (a
    spreadsheet in many locales saves 'CSV' with semicolons)."""
    if "," in header:
        return ","
    return next((sep for sep in (";", "\t", "|") if sep in header), ",")


def import_contacts(store: Store, path: Path) -> ContactsResult:
    try:
        text = path.read_bytes().decode("utf-8-sig", errors="replace").replace("\x00", "\\x00")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    header = text.split("\n", 1)[0]
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=_dialect(header))
    if reader.fieldnames is None:
        raise InputError(f"{path}: empty contacts file")
    names = [f.strip().lower().replace(" ", "_") for f in reader.fieldnames]
    reader.fieldnames = [ALIASES.get(n, n) if ALIASES.get(n, n) not in names else n
                         for n in names]
    missing = [c for c in REQUIRED if c not in reader.fieldnames]
    if missing:
        raise InputError(f"{path}: contacts CSV lacks column(s) {', '.join(missing)} "
                         f"(has: {clean_text(', '.join(reader.fieldnames), 300)})")
    with store.writing() as session:
        return _Import(session, str(path)).run(reader)


class _Import:
    def __init__(self, session: Session, source: str) -> None:
        self.session = session
        self.source = source
        self.orgs: dict[str, Organisation] = {}
        self.rejects: list[dict[str, object]] = []
        self.networks = self.contacts = 0
        # what the store already holds, loaded once (lists can have 100,000s of rows)
        self.known_orgs = {o.name: o for o in session.scalars(select(Organisation))}
        self.known_networks = {n.cidr: n for n in session.scalars(select(Network))}
        self.known_contacts: dict[str, list[str]] = {}  # organisation name -> e-mails
        for name, email in session.execute(
                select(Organisation.name, Contact.email).join(Contact.organisation)
                .order_by(Contact.position)):
            self.known_contacts.setdefault(name, []).append(email.lower())

    def run(self, reader: csv.DictReader[str]) -> ContactsResult:
        rows = 0
        for row in reader:
            rows += 1
            self._row(reader.line_num, row)
        self.session.flush()
        if self.rejects:
            self.session.execute(insert(Reject), self.rejects)
        attributed = reattribute(self.session)
        return ContactsResult(rows, len(self.orgs), self.networks, self.contacts,
                              len(self.rejects), attributed)

    def _reject(self, line: int, reason: str, row: dict[str, str | None]) -> None:
        raw = ",".join(str(v) for v in row.values() if v is not None)
        self.rejects.append({"source": clean_text(self.source), "line": line,
                             "reason": reason, "raw": clean_text(raw, MAX_RAW_CHARS),
                             "at": utcnow()})

    def _row(self, line: int, row: dict[str, str | None]) -> None:
        name = clean_text((row.get("org") or "").strip(), 500)
        if not name:
            self._reject(line, "no organisation name", row)
            return
        try:
            networks = split_networks(row.get("network") or "")
        except ValueError:
            self._reject(line, "network is not a CIDR, an address or an address range", row)
            return
        emails = split_emails(row.get("email") or "")
        bad = [e for e in emails if not EMAIL.match(e)]
        if not emails or bad:
            self._reject(line, "no usable e-mail address" if not emails
                         else f"refused e-mail address {clean_text(repr(bad[0]), 100)}", row)
            return
        org = self._organisation(name, row)
        for network in networks:
            self._network(network, org)
        for email in emails:
            self._contact(org, email)

    def _organisation(self, name: str, row: dict[str, str | None]) -> Organisation:
        if name in self.orgs:
            return self.orgs[name]
        org = self.known_orgs.get(name)
        if org is None:
            org = Organisation(name=name, created_at=utcnow())
            self.session.add(org)
        country = clean_text((row.get("country") or "").strip(), 8).upper()
        sector = clean_text((row.get("sector") or "").strip(), 128)
        org.country = country or org.country
        org.sector = sector or org.sector
        self.orgs[name] = org
        return org

    def _network(self, cidr: str, org: Organisation) -> None:
        existing = self.known_networks.get(cidr)
        if existing is None:
            self.known_networks[cidr] = Network(cidr=cidr, organisation=org)
            self.session.add(self.known_networks[cidr])
            self.networks += 1
        elif existing.organisation is not org:
            existing.organisation = org  # the newest list is the truth
            self.networks += 1

    def _contact(self, org: Organisation, email: str) -> None:
        emails = self.known_contacts.setdefault(org.name, [])
        if email.lower() in emails:
            return
        self.session.add(Contact(organisation=org, email=email, position=len(emails)))
        emails.append(email.lower())
        self.contacts += 1


def reattribute(session: Session) -> int:
    """Run attribution again over every host (after the contacts list changed); returns how
    many hosts changed owner."""
    attributor = Attributor(session)
    changed = 0
    now = utcnow()
    touched: set[int] = set()
    for host in session.scalars(select(Host)):
        before = host.organisation_id
        if attributor.attribute(host):
            changed += 1
            session.add(Event(host_id=host.id, kind="attributed", at=now,
                              detail=f"{host.ip}: owner {before} -> {host.organisation_id}"))
            for org_id in (before, host.organisation_id):
                if org_id is not None:
                    touched.add(org_id)
    session.flush()
    cases = CaseBook(session, attributor, now)
    cases.ensure(touched)
    bulk_insert(session, core(Event), EVENT_COLUMNS, cases.judge(touched))
    return changed
