"""Absence from daily reports: the true still-vulnerable count and uptake curve from reports
alone, a partial day held back, a host listed again, cases probably remediated until a scan
confirms; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import sqlalchemy as sa
from alembic import command
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from typer.testing import CliRunner

from exhunt.cases.absence import backfill_days, report_type
from exhunt.cli import app
from exhunt.lab.campaign import COLUMNS
from exhunt.store.db import Store, alembic_config
from exhunt.store.models import Case, DailyStates, Host, Organisation, ReportDay

DAY0 = datetime(2021, 3, 2)
BACKDOOR = 20
# which hosts (10.0.0.N) each day's report lists; 20 carries a web shell throughout
LISTED = {
    0: range(1, 21),
    1: range(6, 21),  # 1-5 patched
    2: range(6, 9),  # a partial scan: 3 of the 15 it should list
    3: [1, *range(9, 20)],  # 1 back (a rollback); 6-8 patched; the back door drops out
}
CONTACTS = [("10.0.0.0/30", "Org A"), ("10.0.0.4/30", "Org B"), ("10.0.0.8/29", "Org C"),
            ("10.0.0.16/29", "Org D")]


def report(day: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for n in LISTED[day]:
        tag = "exchange;webshell" if n == BACKDOOR else "exchange;cve-2021-26855"
        moment = DAY0 + timedelta(days=day, minutes=n)
        writer.writerow([f"{moment:%Y-%m-%d %H:%M:%S}", "critical", f"10.0.0.{n}", "tcp", "443",
                         f"mail{n}.example", tag, "64512", "US", "", "", "", "ptr", "",
                         "15.1.2176", "", ""])
    return out.getvalue().encode()


def write_campaign(folder: Path) -> list[Path]:
    with (folder / "contacts.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["network", "org", "country", "sector", "email"])
        for cidr, org in CONTACTS:
            writer.writerow([cidr, org, "US", "", f"it@{org[-1].lower()}.example"])
    days = []
    for day in LISTED:
        path = folder / f"{DAY0 + timedelta(days=day):%Y-%m-%d}-scan_exchange-united_states.csv"
        path.write_bytes(report(day))
        days.append(path)
    return days


def statuses(url: str) -> dict[str, str]:
    store = Store(url)
    with store.session() as s:
        rows = dict(s.execute(select(Organisation.name, Case.status)
                              .join(Case, Case.organisation_id == Organisation.id)).all())
    store.close()
    return rows


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def said_of(out: str) -> dict[str, str]:
    """What ingest said of each file: its line and the note lines under it, by file name."""
    said: dict[str, str] = {}
    name = ""
    for line in out.splitlines():
        if not line.startswith(" ") and ": " in line:
            name = Path(line.split(": ", 1)[0]).name
            said[name] = line
        elif name:
            said[name] += "\n" + line
    return said


def test_reports_alone_give_the_true_count_and_curve(db_url: str, tmp_path: Path) -> None:
    days = write_campaign(tmp_path)
    run("contacts", "import", str(tmp_path / "contacts.csv"), "--db", db_url)
    out = run("ingest", *map(str, days[:2]), "--db", db_url)
    assert "5 hosts no longer reported" in out
    assert statuses(db_url)["Org A"] == "unconfirmed"  # 1-3 all gone
    assert statuses(db_url)["Org B"] == "open"  # 6 and 7 still listed

    out = run("ingest", str(days[2]), "--db", db_url)
    line = said_of(out)["2021-03-04-scan_exchange-united_states.csv"]
    assert "held back" in line and "lists 3 hosts" in line and "2021-03-04" in line
    assert "no longer reported" not in line  # twelve hosts left out, none moved

    run("ingest", str(days[3]), "--db", db_url)
    stats = orjson.loads(run("stats", "--db", db_url, "--format", "json"))
    # the last report lists 12 vulnerable servers and one back door
    assert stats["by_group"]["vulnerable"] == 12
    assert stats["by_group"]["unreported"] == 7  # 2-5 since day 1, 6-8 since day 3
    assert stats["by_group"]["backdoored"] == 1  # out of the report, not out of danger
    assert stats["by_group"]["clean"] == 0  # nothing confirmed
    curve = {p["day"]: p for p in stats["uptake"]}
    # of 19 hosts first seen vulnerable; day 3 (the partial one) holds day 2's level
    assert [curve[d]["unreported"] for d in sorted(curve)] == [0, 5, 5, 7]
    assert {p["vulnerable_ever"] for p in stats["uptake"]} == {19}
    assert [h["day"] for h in stats["held_back_days"]] == ["2021-03-04"]
    assert statuses(db_url) == {"Org A": "open", "Org B": "unconfirmed", "Org C": "open",
                                "Org D": "open"}

    store = Store(db_url)
    with store.session() as s:
        host1 = s.scalar(select(Host).where(Host.ip == "10.0.0.1"))
        assert host1 is not None and host1.unreported_since is None
        gone = s.scalar(select(Host).where(Host.ip == "10.0.0.6"))
        assert gone is not None and f"{gone.unreported_since:%Y-%m-%d}" == "2021-03-05"
    store.close()
    history = orjson.loads(run("cases", "--db", db_url, "--format", "json", "--detail"))
    org_a = next(c for c in history if c["organisation"] == "Org A")
    kinds = [e["kind"] for e in org_a["history"]]
    assert "host-unreported" in kinds and "host-reported-again" in kinds
    assert "case-unconfirmed" in kinds and "case-open" in kinds

    # a scan confirms Org B's four servers patched: confirmed, no longer merely unreported
    scan = tmp_path / "scan.jsonl"
    scan.write_bytes(b"".join(orjson.dumps({
        "target": f"10.0.0.{n}", "ip": f"10.0.0.{n}", "port": 443, "scheme": "https",
        "time": "2021-03-06T09:00:00+00:00", "reachable": True, "exchange": True,
        "build": "15.1.2176.9", "build_source": "x-owa-version",
        "product": "Exchange Server 2016", "release": "CU19 Mar21SU",
        "vulnerabilities": {"CVE-2021-26855": "patched"}, "error": None}) + b"\n"
        for n in (4, 5, 6, 7)))
    run("ingest", str(scan), "--db", db_url)
    stats = orjson.loads(run("stats", "--db", db_url, "--format", "json"))
    assert stats["by_group"]["clean"] == 4 and stats["by_group"]["unreported"] == 3
    last = stats["uptake"][-1]
    assert (last["patched"], last["unreported"]) == (4, 3)
    assert statuses(db_url)["Org B"] == "resolved"


def test_a_lower_threshold_takes_the_partial_day(db_url: str, tmp_path: Path) -> None:
    days = write_campaign(tmp_path)
    run("contacts", "import", str(tmp_path / "contacts.csv"), "--db", db_url)
    out = run("ingest", *map(str, days[:3]), "--db", db_url, "--partial-below", "0.1")
    assert "held back" not in out and "12 hosts no longer reported" in out


def test_two_small_days_in_a_row_are_a_real_drop(db_url: str, tmp_path: Path) -> None:
    days = write_campaign(tmp_path)
    run("contacts", "import", str(tmp_path / "contacts.csv"), "--db", db_url)
    same = tmp_path / "2021-03-05-scan_exchange-united_states.csv"
    same.write_bytes(report(2).replace(b"2021-03-04", b"2021-03-05"))
    out = run("ingest", *map(str, days[:3]), str(same), "--db", db_url)
    said = said_of(out)
    assert "held back" in said[days[2].name]
    assert "held back" not in said[same.name]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_file_name_gives_a_bounded_report_type(name: str) -> None:
    kind = report_type(name)
    assert 0 < len(kind) <= 64


def test_report_types_of_shadowserver_names() -> None:
    assert report_type("2021-03-10-scan_exchange-united_states-geo.csv") == "scan_exchange"
    assert report_type("/in/2021-03-10-scan6_exchange-asn.csv.gz") == "scan6_exchange"
    assert report_type("scan_exchange.csv") == "scan_exchange"


def test_dashboard_and_portal_show_absence(db_url: str, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from exhunt.web.app import create_app
    from exhunt.web.security import add_user
    from helpers.webworld import COORDINATOR, login_coordinator

    days = write_campaign(tmp_path)
    run("contacts", "import", str(tmp_path / "contacts.csv"), "--db", db_url)
    run("ingest", *map(str, days), "--db", db_url)
    store = Store(db_url)
    with store.transaction() as s:
        add_user(s, *COORDINATOR)
        refs = dict(s.execute(select(Organisation.name, Case.reference)
                              .join(Case, Case.organisation_id == Organisation.id)).all())
    store.close()
    client = TestClient(create_app(db_url))
    login_coordinator(client)
    summary = client.get("/api/summary").json()
    assert summary["by_group"]["unreported"] == 7 and summary["by_group"]["vulnerable"] == 12
    assert [h["day"] for h in summary["held_back"]] == ["2021-03-04"]
    assert summary["series"][-1]["unreported"] == 7
    gone = client.get("/api/hosts", params={"group": "unreported", "limit": 5}).json()
    assert gone["total"] == 7 and len(gone["hosts"]) == 5
    assert all(h["unreported_since"] for h in gone["hosts"])
    assert client.get("/api/uptake").json()[-1]["unreported_share"] == 7 / 19
    overview = client.get("/").text
    assert "No longer reported" in overview and "Held back: scan_exchange of 2021-03-04" in overview
    assert 'id="confirm-invite"' in client.get(f"/cases/{refs['Org B']}").text
    assert 'id="confirm-invite"' not in client.get(f"/cases/{refs['Org A']}").text
    listed = client.get("/api/cases", params={"sort": "status"}).json()
    assert {c["status_text"] for c in listed} == {"open", "probably remediated, unconfirmed"}


def test_a_store_from_before_absence_gets_its_past_days(db_url: str, tmp_path: Path) -> None:
    """Upgrading a store filled before daily_states existed replays its days: the uptake
    curve and the states over time are those ingest would have written."""
    days = write_campaign(tmp_path)
    run("contacts", "import", str(tmp_path / "contacts.csv"), "--db", db_url)
    run("ingest", str(days[0]), "--db", db_url)
    run("ingest", str(days[1]), "--db", db_url)  # 1-5 patched: left out (not replayed)
    scan = tmp_path / "scan.jsonl"
    scan.write_bytes(b"".join(orjson.dumps({
        "target": f"10.0.0.{n}", "ip": f"10.0.0.{n}", "port": 443, "scheme": "https",
        "time": f"2021-03-0{day}T09:00:00+00:00", "reachable": True, "exchange": True,
        "build": "15.1.2176.9", "build_source": "x-owa-version",
        "product": "Exchange Server 2016", "release": "CU19 Mar21SU",
        "vulnerabilities": {"CVE-2021-26855": "patched"}, "error": None}) + b"\n"
        for n, day in ((1, 3), (2, 3), (3, 4), (4, 5), (5, 5))))
    run("ingest", str(scan), "--db", db_url)
    before = orjson.loads(run("stats", "--db", db_url, "--format", "json"))

    store = Store(db_url)
    with store.engine.connect() as connection:  # back to before the absence migration
        if connection.dialect.name == "sqlite":  # its table rebuilds need this, with data in
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.execute(sa.delete(DailyStates))
        connection.execute(sa.delete(ReportDay))
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0003_i12_provenance")
        connection.commit()
        assert "daily_states" not in sa.inspect(connection).get_table_names()
    store.close()
    Store(db_url).close()  # the new exhunt opens the old store: migrated

    after = orjson.loads(run("stats", "--db", db_url, "--format", "json"))
    assert after["by_group"] == before["by_group"]  # the counts of now
    # a point for each day of evidence, the scan's confirmations on the days they were seen
    curve = [(p["day"], p["vulnerable_ever"], p["patched"], p["unreported"])
             for p in after["uptake"]]
    assert curve == [("2021-03-02", 19, 0, 0), ("2021-03-03", 19, 2, 0),
                     ("2021-03-04", 19, 3, 0), ("2021-03-05", 19, 5, 0)]


def test_the_backfill_replays_states_over_time(db_url: str, tmp_path: Path) -> None:
    """Each past day's headline groups as the tracking rules give them on that day."""
    days = write_campaign(tmp_path)
    run("contacts", "import", str(tmp_path / "contacts.csv"), "--db", db_url)
    run("ingest", str(days[0]), str(days[1]), "--db", db_url)
    store = Store(db_url)
    with store.transaction() as session:
        session.execute(sa.delete(DailyStates))
        assert backfill_days(session) == 2
        assert backfill_days(session) == 0  # once only
    with store.session() as session:
        rows = [(f"{r.day:%m-%d}", r.vulnerable, r.backdoored, r.vulnerable_ever)
                for r in session.scalars(sa.select(DailyStates).order_by(DailyStates.day))]
    store.close()
    # day 1: 19 vulnerable and the back door; day 2 the same hosts (absence not replayed)
    assert rows == [("03-02", 19, 1, 19), ("03-03", 14, 1, 19)]
