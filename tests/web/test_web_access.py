"""Who sees what: every route, for anonymous, victim A, victim B and a coordinator."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.routing import BaseRoute

from exhunt.store.db import Store
from exhunt.web.app import create_app
from exhunt.web.security import WebUser
from helpers.webworld import SCRIPT, World, build_world, hunt_report, login_coordinator

ROLES = ("anonymous", "victim_a", "victim_b", "coordinator")
# (method, path template, expected status per role); 303 on pages means "sent to log in"
# for anonymous and "sent on" (to their own case, or back after an upload) for the others
MATRIX: list[tuple[str, str, tuple[int, int, int, int]]] = [
    ("GET", "/", (303, 303, 303, 200)),
    ("GET", "/cases", (303, 403, 403, 200)),
    ("GET", "/cases/{case_a}", (303, 200, 403, 200)),
    ("GET", "/cases/{case_a}/reports/{report_a}", (303, 200, 403, 200)),
    ("POST", "/cases/{case_a}/reports", (303, 303, 403, 303)),
    ("GET", "/hosts/{host_a}", (303, 200, 403, 200)),
    ("GET", "/api/summary", (401, 403, 403, 200)),
    ("GET", "/api/uptake", (401, 403, 403, 200)),
    ("GET", "/api/cases", (401, 403, 403, 200)),
    ("GET", "/api/hosts", (401, 403, 403, 200)),
    ("GET", "/api/cases/{case_a}", (401, 200, 403, 200)),
    ("GET", "/api/hosts/{host_a}", (401, 200, 403, 200)),
    ("POST", "/api/reports?case={case_a}", (401, 200, 403, 200)),
    ("GET", "/login", (200, 200, 200, 200)),
    ("GET", "/access", (200, 200, 200, 200)),
    ("GET", "/static/style.css", (200, 200, 200, 200)),
    ("GET", "/api/openapi.json", (401, 403, 403, 200)),
    ("POST", "/logout", (400, 303, 303, 303)),
]
FORM_ONLY = {("POST", "/login"), ("POST", "/access")}  # tested below, they open sessions


def session_csrf(client: TestClient) -> str:
    page = client.get("/", follow_redirects=True)
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    return match.group(1) if match else ""


def _request(client: TestClient, method: str, path: str, csrf: str) -> int:
    if method == "GET":
        return client.get(path, follow_redirects=False).status_code
    if path.startswith("/api/reports"):
        return client.post(path, content=hunt_report("backdoored"),
                           headers={"content-type": "application/json",
                                    "x-csrf-token": csrf}).status_code
    if path.endswith("/reports"):
        return client.post(path, data={"csrf": csrf},
                           files={"report": ("r.json", hunt_report("backdoored"))},
                           follow_redirects=False).status_code
    return client.post(path, data={"csrf": csrf}, follow_redirects=False).status_code


def _api_routes(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    """Every route, also those of the routers the app includes (no prefix is used)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)  # FastAPI >= 0.16x nests routers
        if inner is not None:
            yield from _api_routes(inner.routes)


def test_matrix_covers_every_route(app: FastAPI) -> None:
    routes = {(m, r.path) for r in _api_routes(app.routes) for m in r.methods}
    routes |= {("GET", "/api/openapi.json")}
    covered = {(m, re.sub(r"\{(case_a|host_a|report_a)\}", lambda x: {
        "case_a": "{reference}", "host_a": "{ip}", "report_a": "{report_id}"}[x.group(1)],
        p.split("?")[0])) for m, p, _ in MATRIX} | FORM_ONLY
    assert routes == covered


def test_access_matrix(clients: dict[str, TestClient], world: World) -> None:
    coordinator = clients["coordinator"]
    csrf = {role: session_csrf(c) for role, c in clients.items()}
    made = coordinator.post(f"/api/reports?case={world.case_a}", content=hunt_report(),
                            headers={"x-csrf-token": csrf["coordinator"],
                                     "content-type": "application/json"})
    assert made.status_code == 200, made.text
    names = {"case_a": world.case_a, "host_a": world.host_a,
             "report_a": str(made.json()["report_id"])}
    got: dict[tuple[str, str], tuple[int, ...]] = {}
    for method, template, _ in MATRIX:
        path = template.format(**names)
        got[method, template] = tuple(_request(clients[role], method, path, csrf[role])
                                      for role in ROLES)
    assert got == {(m, t): e for m, t, e in MATRIX}


def test_victim_api_with_bearer_token_sees_own_case_only(app: FastAPI, world: World) -> None:
    client = TestClient(app)
    a = {"Authorization": f"Bearer {world.token_a}"}
    assert client.get(f"/api/cases/{world.case_a}", headers=a).status_code == 200
    assert client.get(f"/api/cases/{world.case_b}", headers=a).status_code == 403
    assert client.get(f"/api/hosts/{world.host_b}", headers=a).status_code == 403
    assert client.get("/api/hosts/203.0.113.1", headers=a).status_code == 403  # no oracle
    assert client.get("/api/cases", headers=a).status_code == 403
    upload = client.post(f"/api/reports?case={world.case_b}", content=hunt_report(), headers=a)
    assert upload.status_code == 403
    body = client.get(f"/api/cases/{world.case_a}", headers=a).json()
    assert "text" not in body["messages"][0]  # notice bodies are for coordinators


def test_forged_or_guessed_tokens_are_refused_then_throttled(app: FastAPI,
                                                             world: World) -> None:
    client = TestClient(app)
    forged = world.token_a.rsplit(".", 1)[0] + "." + "0" * 40
    swapped = world.token_a.replace(world.case_a, world.case_b)
    for token in (forged, swapped, "exv1..", "x" * 500, f"exv1.{SCRIPT}.00"):
        response = client.get(f"/api/cases/{world.case_b}",
                              headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
    for n in range(4):  # five wrong guesses at case A's token in all
        guess = world.token_a.rsplit(".", 1)[0] + "." + str(n) * 40
        assert client.get(f"/api/cases/{world.case_a}",
                          headers={"Authorization": f"Bearer {guess}"}).status_code == 401
    response = client.get(f"/api/cases/{world.case_a}",
                          headers={"Authorization": f"Bearer {world.token_a}"})
    assert response.status_code == 429  # case A's token was guessed at: wait
    response = client.get(f"/api/cases/{world.case_b}",
                          headers={"Authorization": f"Bearer {world.token_b}"})
    assert response.status_code == 200  # the guesser's address did not lock case B out


def test_login_wrong_password_throttle_and_csrf(app: FastAPI) -> None:
    client = TestClient(app)
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    no_csrf = client.post("/login", data={"username": "coord", "password": "x", "csrf": "bad"})
    assert no_csrf.status_code == 400
    for _ in range(5):
        wrong = client.post("/login", data={"username": "coord", "password": "wrong password",
                                            "csrf": csrf.group(1)})
        assert wrong.status_code == 401
        assert "Wrong user name or password" in wrong.text
    right = client.post("/login", data={"username": "coord",
                                        "password": "correct horse battery staple",
                                        "csrf": csrf.group(1)}, follow_redirects=False)
    assert right.status_code == 429  # even the right password waits out the throttle


def test_passwords_are_argon2id_and_logout_ends_the_session(app: FastAPI, world: World) -> None:
    store = Store(world.url)
    with store.session() as session:
        stored = session.scalar(select(WebUser.password_hash))
    store.close()
    assert stored is not None and stored.startswith("$argon2id$")
    client = TestClient(app)
    login_coordinator(client)
    cookie = client.cookies.get("exhunt_session")
    csrf = session_csrf(client)
    assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    replay = TestClient(app, cookies={"exhunt_session": cookie or ""})
    assert replay.get("/api/summary").status_code == 401


def test_cookie_session_upload_needs_csrf_header(clients: dict[str, TestClient],
                                                 world: World) -> None:
    response = clients["victim_a"].post("/api/reports", content=hunt_report(),
                                        headers={"content-type": "application/json"})
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_session_cookie_flags(app: FastAPI) -> None:
    client = TestClient(app)
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    response = client.post("/login", data={"username": "coord",
                                           "password": "correct horse battery staple",
                                           "csrf": csrf.group(1)}, follow_redirects=False)
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_access_matrix_on_both_databases(db_url: str) -> None:
    """The same refusals hold on PostgreSQL as on SQLite (the store's two back ends)."""
    world = build_world(db_url)
    client = TestClient(create_app(db_url))
    a = {"Authorization": f"Bearer {world.token_a}"}
    assert client.get(f"/api/cases/{world.case_a}", headers=a).status_code == 200
    assert client.get(f"/api/cases/{world.case_b}", headers=a).status_code == 403
    assert client.get("/api/summary", headers=a).status_code == 403
    moved = client.post("/api/reports", content=hunt_report(), headers=a)
    assert moved.status_code == 200, moved.text
    assert moved.json()["host_state"] == "clean"
    coordinator = TestClient(create_app(db_url))
    login_coordinator(coordinator)
    for path in ("/", "/cases?q=org&sort=worst&desc=true", f"/cases/{world.case_a}",
                 f"/hosts/{world.host_a}"):
        assert coordinator.get(path).status_code == 200, path
    assert coordinator.get("/api/summary").json()["funnel"]["acknowledged"] == 1
    # NUL, which PostgreSQL text refuses, anywhere a caller can put it: refused, never a 500
    nul_report = hunt_report("backdoored", name="mail\x00.example", title="a\x00b")
    nul_upload = client.post("/api/reports", content=nul_report, headers=a)
    assert nul_upload.status_code in (200, 422), nul_upload.text
    assert coordinator.get("/api/cases", params={"q": "\x00"}).status_code == 400
    assert coordinator.get("/api/hosts/%00").status_code == 400
    huge = coordinator.get(f"/cases/{world.case_a}/reports/{2**40}")
    assert huge.status_code == 422
    fresh = TestClient(create_app(db_url))
    page = fresh.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    bad_user = fresh.post("/login", data={"username": "co\x00rd", "password": "x" * 12,
                                          "csrf": csrf.group(1)})
    assert bad_user.status_code == 401
    bad_token = fresh.post("/access", data={"token": "exv1.EXH-\x00.00", "csrf": csrf.group(1)})
    assert bad_token.status_code == 401
