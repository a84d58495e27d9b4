"""Constituency lists come from elsewhere: spreadsheets saved with semicolons, other column
names, several addresses or networks in a cell, address ranges as RIR databases print them.
Whatever the form, every organisation must get exactly one notice holding all of its hosts and
none of anyone else's, a second run must send nothing, and nothing may be lost."""

from __future__ import annotations

import csv
import io
import ipaddress
import random
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_cases_feeds import make_csv
from typer.testing import CliRunner

from exhunt.cases.contacts import import_contacts, split_emails, split_networks
from exhunt.cases.ingest import Ingestor
from exhunt.cases.notify import Renderer, Sender, SmtpTarget, plan_round
from exhunt.cli import app
from exhunt.errors import InputError
from exhunt.store.db import Store
from exhunt.store.models import Case, Contact, Event, Host, Network, Organisation, Reject
from helpers.smtp_sink import RunningSink

SENDER = "cert@coord.example"


def test_cells_in_the_forms_lists_use() -> None:
    assert split_emails("Jane Doe <jane@x.example>, soc@x.example") == [
        "jane@x.example", "soc@x.example"]
    assert split_emails("a@x.example; b@x.example c@x.example") == [
        "a@x.example", "b@x.example", "c@x.example"]
    assert split_networks("192.0.2.0 - 192.0.2.255") == ["192.0.2.0/24"]
    assert split_networks("192.0.2.0-192.0.2.95") == ["192.0.2.0/26", "192.0.2.64/27"]
    assert split_networks("198.51.100.7") == ["198.51.100.7/32"]
    assert split_networks("192.0.2.0/24, 2001:db8::/48") == ["192.0.2.0/24", "2001:db8::/48"]
    for bad in ("192.0.2.9 - 192.0.2.1", "192.0.2.1 - 2001:db8::1", "net-1", "", "10.0.0.0/33"):
        with pytest.raises(ValueError):
            split_networks(bad)


def test_a_semicolon_list_with_other_names(db_url: str, tmp_path: Path) -> None:
    listing = tmp_path / "constituency.csv"
    listing.write_bytes("\ufeffNetblock;Organization;Country Code;Industry;E-Mail\r\n"
                        "192.0.2.0 - 192.0.2.255;Town of Example;us;local government;"
                        "Town IT <it@town.example>, clerk@town.example\r\n"
                        "198.51.100.7;First Credit Union;US;credit union;soc@fcu.example\r\n"
                        "192.0.2.9 - 192.0.2.1;Backwards Range Ltd;US;;a@b.example\r\n"
                        '203.0.113.0/24;"Doe, Jane";US;;"Doe, Jane" <jane@x.example>\r\n'
                        .encode())
    store = Store(db_url)
    result = import_contacts(store, listing)
    assert (result.rows, result.organisations, result.rejected) == (4, 2, 2)
    with store.session() as s:
        town = s.scalars(sa.select(Organisation).where(Organisation.name == "Town of Example")
                         ).one()
        assert [c.email for c in town.contacts] == ["it@town.example", "clerk@town.example"]
        assert (town.country, town.sector) == ("US", "local government")
        assert sorted(s.scalars(sa.select(Network.cidr))) == ["192.0.2.0/24",
                                                             "198.51.100.7/32"]
        reasons = sorted(s.scalars(sa.select(Reject.reason)))
    assert "address range" in reasons[0] and "refused e-mail address" in reasons[1]


def test_a_list_without_the_needed_columns_says_what_it_has(tmp_path: Path) -> None:
    listing = tmp_path / "contacts.csv"
    listing.write_text("name;phone\nTown;555\n")
    with pytest.raises(InputError, match=r"lacks column.*has: name, phone"):
        import_contacts(Store(f"sqlite:///{tmp_path / 'c.db'}"), listing)


def constituency(rng: random.Random) -> tuple[list[tuple[str, list[str], list[str]]], str]:
    """Organisations (name, networks, e-mails), nested ones among them, written as a list in a
    form picked at random; returns them and the list's text."""
    orgs: list[tuple[str, list[str], list[str]]] = []
    for n in range(12):
        v4 = f"10.{n}.0.0/16"
        nets = [v4, f"2001:db8:{n:x}::/48"] if rng.random() < 0.5 else [v4]
        if n % 4 == 3:  # a customer of the previous organisation, inside its network
            nets = [f"10.{n - 1}.{rng.randrange(1, 200)}.0/24"]
        mails = [f"contact{k}@org{n}.example" for k in range(rng.randint(1, 3))]
        orgs.append((f"Org {n} <b>&amp;</b>", nets, mails))
    sep = rng.choice([",", ";", "\t"])
    header = rng.choice([["network", "org", "country", "sector", "email"],
                         ["CIDR", "Organization", "CC", "Industry", "E-mail"]])
    out = io.StringIO()
    writer = csv.writer(out, delimiter=sep, lineterminator=rng.choice(["\n", "\r\n"]))
    writer.writerow(header)
    for name, nets, mails in orgs:
        for net in nets:  # one row per network, the e-mails in one cell or spread over rows
            if rng.random() < 0.5:
                cell = ", ".join(f"Desk {i} <{m}>" if rng.random() < 0.5 else m
                                 for i, m in enumerate(mails))
                writer.writerow([_as_range(net, rng), name, "US", "", cell])
            else:
                for mail in mails:
                    writer.writerow([_as_range(net, rng), name, "US", "", mail])
    return orgs, out.getvalue()


def _as_range(cidr: str, rng: random.Random) -> str:
    network = ipaddress.ip_network(cidr)
    if network.version == 4 and rng.random() < 0.4:
        return f"{network.network_address} - {network.broadcast_address}"
    return cidr


def shadowserver(rows: list[tuple[str, str]], day: int) -> bytes:
    return make_csv(["timestamp", "ip", "port", "hostname", "tag", "asn", "geo", "version"], [
        {"timestamp": f"2021-03-{day:02d} 0{i % 10}:00:00", "ip": ip, "port": "443",
         "hostname": f"mail{i}.example", "tag": tag, "asn": "64500", "geo": "US",
         "version": "15.1.2176.9"} for i, (ip, tag) in enumerate(rows)])


def owner_of(ip: str, orgs: list[tuple[str, list[str], list[str]]]) -> str | None:
    """Most specific network wins, worked out by brute force."""
    address = ipaddress.ip_address(ip)
    best: tuple[int, str] | None = None
    for name, nets, _ in orgs:
        for net in nets:
            network = ipaddress.ip_network(net)
            inside = address.version == network.version and address in network
            if inside and (best is None or network.prefixlen > best[0]):
                best = (network.prefixlen, name)
    return best[1] if best else None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_organisation_gets_one_notice_with_exactly_its_hosts(
        db_url: str, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    orgs, text = constituency(rng)
    listing = tmp_path / "constituency.csv"
    listing.write_text(text, newline="")
    hosts = sorted({f"10.{rng.randrange(12)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
                    for _ in range(60)} | {str(ipaddress.ip_address(
                        f"2001:db8:{rng.randrange(12):x}::{k:x}")) for k in range(1, 12)}
                   | {"192.0.2.50"})
    tags = ["exchange;cve-2021-26855", "exchange;webshell", "exchange"]
    day1 = [(ip, rng.choice(tags)) for ip in hosts]
    day2 = [(ip, rng.choice(tags)) for ip in rng.sample(hosts, len(hosts) // 2)]

    store = Store(db_url)
    import_contacts(store, listing)
    for day, rows in ((1, day1), (2, day2)):
        assert Ingestor(store).ingest_bytes(shadowserver(rows, day),
                                            f"2021-03-{day:02d}-scan_exchange.csv").added
    expected: dict[str, set[str]] = {}
    for ip in hosts:
        owner = owner_of(ip, orgs)
        if owner is not None:
            expected.setdefault(owner, set()).add(ip)
    every_address = {name: mails for name, _, mails in orgs}
    with RunningSink() as sink:
        plan_round(store, Renderer(SENDER))
        sent = Sender(store, SmtpTarget.parse(sink.address), SENDER).run().sent
        plan_round(store, Renderer(SENDER))
        assert Sender(store, SmtpTarget.parse(sink.address), SENDER).run().sent == 0
        received = list(sink.sink.received)
    assert sent == len(expected) == len(received)
    told: dict[str, set[str]] = {}
    for message in received:
        attachment = next(message.message.iter_attachments()).get_content()
        listed = {row["ip"] for row in csv.DictReader(io.StringIO(
            attachment.decode() if isinstance(attachment, bytes) else attachment))}
        # every address the list gives for the organisation is written to
        owner = next(name for name, mails in every_address.items()
                     if sorted(mails) == sorted(message.rcpt_tos))
        assert owner not in told, f"{owner} got two notices"
        told[owner] = listed
    assert told == expected
    with store.session() as s:  # the host nobody owns waits in the queue, not lost
        queue = set(s.scalars(sa.select(Host.ip).where(Host.organisation_id.is_(None))))
        assert queue == {ip for ip in hosts if owner_of(ip, orgs) is None} and queue
        assert s.scalar(sa.select(sa.func.count()).select_from(Contact)) == sum(
            len(m) for _, _, m in orgs)
    store.close()


def test_a_new_list_moves_hosts_to_their_owners(db_url: str, tmp_path: Path) -> None:
    """Hosts seen before anyone owned them, then a list, then a newer list that hands a network
    to another organisation and carves out a more specific one."""
    store = Store(db_url)
    feed = shadowserver([("192.0.2.10", "exchange;webshell"), ("192.0.2.200", "exchange"),
                         ("198.51.100.7", "exchange;cve-2021-26855")], 2)
    Ingestor(store).ingest_bytes(feed, "2021-03-02-scan_exchange.csv")
    first = tmp_path / "first.csv"
    first.write_text("network,org,country,sector,email\n"
                     "192.0.2.0/24,Town,us,,it@town.example\n"
                     "198.51.100.0/24,Credit Union,US,credit union,soc@cu.example\n")
    result = import_contacts(store, first)
    assert (result.organisations, result.networks, result.contacts,
            result.hosts_attributed) == (2, 2, 2, 3)
    assert import_contacts(store, first).hosts_attributed == 0  # the same list: nothing moves
    newer = tmp_path / "newer.csv"
    newer.write_text("network,org,country,sector,email\n"
                     "198.51.100.0/24,Town,,local government,clerk@town.example\n"
                     "192.0.2.192/26,Library,US,,desk@library.example\n")
    result = import_contacts(store, newer)
    assert (result.networks, result.contacts, result.hosts_attributed) == (2, 2, 2)
    with store.session() as s:
        owners = dict(s.execute(sa.select(Host.ip, Organisation.name).join(
            Organisation, Host.organisation_id == Organisation.id)).all())
        assert owners == {"192.0.2.10": "Town", "192.0.2.200": "Library",
                          "198.51.100.7": "Town"}
        town = s.scalars(sa.select(Organisation).where(Organisation.name == "Town")).one()
        assert (town.country, town.sector) == ("US", "local government")
        assert [c.email for c in town.contacts] == ["it@town.example", "clerk@town.example"]
        sectors = dict(s.execute(sa.select(Host.ip, Host.sector)).all())
        assert sectors["198.51.100.7"] == "local government"
        moved = s.scalars(sa.select(Event.detail).where(Event.kind == "attributed")).all()
        assert len(moved) == 5 and any(d.startswith("198.51.100.7: owner ") for d in moved)
        opened = set(s.scalars(sa.select(Organisation.name).join(
            Case, Case.organisation_id == Organisation.id)))
        assert opened == {"Town", "Credit Union", "Library"}
    store.close()


def test_rows_without_an_address_still_say_who_owns_a_network(db_url: str,
                                                              tmp_path: Path) -> None:
    """Lists often give the address once per organisation. Nothing is lost: the network still
    belongs to its organisation, and one with no address at all has its hosts attributed and
    its case flagged until one is listed."""
    listing = tmp_path / "contacts.csv"
    listing.write_text("network,org,country,sector,email\n"
                       "192.0.2.0/24,Town,US,,it@town.example\n"
                       "198.51.100.0/24,Town,,,\n"
                       "203.0.113.0/24,Silent Org,US,,\n")
    out = CliRunner().invoke(app, ["contacts", "import", str(listing), "--db", db_url])
    assert out.exit_code == 0, out.output
    assert "1 organisations have no e-mail address ('Silent Org')" in out.output
    store = Store(db_url)
    feed = shadowserver([("192.0.2.10", "exchange;webshell"), ("198.51.100.7", "exchange"),
                         ("203.0.113.9", "exchange;cve-2021-26855")], 3)
    Ingestor(store).ingest_bytes(feed, "2021-03-03-scan_exchange.csv")
    with RunningSink() as sink:
        plan_round(store, Renderer(SENDER))
        Sender(store, SmtpTarget.parse(sink.address), SENDER).run()
        received = list(sink.sink.received)
    assert [m.rcpt_tos for m in received] == [["it@town.example"]]
    attachment = next(received[0].message.iter_attachments()).get_content()
    text = attachment.decode() if isinstance(attachment, bytes) else attachment
    assert "192.0.2.10" in text and "198.51.100.7" in text and "203.0.113.9" not in text
    with store.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Host)
                        .where(Host.organisation_id.is_(None))) == 0
        silent = s.scalars(sa.select(Case).join(Organisation, Case.organisation_id ==
                                                Organisation.id)
                           .where(Organisation.name == "Silent Org")).one()
        assert silent.flagged and "no contact" in (silent.flag_reason or "")
    store.close()
