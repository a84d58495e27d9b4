"""A real `exhunt hunt` report of a lab triage copy, uploaded by its victim, shown with the
hunt's own HTML under a sandbox; arbitrary JSON never breaks the rebuild."""

from __future__ import annotations

from pathlib import Path

import orjson
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from exhunt.hunt.engine import hunt
from exhunt.hunt.report import HEADLINES, report_json
from exhunt.lab.attacks import Scenario
from exhunt.lab.triage import TriageSpec, build_triage
from exhunt.model import Verdict
from exhunt.web.app import REPORT_CSP
from exhunt.web.hunt_view import report_from_json, uploaded_report_html
from helpers.webworld import World, login_coordinator


def test_real_hunt_report_round_trips_and_is_viewable(app: FastAPI, world: World,
                                                      tmp_path: Path) -> None:
    copy = tmp_path / "triage"
    build_triage(copy, TriageSpec(scenario=Scenario.BACKDOORED, size_bytes=300_000, seed=3,
                                  host="EXCH-A"))
    report = hunt(str(copy), workers=1)
    assert report.verdict is Verdict.BACKDOORED
    data = report_json(report)
    rebuilt = report_from_json(orjson.loads(orjson.dumps(data)))
    assert rebuilt.verdict is report.verdict
    assert [f.title for f in rebuilt.findings] == [f.title for f in report.findings]
    assert rebuilt.first_exploitation == report.first_exploitation

    client = TestClient(app)
    a = {"Authorization": f"Bearer {world.token_a}"}
    sent = client.post(f"/api/reports?host_ip={world.host_a}", content=orjson.dumps(data),
                       headers=a)
    assert sent.status_code == 200, sent.text
    assert sent.json()["host_state"] == "backdoor"
    login_coordinator(client)
    shown = client.get(f"/cases/{world.case_a}/reports/{sent.json()['report_id']}")
    assert shown.headers["content-security-policy"] == REPORT_CSP
    assert HEADLINES[Verdict.BACKDOORED].split(" (")[0] in shown.text
    assert report.findings[0].title.split("<")[0][:30] in shown.text


JSON = st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
                    | st.floats(allow_nan=False) | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)
KEYS = st.sampled_from(["source", "host", "verdict", "first_exploitation", "coverage",
                        "findings", "errors", "exchange_found", "host_activity"])


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(KEYS, JSON | st.lists(st.dictionaries(st.sampled_from(
    ["check", "title", "severity", "stage", "cves", "timestamp", "line", "evidence"]), JSON),
    max_size=3)))
def test_any_json_object_rebuilds_or_falls_back(doc: dict[str, object]) -> None:
    html = uploaded_report_html(doc)
    if html is not None:
        assert "<script" not in html.lower()


def test_host_activity_is_shown_with_its_severity(tmp_path: Path) -> None:
    """A copy with an LSASS dump and no Exchange: the uploaded report shows the host activity
    section with its severity, and claims no Exchange stage."""
    from datetime import UTC, datetime

    from exhunt.lab import event_layouts as ev
    from exhunt.lab.evtx_writer import write_evtx

    logs = tmp_path / "copy/C/Windows/System32/winevt/Logs"
    logs.mkdir(parents=True)
    write_evtx(logs / "Sysmon.evtx", [ev.sysmon_file_create(
        datetime(2021, 3, 4, tzinfo=UTC), "C:\\Windows\\System32\\taskmgr.exe",
        "C:\\Windows\\Temp\\lsass.DMP")])
    report = hunt(str(tmp_path / "copy"), workers=1)
    assert report.verdict is Verdict.CLEAN and report.host_activity
    doc = orjson.loads(orjson.dumps(report_json(report)))
    rebuilt = report_from_json(doc)
    assert [f.title for f in rebuilt.host_activity] == [f.title for f in report.host_activity]
    html = uploaded_report_html(doc)
    assert html is not None
    assert 'class="sev-high">Host activity: HIGH</h2>' in html
    assert report.host_activity[0].title in html
