"""The coordinator's export: shared infrastructure out, victims' identities kept home."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from pymisp import MISPEvent
from stix2validator import ValidationOptions, validate_string
from typer.testing import CliRunner

from exhunt.cli.coordinate import register
from exhunt.hunt.report import report_json
from exhunt.share.report_in import report_from_json

runner = CliRunner()
app = typer.Typer()
register(app, typer.Typer())


def write_reports(reports: list[Any], folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    for i, report in enumerate(reports):
        (folder / f"{i}.json").write_text(json.dumps(report_json(report)), "utf-8")
    (folder / "junk.json").write_text('{"verdict": "owned", "findings": 3}', "utf-8")
    return folder


def victims(reports: list[Any]) -> set[str]:
    names = {r.host.name for r in reports if r.host.name} | {r.source for r in reports}
    return names | {Path(r.source).name for r in reports}


def test_stix_export_without_victims(fleet: Any, tmp_path: Path) -> None:
    reports, _ = fleet
    folder = write_reports(reports, tmp_path / "hunts")
    out = tmp_path / "campaign.json"
    result = runner.invoke(app, ["cases", "--format", "stix", "--reports", str(folder),
                                 "-o", str(out), "--producer", "CERT-Lab"])
    assert result.exit_code == 0, result.output
    assert "junk.json" in result.output  # named, not silently dropped
    text = out.read_text("utf-8")
    check = validate_string(text, ValidationOptions(version="2.1"))
    assert check.is_valid and not check.warnings
    objects = json.loads(text)["objects"]
    assert len([o for o in objects if o["type"] == "intrusion-set"]) == 2
    assert not [o for o in objects if o.get("identity_class") == "system"]
    assert not [o for o in objects if "where_sighted_refs" in o]
    for name in victims(reports):
        assert name not in text, name


def test_with_victims_names_the_servers(fleet: Any, tmp_path: Path) -> None:
    reports, _ = fleet
    folder = write_reports(reports, tmp_path / "hunts")
    result = runner.invoke(app, ["cases", "--format", "misp", "--reports", str(folder),
                                 "--with-victims", "--tlp", "red"])
    assert result.exit_code == 0, result.output
    text = result.stdout[result.stdout.index("{"):]
    event = MISPEvent()
    event.load(text)
    assert "EXCH01" in {a.value for a in event.attributes if a.type == "target-machine"}
    assert "tlp:red" in {t.name for t in event.tags}


def test_misp_export_without_victims_keeps_internal_addresses_home(tmp_path: Path) -> None:
    hunt = {"source": "C:/copies/ACME-EXCH01", "host": {"name": "ACME-EXCH01"},
            "verdict": "exploited", "coverage": {}, "findings": [
                {"check": "proxylogon.ssrf", "title": "t", "severity": "critical",
                 "stage": "exploit", "cves": ["CVE-2021-26855"],
                 "timestamp": "2021-03-03T01:02:03.000Z", "artifact": "a", "line": 1,
                 "evidence": "", "client_ip": ip, "webshell_path": None}
                for ip in ("10.20.30.40", "203.0.113.66")]}
    (tmp_path / "r.json").write_text(json.dumps(hunt), "utf-8")
    result = runner.invoke(app, ["cases", "--format", "misp", "--reports",
                                 str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "203.0.113.66" in result.stdout
    for secret in ("10.20.30.40", "ACME", "copies"):
        assert secret not in result.stdout


def test_export_needs_reports() -> None:
    result = runner.invoke(app, ["cases", "--format", "stix"])
    assert result.exit_code == 2 and "--reports" in result.output


@settings(max_examples=200, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30)
    | st.sampled_from(["reentered", "critical", "exploit", "2021-03-03T01:02:03Z"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
        ["verdict", "host", "name", "findings", "check", "title", "severity", "stage",
         "cves", "timestamp", "line", "coverage", "first", "files", "client_ip"]),
        inner, max_size=6), max_leaves=40))
def test_report_reader_never_raises_on_hostile_json(data: object) -> None:
    report, problems = report_from_json(data, "x.json")
    assert report is not None or problems
