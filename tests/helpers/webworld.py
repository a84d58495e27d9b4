"""The dashboard tests' small hostile world: two victims (cases A and B), one coordinator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from fastapi.testclient import TestClient

from exhunt.cases.absence import record_day
from exhunt.cases.owners import Attributor, CaseBook
from exhunt.store.db import Store
from exhunt.store.models import (
    Case,
    Event,
    Host,
    Message,
    Network,
    Observation,
    Organisation,
)
from exhunt.web.queries import save_fleet_summary
from exhunt.web.security import add_user, case_token, server_secret

SCRIPT = '<script>alert("feed")</script>'
IMG = '<img src=x onerror=alert(1)>'
COORDINATOR = ("coord", "correct horse battery staple")
T0 = datetime(2026, 11, 1, 8, 0)


@dataclass
class World:
    url: str
    token_a: str
    token_b: str
    case_a: str
    case_b: str
    host_a: str
    host_b: str


def _host(session: Any, org: Organisation, ip: str, name: str, states: list[str]) -> None:
    host = Host(ip=ip, hostname=name, organisation_id=org.id, network=ip + "/32", asn=64500,
                as_name=f"Hostile AS {SCRIPT}", country="NL", sector=org.sector,
                state=states[-1], worst_state="backdoor", first_seen=T0, last_seen=T0,
                first_vulnerable_at=T0, state_since=T0)
    session.add(host)
    session.flush()
    for day, state in enumerate(states):
        source = "scan" if state in ("vulnerable", "patched", "exposed") else "shadowserver"
        last = day == len(states) - 1  # the latest run stays open
        session.add(Observation(host_id=host.id, source=source, seen_at=T0 + timedelta(days=day),
                                last_seen_at=None if last else T0 + timedelta(days=day),
                                state=state, port=443,
                                build=f"15.1.2176.2 {IMG}",
                                evidence=f"feed said {SCRIPT} on {ip}"))


def build_world(url: str) -> World:
    store = Store(url)
    with store.transaction() as session:
        org_a = Organisation(name=f"Org A {SCRIPT}", country="NL", sector="health")
        org_b = Organisation(name="Org B", country="DE", sector="energy")
        session.add_all([org_a, org_b])
        session.flush()
        session.add_all([Network(cidr="192.0.2.0/24", organisation_id=org_a.id),
                         Network(cidr="198.51.100.0/24", organisation_id=org_b.id)])
        _host(session, org_a, "192.0.2.10", f"mail.a.example {IMG}",
              ["vulnerable", "backdoor", "patched", "backdoor"])
        _host(session, org_b, "198.51.100.20", "mail.b.example", ["vulnerable"])
        case_a = Case(reference="EXH-AAAAAAAAAA", organisation_id=org_a.id, opened_at=T0)
        case_b = Case(reference="EXH-BBBBBBBBBB", organisation_id=org_b.id, opened_at=T0)
        session.add_all([case_a, case_b])
        session.flush()
        body = (f"From: cert@example.org\r\nTo: a@a.example\r\nSubject: notice\r\n"
                f"Message-ID: <n1@example.org>\r\n\r\nYour server {SCRIPT} has a back door.\r\n")
        session.add(Message(case_id=case_a.id, round=1, message_id="<n1@example.org>",
                            recipient="soc@a.example", subject=f"Back door {SCRIPT}",
                            body=body.encode(), hosts=1, status="sent", attempts=1,
                            sent_at=T0 + timedelta(days=2)))
        session.add(Event(case_id=case_a.id, kind="notice-sent", at=T0 + timedelta(days=2),
                          detail=f"notice to soc@a.example {SCRIPT}"))
        add_user(session, *COORDINATOR)
        save_fleet_summary(session, {
            "servers": 2, "waves": {"pre-disclosure": 1, "post-disclosure": 1},
            "answer": "All 2 linked servers share infrastructure: one group.",
            "clusters": [{"id": 1, "servers": ["192.0.2.10 (EXCH01)", f"x {SCRIPT}"],
                          "waves": {"pre-disclosure": 1},
                          "first_exploitation": "2021-01-06T00:00:00Z",
                          "indicators": [{"kind": "ip", "value": f"203.0.113.9 {IMG}"}]},
                         "not a cluster"]})
        # what ingest keeps beside the rows: each case's host count and worst state, and
        # the day's counts the series and the uptake curve read
        session.flush()
        book = CaseBook(session, Attributor(session), T0)
        book.ensure({org_a.id, org_b.id})
        book.judge({org_a.id, org_b.id})
        record_day(session, T0 + timedelta(days=3))
        secret = server_secret(session)
        tokens = (case_token(secret, case_a.reference), case_token(secret, case_b.reference))
    store.close()
    return World(url, tokens[0], tokens[1], "EXH-AAAAAAAAAA", "EXH-BBBBBBBBBB",
                 "192.0.2.10", "198.51.100.20")


def hunt_report(verdict: str = "clean", name: str = "mail.a.example",
                title: str = "nothing found") -> bytes:
    """A report in the shape of `exhunt hunt --format json` (docs/contracts.md)."""
    return orjson.dumps({
        "source": "C:/triage/mail-a.zip",
        "host": {"name": name, "exchange_build": "15.1.2507.6"},
        "verdict": verdict,
        "first_exploitation": None,
        "coverage": {"iis": {"first": "2026-11-20T00:00:00Z", "last": "2026-11-29T00:00:00Z",
                             "records": 1000}},
        "findings": [{"check": "webshell", "title": title, "severity": "high",
                      "stage": "backdoor", "detail": f"detail {SCRIPT}"}],
        "errors": [],
    })


def login_coordinator(client: TestClient) -> str:
    """Log in through the form; returns the session's CSRF token."""
    page = client.get("/login")
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    response = client.post("/login", data={"username": COORDINATOR[0],
                                           "password": COORDINATOR[1], "csrf": csrf},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return csrf


def open_as_victim(client: TestClient, token: str) -> None:
    page = client.get("/access")
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    response = client.post("/access", data={"token": token, "csrf": csrf},
                           follow_redirects=False)
    assert response.status_code == 303, response.text


