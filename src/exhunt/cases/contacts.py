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
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from exhunt.cases.absence import refresh_day
from exhunt.cases.filework import HostRow, update_moved_hosts
from exhunt.cases.owners import EVENT_COLUMNS, Attributor, CaseBook
from exhunt.errors import InputError
from exhunt.readers.feeds import MAX_RAW_CHARS, clean_text
from exhunt.store.bulk import bulk_insert, bulk_update, core, fetch_rows
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
    without_contact: list[str] = field(default_factory=list)  # organisation names


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


@dataclass(slots=True)
class _Listed:
    """One organisation as the list gives it: (the first row's) country and sector, e-mails in
    order of first appearance."""

    country: str
    sector: str
    emails: list[str]


class _Import:
    """The list's rows as plain values, then one set-at-a-time write per table: the ORM's
    per-object bookkeeping cost seconds per 10,000 organisations."""

    def __init__(self, session: Session, source: str) -> None:
        self.session = session
        self.source = source
        self.listed: dict[str, _Listed] = {}  # organisation name -> what the list says
        self.networks: dict[str, str] = {}  # CIDR -> organisation name (the last row wins)
        self.rejects: list[dict[str, object]] = []

    def run(self, reader: csv.DictReader[str]) -> ContactsResult:
        rows = 0
        for row in reader:
            rows += 1
            self._row(reader.line_num, row)
        org_ids = self._write_organisations()
        networks = self._write_networks(org_ids)
        contacts, unreachable = self._write_contacts(org_ids)
        if self.rejects:
            self.session.execute(insert(Reject), self.rejects)
        attributed = reattribute(self.session)
        return ContactsResult(rows, len(self.listed), networks, contacts, len(self.rejects),
                              attributed, unreachable)

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
        # a row without an address still says who owns the network (lists often give the
        # address once per organisation); one with a refused address is not used at all
        emails = split_emails(row.get("email") or "")
        bad = [e for e in emails if not EMAIL.match(e)]
        if bad:
            self._reject(line, f"refused e-mail address {clean_text(repr(bad[0]), 100)}", row)
            return
        listed = self.listed.get(name)
        if listed is None:
            listed = self.listed[name] = _Listed(
                clean_text((row.get("country") or "").strip(), 8).upper(),
                clean_text((row.get("sector") or "").strip(), 128), [])
        for network in networks:
            self.networks.pop(network, None)  # a later row moves it: keep the row order
            self.networks[network] = name
        listed.emails.extend(emails)

    def _write_organisations(self) -> dict[str, int]:
        """Organisation ids by name, the new ones inserted; country and sector updated where
        the list gives them."""
        table = core(Organisation)
        stored = {name: (org_id, country, sector) for org_id, name, country, sector in
                  fetch_rows(self.session, select(table.c.id, table.c.name, table.c.country,
                                                  table.c.sector))}
        now = utcnow()
        bulk_insert(self.session, table, ["name", "country", "sector", "created_at"], [
            (name, o.country or None, o.sector or None, now)
            for name, o in self.listed.items() if name not in stored])
        moved: list[tuple[object, ...]] = []
        for name, listed in self.listed.items():
            if name in stored:
                org_id, country, sector = stored[name]
                now_held = (listed.country or country, listed.sector or sector)
                if now_held != (country, sector):
                    moved.append((*now_held, org_id))
        bulk_update(self.session, table, ["country", "sector"], moved)
        return {name: org_id for org_id, name in
                fetch_rows(self.session, select(table.c.id, table.c.name))}

    def _write_networks(self, org_ids: dict[str, int]) -> int:
        """New networks, and those the list gives to another organisation (the newest list is
        the truth); how many."""
        table = core(Network)
        stored = {cidr: (net_id, org_id) for net_id, cidr, org_id in fetch_rows(
            self.session, select(table.c.id, table.c.cidr, table.c.organisation_id))}
        new = [(cidr, org_ids[name]) for cidr, name in self.networks.items()
               if cidr not in stored]
        moved = [(org_ids[name], stored[cidr][0]) for cidr, name in self.networks.items()
                 if cidr in stored and stored[cidr][1] != org_ids[name]]
        bulk_insert(self.session, table, ["cidr", "organisation_id"], new)
        bulk_update(self.session, table, ["organisation_id"], moved)
        return len(new) + len(moved)

    def _write_contacts(self, org_ids: dict[str, int]) -> tuple[int, list[str]]:
        """Each organisation's addresses not held yet, after those it has (in list order);
        (how many, the list's organisations with no address here or stored before: their
        hosts are attributed, their notices wait for one and notify flags their cases)."""
        table = core(Contact)
        held: dict[int, set[str]] = {}
        for org_id, email in fetch_rows(self.session,
                                        select(table.c.organisation_id, table.c.email)):
            held.setdefault(org_id, set()).add(email.lower())
        new: list[tuple[object, ...]] = []
        for name, listed in self.listed.items():
            org_id = org_ids[name]
            known = held.setdefault(org_id, set())
            for email in listed.emails:
                if email.lower() not in known:
                    new.append((org_id, email, len(known)))
                    known.add(email.lower())
        bulk_insert(self.session, table, ["organisation_id", "email", "position"], new)
        return len(new), sorted(name for name in self.listed if not held[org_ids[name]])


def reattribute(session: Session) -> int:
    """Run attribution again over every host (after the contacts list changed); returns how
    many hosts changed owner."""
    attributor = Attributor(session)
    now = utcnow()
    touched: set[int] = set()
    events: list[tuple[object, ...]] = []
    read: list[tuple[HostRow, tuple[object, ...]]] = []
    for values in fetch_rows(session, select(core(Host))):
        host = HostRow(*values)
        read.append((host, values))
        before = host.organisation_id
        if attributor.attribute(host):
            events.append((None, host.id, "attributed", now,
                           f"{host.ip}: owner {before} -> {host.organisation_id}"))
            touched.update(o for o in (before, host.organisation_id) if o is not None)
    update_moved_hosts(session, read)
    cases = CaseBook(session, attributor, now)
    cases.ensure(touched)
    bulk_insert(session, core(Event), EVENT_COLUMNS, [*events, *cases.judge(touched)])
    if events:
        refresh_day(session)  # the overview's groupings by sector follow the new owners
    return len(events)
