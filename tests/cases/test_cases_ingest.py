"""Ingest, attribution and case states, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson
import sqlalchemy as sa
from typer.testing import CliRunner

from exhunt.cases.contacts import import_contacts
from exhunt.cases.ingest import Ingestor
from exhunt.cli import app
from exhunt.store.db import Store
from exhunt.store.models import Case, Host, Observation, Reject

DATA = Path(__file__).resolve().parent.parent / "data" / "cases"
SS_2021 = DATA / "2021-05-14-scan_exchange.csv"
SS_NOW = DATA / "2026-03-24-scan6_exchange.csv"
COLUMNS = ["timestamp", "severity", "ip", "protocol", "port", "hostname", "tag", "asn", "geo",
           "region", "city", "naics", "hostname_source", "sector", "version", "servername", "url"]
HOSTILE = "<script>alert('x')</script>\r\nBcc: all@example.org\x00" + "A" * 50_000


def loaded(db_url: str) -> Store:
    store = Store(db_url)
    import_contacts(store, DATA / "contacts.csv")
    ingestor = Ingestor(store)
    ingestor.ingest(SS_2021)
    ingestor.ingest(SS_NOW)
    return store


def hosts(store: Store) -> dict[str, Host]:
    with store.session() as s:
        return {h.ip: h for h in s.scalars(sa.select(Host))}


def owner_names(store: Store) -> dict[str, str | None]:
    with store.session() as s:
        rows = s.execute(sa.text(
            "select h.ip, o.name from hosts h left join organisations o "
            "on o.id = h.organisation_id")).all()
    return {ip: name for ip, name in rows}


def test_fixtures_attribute_to_the_most_specific_network(db_url: str) -> None:
    store = loaded(db_url)
    owners = owner_names(store)
    assert owners == {
        "192.0.2.10": "First Credit Union",
        "192.0.2.77": "First Credit Union Branch",  # the /26 inside the /24
        "198.51.100.5": "Town of Springfield",
        "203.0.113.9": None,  # nobody's: stays in the unattributed queue
        "2001:db8:10::25": "First Credit Union",  # the /48 inside the ISP's /32
        "2001:db8:99::1": "Regional ISP",
    }
    h = hosts(store)
    assert h["192.0.2.77"].state == "backdoor" and h["192.0.2.10"].state == "vulnerable"
    assert (h["198.51.100.5"].sector, h["198.51.100.5"].sector_source) == (
        "local and general government", "naics")
    assert h["192.0.2.10"].sector_source == "contacts"
    with store.session() as s:
        refs = s.scalars(sa.select(Case.reference)).all()
        reasons = s.scalars(sa.select(Reject.reason)).all()
    assert len(refs) == 4 and len(set(refs)) == 4
    assert any("not-an-ip" in r for r in reasons)
    assert any("e-mail" in r for r in reasons) and any("CIDR" in r for r in reasons)


def test_reingest_adds_nothing_even_under_another_name(db_url: str, tmp_path: Path) -> None:
    store = loaded(db_url)
    before = _count(store, Observation)
    again = Ingestor(store).ingest(SS_2021)
    assert again.status == "already ingested" and again.added == 0
    lines = SS_2021.read_text().splitlines()
    shuffled = tmp_path / "copy-scan_exchange.csv"
    shuffled.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    result = Ingestor(store).ingest(shuffled)
    assert result.status == "ingested" and result.added == 0
    assert _count(store, Observation) == before


def _count(store: Store, model: type) -> int:
    with store.session() as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def _ss_file(path: Path, rows: list[dict[str, str]]) -> Path:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue())
    return path


def _scan_file(path: Path, ip: str, day: int, status: str, month: int = 3) -> Path:
    path.write_bytes(orjson.dumps({
        "target": ip, "ip": ip, "port": 443, "scheme": "https",
        "time": f"2021-{month:02d}-{day:02d}T12:00:00Z", "reachable": True, "exchange": True,
        "build": "15.1.2176.9", "vulnerabilities": {"CVE-2021-26855": status}}) + b"\n")
    return path


def _hunt_file(path: Path, name: str, day: int, verdict: str) -> Path:
    path.write_bytes(orjson.dumps({
        "source": "D:/copy", "host": {"name": name, "exchange_build": None}, "verdict": verdict,
        "first_exploitation": None, "findings": [], "errors": [],
        "coverage": {"iis": {"files": 1, "records": 1, "first": None,
                             "last": f"2021-03-{day:02d}T00:00:00Z"}}}))
    return path


def test_states_move_on_evidence_and_reopen(db_url: str, tmp_path: Path) -> None:
    store = loaded(db_url)
    ing = Ingestor(store)
    ip = "198.51.100.44"
    steps = [
        (_ss_file(tmp_path / "d1.csv", [{"timestamp": "2021-03-01 00:00:00", "ip": ip,
                                         "tag": "exchange;cve-2021-26855",
                                         "hostname": "mail2.town.example"}]), "vulnerable",
         "open"),
        (_scan_file(tmp_path / "d2.jsonl", ip, 2, "patched"), "patched", "open"),
        (_hunt_file(tmp_path / "d3.json", "mail2.town.example", 3, "backdoored"), "backdoor",
         "open"),
        (_scan_file(tmp_path / "d4.jsonl", ip, 4, "patched"), "backdoor", "open"),
        (_hunt_file(tmp_path / "d5.json", "MAIL2.town.example", 5, "clean"), "clean", None),
        (_scan_file(tmp_path / "d6.jsonl", ip, 6, "vulnerable"), "vulnerable", "open"),
    ]
    for path, state, _ in steps:
        result = ing.ingest(path)
        assert result.added == 1, (path, result)
        assert hosts(store)[ip].state == state, path.name
    assert hosts(store)[ip].worst_state == "backdoor"
    # late evidence from before everything else: the host's story is replayed, not reset
    ing.ingest(_ss_file(tmp_path / "d0.csv", [{"timestamp": "2021-02-28 00:00:00", "ip": ip,
                                               "tag": "exchange;webshell"}]))
    assert hosts(store)[ip].state == "vulnerable"
    assert hosts(store)[ip].first_seen is not None and hosts(store)[ip].first_seen.day == 28


def test_case_resolves_when_every_host_is_clean_or_patched(db_url: str, tmp_path: Path) -> None:
    store = loaded(db_url)
    ing = Ingestor(store)
    # a scan from before the Shadowserver sighting (May 14) changes nothing: replayed in order
    ing.ingest(_scan_file(tmp_path / "early.jsonl", "198.51.100.5", 20, "patched", month=3))
    assert hosts(store)["198.51.100.5"].state == "vulnerable"
    ing.ingest(_scan_file(tmp_path / "late.jsonl", "198.51.100.5", 20, "patched", month=6))
    with store.session() as s:
        town = s.scalar(sa.select(Case).join(Case.organisation)
                        .where(sa.text("organisations.name = 'Town of Springfield'")))
        assert town is not None and town.status == "resolved"


def test_hostile_text_in_every_field_is_stored_as_data(db_url: str, tmp_path: Path) -> None:
    store = loaded(db_url)
    row = {c: HOSTILE for c in COLUMNS}
    row.update(ip="192.0.2.99", timestamp="2021-03-09 00:00:00", tag="exchange;webshell")
    bad = {c: HOSTILE for c in COLUMNS}
    result = Ingestor(store).ingest(_ss_file(tmp_path / "h-scan_exchange.csv", [row, bad]))
    assert (result.added, result.rejected) == (1, 1)
    with store.session() as s:
        evidence = s.scalar(sa.select(Observation.evidence).join(Host)
                            .where(Host.ip == "192.0.2.99"))
        raw = s.scalars(sa.select(Reject.raw)).all()
        host = s.scalar(sa.select(Host).where(Host.ip == "192.0.2.99"))
    assert evidence is not None and "<script>alert('x')</script>" in evidence
    assert "\x00" not in evidence and "\\x00" in evidence and len(evidence) < 10_000
    assert host is not None and host.hostname is not None and host.hostname.startswith("<script>")
    assert any("<script>" in r for r in raw)


def test_cli_cases_unattributed_and_rejects(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["contacts", "import", str(DATA / "contacts.csv"),
                               "--db", db_url]).exit_code == 0
    out = runner.invoke(app, ["ingest", str(SS_2021), str(SS_NOW), "--db", db_url,
                              "--format", "json"])
    assert out.exit_code == 0, out.output
    assert [r["added"] for r in orjson.loads(out.stdout)] == [4, 2]
    cases = orjson.loads(runner.invoke(app, ["cases", "--db", db_url, "--format", "json"]).stdout)
    credit = next(c for c in cases if c["organisation"] == "First Credit Union")
    assert sorted(h["ip"] for h in credit["hosts"]) == ["192.0.2.10", "2001:db8:10::25"]
    queue = orjson.loads(runner.invoke(app, ["cases", "--unattributed", "--db", db_url,
                                             "--format", "json"]).stdout)
    assert [h["ip"] for h in queue] == ["203.0.113.9"]
    text = runner.invoke(app, ["rejects", "--db", db_url])
    assert text.exit_code == 0 and "not-an-ip" in text.stdout
    missing = runner.invoke(app, ["ingest", str(tmp_path / "nope.csv"), "--db", db_url])
    assert missing.exit_code == 3 and "nope.csv" in missing.output


def test_cases_detail_shows_evidence_and_history(db_url: str, tmp_path: Path) -> None:
    store = loaded(db_url)
    Ingestor(store).ingest(_scan_file(tmp_path / "fix.jsonl", "198.51.100.5", 1, "patched", 7))
    store.close()
    out = CliRunner().invoke(app, ["cases", "--db", db_url, "--format", "json", "--detail"])
    town = next(c for c in orjson.loads(out.stdout) if c["organisation"] == "Town of Springfield")
    (host,) = town["hosts"]
    assert [e["state"] for e in host["evidence"]] == ["vulnerable", "patched"]
    kinds = [h["kind"] for h in town["history"]]
    assert {"case-opened", "case-resolved", "host-state"} <= set(kinds)


def test_ip2asn_table_given_on_the_command_line(db_url: str, tmp_path: Path) -> None:
    tsv = tmp_path / "ip2asn.tsv"
    tsv.write_text("192.0.2.0\t192.0.2.127\t64496\tUS\tDOC-NET-A <script>\n"
                   "2001:db8::\t2001:db8:ffff:ffff:ffff:ffff:ffff:ffff\t64497\tUS\tDOC-V6\n")
    out = CliRunner().invoke(app, ["ingest", str(SS_2021), str(SS_NOW), "--db", db_url,
                                   "--ip2asn", str(tsv)])
    assert out.exit_code == 0, out.output
    h = hosts(Store(db_url))
    assert (h["192.0.2.10"].asn, h["192.0.2.10"].as_name) == (64496, "DOC-NET-A <script>")
    assert h["2001:db8:99::1"].asn == 64497
    assert h["198.51.100.5"].asn == 64501  # not in the table: the feed's own AS column stays


def test_same_hunt_report_for_two_addresses_is_two_pieces_of_evidence(db_url: str,
                                                                      tmp_path: Path) -> None:
    store = loaded(db_url)
    report = _hunt_file(tmp_path / "r.json", "anything", 9, "backdoored")
    ing = Ingestor(store)
    assert ing.ingest(report, host_ip="198.51.100.21").added == 1
    assert ing.ingest(report, host_ip="198.51.100.22").added == 1
    assert ing.ingest(report, host_ip="198.51.100.22").status == "already ingested"
    h = hosts(store)
    assert h["198.51.100.21"].state == h["198.51.100.22"].state == "backdoor"
