"""Every answer carries the security headers, whoever made it: a route, a refusal before any
route (411, 413, NUL), the router's own 404 and 405, a validation error, a server error."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from exhunt.web import queries
from exhunt.web.app import create_app
from helpers.webworld import World, login_coordinator

REQUIRED = {"x-content-type-options": "nosniff", "x-frame-options": "DENY",
            "referrer-policy": "no-referrer"}


def _every_status(world: World, monkeypatch: pytest.MonkeyPatch) -> dict[int, dict[str, str]]:
    app = create_app(world.url, max_upload=1000, login_limit=1)
    anonymous = TestClient(app, raise_server_exceptions=False)
    coordinator = TestClient(app, raise_server_exceptions=False)
    login_coordinator(coordinator)
    victim = {"Authorization": f"Bearer {world.token_a}"}
    got = {
        200: anonymous.get("/login"),
        303: anonymous.get("/", follow_redirects=False),
        400: anonymous.get("/api/hosts/%00"),
        401: anonymous.get("/api/summary"),
        403: anonymous.get("/api/summary", headers=victim),
        404: anonymous.get("/no/such/page"),
        405: anonymous.delete("/api/summary"),
        411: anonymous.post("/login", content=iter([b"username=x"])),  # chunked: no length
        413: anonymous.post("/login", content=b"x" * 200_000),
        422: anonymous.post("/api/reports", content=b"not json", headers=victim),
    }
    page = anonymous.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    for _ in range(2):
        last = anonymous.post("/login", data={"username": "coord", "password": "wrong one!",
                                              "csrf": csrf.group(1)})
    got[429] = last

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(queries, "summary", broken)
    got[500] = coordinator.get("/api/summary")
    return {status: dict(r.headers) | {"status": str(r.status_code)}
            for status, r in got.items()}


def test_every_status_carries_the_security_headers(world: World,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for status, headers in _every_status(world, monkeypatch).items():
        assert headers["status"] == str(status)
        for name, value in REQUIRED.items():
            assert headers.get(name) == value, (status, name)
        assert "default-src 'none'" in headers["content-security-policy"], status
        assert "frame-ancestors 'none'" in headers["content-security-policy"], status
