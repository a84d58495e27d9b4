"""Evidence smuggled through the portal by a token holder: victim A holds A's token and tries
to make the portal take something other than one hunt report about one of A's hosts, through
the upload form and through `POST /api/reports`. Each is refused with a plain 4xx and neither
case changes (issue 11: a scan line behind the report schema once moved B's host to patched and
closed B's case)."""

from __future__ import annotations

import gzip
import re
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from exhunt.store.db import Store
from exhunt.store.models import Case, Event, Host, IngestedFile, Observation
from exhunt.web.security import WebReport
from helpers.webworld import World, hunt_report

B_IP = "198.51.100.20"
ALL_PATCHED = {"CVE-2021-26855": False, "CVE-2021-26857": False, "CVE-2021-26858": False,
               "CVE-2021-27065": False}
REPORT_KEYS = {"source": "C:/triage/x.zip", "host": {"name": None, "exchange_build": None},
               "verdict": "clean", "findings": [], "errors": [], "coverage": {}}


def _scan_line(**extra: Any) -> dict[str, Any]:
    """An `exhunt scan` line about B's host saying it is patched."""
    return {"target": B_IP, "ip": B_IP, "port": 443, "reachable": True, "exchange": True,
            "time": "2026-11-30T00:00:00Z", "build": "15.1.2507.6",
            "vulnerabilities": ALL_PATCHED, **extra}


def _shadowserver_csv() -> bytes:
    return (b'"timestamp","ip","port","hostname","tag","asn","geo","naics","sector","version"\n'
            b'"2026-11-30 00:00:00","198.51.100.20",443,"mail.b.example","exchange",64500,'
            b'"DE",,"Energy","15.1.2507.6"\n')


SMUGGLED: dict[str, bytes] = {
    # a scan line that also carries the report's keys, first line naming a target
    "scan JSONL": orjson.dumps(_scan_line(**REPORT_KEYS)) + b"\n",
    "scan JSONL, two lines": b"\n".join(orjson.dumps(_scan_line()) for _ in range(2)) + b"\n",
    "Shadowserver CSV": _shadowserver_csv(),
    "hunt report naming B's host": hunt_report("clean", name="mail.b.example"),
    "hunt report with B's address": orjson.dumps({**orjson.loads(hunt_report("clean")),
                                                  "ip": B_IP}),
    "hunt report whose host carries B's address": orjson.dumps(
        {**orjson.loads(hunt_report("clean")),
         "host": {"name": "mail.a.example", "ip": B_IP}}),
    "list of reports": orjson.dumps([orjson.loads(hunt_report("clean")),
                                     {**orjson.loads(hunt_report("clean")), "ip": B_IP}]),
    # the report's keys only after 4 KiB: once sniffed as a scan line and its `ip` trusted
    "fields after 4 KiB": orjson.dumps({**_scan_line(), "padding": "x" * 5000,
                                        **REPORT_KEYS}),
    "BOM": b"\xef\xbb\xbf" + orjson.dumps(_scan_line(**REPORT_KEYS)),
    "gzip": gzip.compress(orjson.dumps(_scan_line(**REPORT_KEYS))),
    "gzip of a hunt report": gzip.compress(hunt_report("clean")),
}


def _state(url: str) -> dict[str, Any]:
    """What a user would notice changed: host states and names, case status, history, counts."""
    store = Store(url)
    try:
        with store.session() as session:
            return {
                "hosts": sorted(tuple(r) for r in session.execute(
                    select(Host.ip, Host.state, Host.hostname))),
                "cases": sorted(tuple(r) for r in session.execute(
                    select(Case.reference, Case.status))),
                "events": session.scalar(select(func.count(Event.id))),
                "observations": session.scalar(select(func.count(Observation.id))),
                "files": session.scalar(select(func.count(IngestedFile.id))),
                "reports": session.scalar(select(func.count(WebReport.id))),
            }
    finally:
        store.close()


def _form_upload(clients: dict[str, TestClient], world: World, body: bytes
                 ) -> tuple[int, str]:
    client = clients["victim_a"]  # a portal session opened with A's token
    page = client.get(f"/cases/{world.case_a}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    response = client.post(f"/cases/{world.case_a}/reports", data={"csrf": csrf.group(1)},
                           files={"report": ("report.json", body)}, follow_redirects=False)
    return response.status_code, response.text


def _api_upload(clients: dict[str, TestClient], world: World, body: bytes
                ) -> tuple[int, str]:
    response = clients["anonymous"].post("/api/reports", content=body,
                           headers={"Authorization": f"Bearer {world.token_a}",
                                    "content-type": "application/json"})
    return response.status_code, str(response.json().get("detail"))


@pytest.mark.parametrize("way", ["form", "api"])
@pytest.mark.parametrize("kind", list(SMUGGLED))
def test_smuggled_evidence_is_refused_and_changes_nothing(
        clients: dict[str, TestClient], world: World, kind: str, way: str) -> None:
    before = _state(world.url)
    upload = _form_upload if way == "form" else _api_upload
    status, text = upload(clients, world, SMUGGLED[kind])
    assert 400 <= status < 500, (kind, status, text)
    assert "report" in text.lower() or "host" in text.lower()  # a reason, in words
    assert _state(world.url) == before


@pytest.mark.parametrize("way", ["form", "api"])
def test_the_right_report_still_moves_only_the_own_host(
        clients: dict[str, TestClient], world: World, way: str) -> None:
    upload = _form_upload if way == "form" else _api_upload
    status, _ = upload(clients, world, hunt_report("clean"))
    assert status in (200, 303)
    after = {ip: state for ip, state, _ in _state(world.url)["hosts"]}
    assert after == {world.host_a: "clean", B_IP: "vulnerable"}


def test_the_report_name_does_not_rename_the_host(app: Any, world: World) -> None:
    client = TestClient(app)
    response = client.post("/api/reports", content=hunt_report("clean", name="mail.c.example"),
                           headers={"Authorization": f"Bearer {world.token_a}"})
    assert response.status_code == 200, response.text
    names = {ip: name for ip, _, name in _state(world.url)["hosts"]}
    assert names[world.host_a].startswith("mail.a.example")


def test_a_report_dated_in_the_future_does_not_outrank_later_evidence(app: Any,
                                                                      world: World) -> None:
    future = orjson.loads(hunt_report("clean"))
    future["coverage"] = {"iis": {"first": "9990-01-01T00:00:00Z", "last": "9999-01-01T00:00:00Z",
                                  "records": 1}}
    client = TestClient(app)
    response = client.post("/api/reports", content=orjson.dumps(future),
                           headers={"Authorization": f"Bearer {world.token_a}"})
    assert response.status_code == 200, response.text
    store = Store(world.url)
    with store.session() as session:
        latest = session.scalar(select(func.max(Observation.seen_at)))
    store.close()
    assert latest is not None and latest.year < 9000
