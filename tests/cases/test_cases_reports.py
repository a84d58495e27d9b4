"""Each Shadowserver report taken for what it is: only Exchange evidence opens an Exchange case.

The fixtures in tests/data/cases are written in the column layouts Shadowserver publishes
(The-Shadowserver-Foundation/report_schema reports.json) with documentation addresses.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from exhunt.cases.contacts import import_contacts
from exhunt.cases.feeds import RowProblem, Sighting, read_shadowserver
from exhunt.cases.ingest import Ingestor
from exhunt.cases.reports import EVENT, EXCHANGE, NOT_A_REPORT, SCAN, classify
from exhunt.cases.shadowcsv import read_shadowserver_columns
from exhunt.cli import app
from exhunt.store.db import Store
from exhunt.store.models import Case, Host, IngestedFile, Message, Observation, Reject

DATA = Path(__file__).resolve().parent.parent / "data" / "cases"
NOT_EXCHANGE = {  # file -> (report type, rows)
    "2023-06-01-scan_http-example-geo.csv": ("scan_http", 2),
    "2023-06-01-scan_smtp_vulnerable-example-geo.csv": ("scan_smtp_vulnerable", 1),
    "2023-06-01-population_http_proxy-example-geo.csv": ("population_http_proxy", 1),
    "2023-06-01-scan_ssl-example-geo.csv": ("scan_ssl", 1),
    "2023-06-01-compromised_website-example-geo.csv": ("compromised_website", 1),
}
EVENTS = {
    "2023-06-01-event4_honeypot_http_scan-example-geo.csv": ("event4_honeypot_http_scan", 5),
    "2023-06-01-event4_honeypot_brute_force-example-geo.csv": ("event4_honeypot_brute_force", 2),
}


def counts(store: Store) -> tuple[int, int, int]:
    with store.session() as s:
        return (s.scalar(sa.select(sa.func.count(Host.id))) or 0,
                s.scalar(sa.select(sa.func.count(Case.id))) or 0,
                s.scalar(sa.select(sa.func.count(Message.id))) or 0)


def rejects(store: Store) -> list[Reject]:
    with store.session() as s:
        return list(s.scalars(sa.select(Reject).order_by(Reject.id)))


@pytest.mark.parametrize("name", sorted({**NOT_EXCHANGE, **EVENTS}))
def test_reports_without_exchange_evidence_are_set_aside(db_url: str, name: str) -> None:
    store = Store(db_url)
    import_contacts(store, DATA / "contacts.csv")  # every address here has an owner
    result = Ingestor(store).ingest(DATA / name)
    report, rows = {**NOT_EXCHANGE, **EVENTS}[name]
    assert (result.status, result.report, result.rows, result.added, result.rejected) == (
        "set aside", report, rows, 0, rows)
    assert report in result.note and f"{rows} rows" in result.note
    assert counts(store) == (0, 0, 0)  # nothing attributed, opened or sent
    kept = [r for r in rejects(store) if r.source.endswith(name)]  # (contacts.csv has some)
    assert len(kept) == rows
    if name in NOT_EXCHANGE:
        assert "not about Exchange" in result.note
        assert all(f"not about Exchange (Shadowserver {report})" == r.reason for r in kept)


def test_a_honeypot_event_names_the_attacker_not_a_victim(db_url: str) -> None:
    store = Store(db_url)
    name = "2023-06-01-event4_honeypot_http_scan-example-geo.csv"
    Ingestor(store).ingest(DATA / name)
    reasons = [r.reason for r in rejects(store)]
    attacks = [r for r in reasons if r.startswith("honeypot event")]
    # the two rows that name Exchange CVEs: the address attacked, it was not attacked
    assert len(attacks) == 2 and all("192.0.2.10 attacked" in r and "no case" in r
                                     for r in attacks)
    assert sum("not about Exchange" in r for r in reasons) == 3


def test_rows_of_another_report_naming_exchange_are_taken(db_url: str) -> None:
    store = Store(db_url)
    result = Ingestor(store).ingest(DATA / "2021-03-12-special-example-geo.csv")
    assert (result.status, result.report, result.rows, result.added, result.rejected) == (
        "ingested", "special", 2, 1, 1)
    assert "1 name Exchange" in result.note
    with store.session() as s:
        host = s.scalars(sa.select(Host)).one()
        evidence = s.scalars(sa.select(Observation.evidence)).one()
    assert (host.ip, host.state) == ("192.0.2.77", "backdoor")
    assert evidence.startswith("Shadowserver special: tag=exchange;webshell")
    assert "citrix" in rejects(store)[0].raw


def test_the_exchange_reports_are_taken_whole(db_url: str) -> None:
    store = Store(db_url)
    result = Ingestor(store).ingest(DATA / "2021-05-14-scan_exchange.csv")
    assert (result.status, result.report, result.rows, result.added, result.rejected) == (
        "ingested", "scan_exchange", 5, 4, 1)


def test_a_contacts_list_among_reports_is_named_and_skipped(db_url: str) -> None:
    store = Store(db_url)
    result = Ingestor(store).ingest(DATA / "contacts.csv")
    assert (result.status, result.kind, result.rows, result.rejected) == (
        "skipped", "contacts list", 0, 0)
    assert "exhunt contacts import" in result.note
    other = Ingestor(store).ingest_bytes(b"name,colour\nx,blue\n", "notes.csv")
    assert other.status == "skipped" and "not a report" in other.note
    with store.session() as s:
        assert s.scalar(sa.select(sa.func.count(IngestedFile.id))) == 0
    assert rejects(store) == []


def test_ingest_says_what_each_file_is(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    files = [str(DATA / n) for n in ("contacts.csv", "2023-06-01-scan_http-example-geo.csv",
                                     "2023-06-01-event4_honeypot_brute_force-example-geo.csv",
                                     "2021-05-14-scan_exchange.csv")]
    out = CliRunner().invoke(app, ["ingest", *files, "--db", db])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].endswith("contacts.csv: contacts list, skipped: a contacts list (network, "
                             "org, email), not a report: import it with `exhunt contacts "
                             "import`; nothing ingested")
    assert "scan_http-example-geo.csv: shadowserver scan_http, set aside, 2 rows, 0 added" \
        in lines[1]
    assert "Shadowserver scan_http (known by its file name), 2 rows: set aside, not about " \
        "Exchange" in lines[2]
    assert "shadowserver event4_honeypot_brute_force, set aside, 2 rows" in lines[3]
    assert "scan_exchange.csv: shadowserver scan_exchange, ingested, 5 rows, 4 added" in lines[5]


def _renamed(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_a_report_that_lost_its_name_is_known_by_its_columns() -> None:
    def header(name: str) -> list[str]:
        return next(csv.reader(io.StringIO((DATA / name).read_text())))

    assert classify(header("2023-06-01-scan_http-example-geo.csv"), "feed.csv").report == \
        "scan_http"
    assert classify(header("2023-06-01-scan_ssl-example-geo.csv"), "feed.csv").report == \
        "scan_ssl"
    assert classify(header("2021-05-14-scan_exchange.csv"), "feed.csv").family == EXCHANGE
    assert classify(header("2023-06-01-event4_honeypot_brute_force-example-geo.csv"),
                    "f.csv").family == EVENT
    assert classify(header("contacts.csv"), "c.csv").report == "contacts list"
    # a Shadowserver name decides over the columns; its identifier part is optional
    assert classify(["ip", "timestamp"], "2023-06-01-scan_http-x-geo.csv").family == SCAN
    assert classify(["ip", "timestamp"], "2021-03-09-scan6_exchange.csv").family == EXCHANGE
    out = list(read_shadowserver(_renamed("2023-06-01-scan_http-example-geo.csv"), "feed.csv"))
    assert len(out) == 2 and all(isinstance(r, RowProblem) and "scan_http" in r.reason
                                 for r in out)


def test_feed_text_is_kept_as_it_came() -> None:
    data = (b'timestamp,ip,tag,servername\n'
            b'2021-03-09 00:00:00,192.0.2.1,exchange;cve-2021-26855,""unsafe""\n'
            b'2021-03-09 00:00:00,192.0.2.2,exchange;cve-2021-26855,"a ""quoted"" name"\n')
    rows = list(read_shadowserver(data, "2021-03-09-scan_exchange.csv"))
    assert [r.servername for r in rows if isinstance(r, Sighting)] == [
        '""unsafe""', 'a "quoted" name']
    assert read_shadowserver_columns(data, "2021-03-09-scan_exchange.csv") is None  # row reader


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=20), max_size=8), st.text(max_size=60))
def test_any_header_and_name_is_classified(columns: list[str], name: str) -> None:
    kind = classify(columns, name)
    assert kind.family in (EXCHANGE, SCAN, EVENT, NOT_A_REPORT)
    assert kind.report and kind.by in ("file name", "columns")


def test_both_countries_are_kept_and_a_disagreement_shown(tmp_path: Path) -> None:
    # the 2021 report placed 41.204.9.10 in MG; the registry (RIR allocation) says SZ
    feed = tmp_path / "2021-05-14-scan_exchange-example-geo.csv"
    feed.write_text("timestamp,ip,tag,geo\n"
                    "2021-05-14 00:11:38,41.204.9.10,exchange;cve-2021-26855,MG\n"
                    "2021-05-14 00:11:39,192.0.2.10,exchange;cve-2021-26855,US\n")
    db = f"sqlite:///{tmp_path / 'p.db'}"
    assert Ingestor(Store(db)).ingest(feed).added == 2
    out = CliRunner().invoke(app, ["cases", "--unattributed", "--db", db, "--format", "json"])
    hosts = {h["ip"]: h for h in json.loads(out.output)}
    moved = hosts["41.204.9.10"]
    assert (moved["country"], moved["country_source"], moved["feed_country"],
            moved["registry_country"], moved["country_disagrees"]) == (
        "SZ", "registry", "MG", "SZ", True)
    test_net = hosts["192.0.2.10"]  # documentation addresses have no registry country
    assert (test_net["country"], test_net["country_source"], test_net["country_disagrees"]) \
        == ("US", "feed", False)
    text = CliRunner().invoke(app, ["cases", "--unattributed", "--db", db])
    assert "SZ (registry; the feed says MG)" in " ".join(text.output.split())


def test_a_host_name_alone_does_not_make_a_row_exchange_evidence() -> None:
    data = (b"timestamp,ip,tag,hostname,server\n"
            b"2023-06-01 01:00:00,192.0.2.10,http,exchange.town.example,lighttpd/1.4.59\n"
            b"2023-06-01 01:00:00,192.0.2.11,http,www.town.example,Microsoft Exchange OWA\n")
    out = list(read_shadowserver(data, "2023-06-01-scan_http-example-geo.csv"))
    assert isinstance(out[0], RowProblem) and "not about Exchange" in out[0].reason
    assert isinstance(out[1], Sighting) and "server=Microsoft Exchange OWA" in out[1].evidence
