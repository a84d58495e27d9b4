"""Victim tokens the operator manages (issue 11): rotation, revocation, expiry after the case is
resolved, a clear message naming whom to ask instead of a bare 401, the notice carrying the
current token; and a per-case upload quota that keeps what was received."""

from __future__ import annotations

import re
from datetime import timedelta

import typer
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from exhunt.cli.coordinate import _portal
from exhunt.cli.coordinate import register as case_commands
from exhunt.store.db import Store
from exhunt.store.models import Case, utcnow
from exhunt.web.app import PortalSettings, create_app
from helpers.webworld import World, hunt_report

CONTACT = "cert@cert.example"
SETTINGS = PortalSettings(contact=CONTACT)


def _cli(*args: str) -> tuple[int, str]:
    app = typer.Typer()
    lab = typer.Typer()
    app.add_typer(lab, name="lab")
    case_commands(app, lab)
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def _case_api(client: TestClient, world: World, token: str) -> tuple[int, str]:
    """The token's own case through the API."""
    reference = token.split(".")[1]
    response = client.get(f"/api/cases/{reference}",
                          headers={"Authorization": f"Bearer {token}"})
    return response.status_code, str(response.json().get("detail", ""))


def _access(client: TestClient, token: str) -> tuple[int, str]:
    page = client.get("/access")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    response = client.post("/access", data={"token": token, "csrf": csrf.group(1)},
                           follow_redirects=False)
    return response.status_code, response.text


def test_rotation_makes_a_new_token_and_ends_the_old_one(world: World) -> None:
    app = create_app(world.url, settings=SETTINGS)
    victim = TestClient(app)
    assert _access(victim, world.token_a)[0] == 303
    assert victim.get(f"/cases/{world.case_a}", follow_redirects=False).status_code == 200
    code, output = _cli("cases", "token", world.case_a, "--rotate", "--db", world.url)
    assert code == 0, output
    new = output.strip()
    assert new != world.token_a and new.startswith(f"exv1.{world.case_a}.")
    client = TestClient(app)
    status, detail = _case_api(client, world, world.token_a)
    assert status == 403 and "replaced by a newer one" in detail and CONTACT in detail
    assert _case_api(client, world, new)[0] == 200
    assert _case_api(client, world, world.token_b)[0] == 200  # other cases untouched
    # the portal session the old token opened ended with it
    assert victim.get(f"/cases/{world.case_a}", follow_redirects=False).status_code == 303
    # what prints the token and what the next notice round carries: the current one
    assert _cli("cases", "token", world.case_a, "--db", world.url)[1].strip() == new
    portal = _portal(Store(world.url), "https://portal.example/")
    assert portal is not None
    assert portal.token_for(world.case_a) == new
    assert portal.token_for(world.case_b) == world.token_b


def test_a_revoked_token_is_told_whom_to_ask(world: World) -> None:
    code, output = _cli("cases", "token", world.case_a, "--revoke", "--db", world.url)
    assert code == 0 and "revoked" in output
    client = TestClient(create_app(world.url, settings=SETTINGS))
    status, detail = _case_api(client, world, world.token_a)
    assert status == 403 and "revoked" in detail and CONTACT in detail
    status, page = _access(client, world.token_a)
    assert status == 403 and "revoked" in page and CONTACT in page
    code, output = _cli("cases", "token", world.case_a, "--rotate", "--db", world.url)
    assert _case_api(client, world, output.strip())[0] == 200  # a rotation reopens


def _resolve_case_a(world: World, days_ago: int) -> None:
    store = Store(world.url)
    with store.transaction() as session:
        case = session.scalar(select(Case).where(Case.reference == world.case_a))
        assert case is not None
        case.status, case.resolved_at = "resolved", utcnow() - timedelta(days=days_ago)
    store.close()


def test_a_token_expires_weeks_after_resolution_or_when_the_operator_says(world: World) -> None:
    client = TestClient(create_app(world.url, settings=SETTINGS))
    _resolve_case_a(world, days_ago=3)
    assert _case_api(client, world, world.token_a)[0] == 200
    portal = TestClient(create_app(world.url, settings=SETTINGS))
    assert _access(portal, world.token_a)[0] == 303
    _resolve_case_a(world, days_ago=40)
    status, detail = _case_api(client, world, world.token_a)
    assert status == 403 and "expired" in detail and CONTACT in detail
    # the portal session opened before the expiry ends with it
    assert portal.get(f"/cases/{world.case_a}", follow_redirects=False).status_code == 303
    longer = TestClient(create_app(world.url, settings=PortalSettings(
        token_grace=timedelta(days=60))))
    assert _case_api(longer, world, world.token_a)[0] == 200
    # an expiry set by hand wins, also for an open case
    assert _cli("cases", "token", world.case_b, "--expires", "2020-01-01",
                "--db", world.url)[0] == 0
    status, detail = _case_api(client, world, world.token_b)
    assert status == 403 and "expired" in detail
    assert "this token is expired" in _cli("cases", "token", world.case_b, "--db", world.url)[1]
    assert _cli("cases", "token", world.case_b, "--expires", "default", "--db", world.url)[0] == 0
    assert _case_api(client, world, world.token_b)[0] == 200
    code, output = _cli("cases", "token", world.case_b, "--expires", "soon", "--db", world.url)
    assert code == 2 and "YYYY-MM-DD" in output


def test_cases_token_names_an_unknown_case(world: World) -> None:
    code, output = _cli("cases", "token", "EXH-NOPE", "--rotate", "--db", world.url)
    assert code == 2 and "no case 'EXH-NOPE'" in output
    code, output = _cli("cases", "--db", world.url, "--format", "json")
    assert code == 0 and world.case_a in output  # the listing is still `exhunt cases`


def test_upload_quota_per_case_keeps_what_was_received(world: World) -> None:
    app = create_app(world.url, settings=PortalSettings(case_reports=2, contact=CONTACT))
    client = TestClient(app)
    a = {"Authorization": f"Bearer {world.token_a}"}
    for verdict in ("backdoored", "clean"):
        assert client.post("/api/reports", content=hunt_report(verdict),
                           headers=a).status_code == 200
    refused = client.post("/api/reports", content=hunt_report("exploited"), headers=a)
    assert refused.status_code == 413
    assert "quota" in refused.json()["detail"] and "kept" in refused.json()["detail"]
    kept = client.get(f"/api/cases/{world.case_a}", headers=a).json()["reports"]
    assert sorted(r["verdict"] for r in kept) == ["backdoored", "clean"]
    b = {"Authorization": f"Bearer {world.token_b}"}  # the quota is per case
    assert client.post("/api/reports", content=hunt_report("clean", name="mail.b.example"),
                       headers=b).status_code == 200


def test_upload_quota_counts_bytes(world: World) -> None:
    size = len(hunt_report("clean"))
    client = TestClient(create_app(world.url, settings=PortalSettings(case_bytes=size * 3 // 2)))
    a = {"Authorization": f"Bearer {world.token_a}"}
    assert client.post("/api/reports", content=hunt_report("clean"), headers=a).status_code == 200
    refused = client.post("/api/reports", content=hunt_report("clean"), headers=a)
    assert refused.status_code == 413 and "quota" in refused.json()["detail"]
