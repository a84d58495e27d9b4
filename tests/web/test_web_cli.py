"""`exhunt users add`, `exhunt users token` and `exhunt serve` registered through register()."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from exhunt.cli.web import register
from exhunt.web.app import create_app
from helpers.webworld import World, login_coordinator


def _app() -> typer.Typer:
    app = typer.Typer()
    lab = typer.Typer()
    app.add_typer(lab, name="lab")
    register(app, lab)
    return app


def test_users_add_then_login_and_token_opens_the_case(world: World) -> None:
    runner = CliRunner()
    added = runner.invoke(_app(), ["users", "add", "alice", "--db", world.url,
                                   "--password-env", "PW"], env={"PW": "a long passphrase!"})
    assert added.exit_code == 0, added.output
    short = runner.invoke(_app(), ["users", "add", "bob", "--db", world.url,
                                   "--password-env", "PW"], env={"PW": "short"})
    assert short.exit_code == 2 and "at least 12" in short.output
    token = runner.invoke(_app(), ["users", "token", world.case_b, "--db", world.url])
    assert token.exit_code == 0 and token.output.strip() == world.token_b
    unknown = runner.invoke(_app(), ["users", "token", "EXH-NOPE", "--db", world.url])
    assert unknown.exit_code == 2
    client = TestClient(create_app(world.url))
    page = client.get("/login")
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    response = client.post("/login", data={"username": "alice", "password": "a long passphrase!",
                                           "csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303


def test_serve_refuses_a_broken_fleet_summary(world: World, tmp_path: Path) -> None:
    bad = tmp_path / "fleet.json"
    bad.write_bytes(b"\xff\xfe not json")
    result = CliRunner().invoke(_app(), ["serve", "--db", world.url, "--fleet-summary", str(bad)])
    assert result.exit_code == 2
    assert "not a readable fleet summary" in " ".join(result.output.split())


def _serve(monkeypatch: pytest.MonkeyPatch, world: World, *args: str
           ) -> tuple[int, str, dict[str, Any]]:
    import uvicorn

    ran: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: ran.update(app=app, **kw))
    result = CliRunner().invoke(_app(), ["serve", "--db", world.url, *args])
    return result.exit_code, " ".join(result.output.split()), ran


def test_serve_beyond_loopback_without_tls_refuses_to_start(monkeypatch: pytest.MonkeyPatch,
                                                            world: World) -> None:
    code, output, ran = _serve(monkeypatch, world, "--host", "0.0.0.0")
    assert code == 2 and "without TLS" in output and not ran
    code, output, ran = _serve(monkeypatch, world, "--host", "0.0.0.0", "--trusted-proxy",
                               "not-a-network")
    assert code == 2 and "--trusted-proxy" in output and not ran


@pytest.mark.parametrize(("args", "secure"), [
    ((), False),  # loopback
    (("--host", "0.0.0.0", "--insecure-http"), False),
    (("--host", "0.0.0.0", "--trusted-proxy", "10.0.0.0/24"), True),
    (("--trusted-proxy", "127.0.0.1/32"), True),  # a proxy on the same machine
])
def test_serve_marks_cookies_secure_unless_loopback_or_told(
        monkeypatch: pytest.MonkeyPatch, world: World, args: tuple[str, ...],
        secure: bool) -> None:
    code, output, ran = _serve(monkeypatch, world, *args)
    assert code == 0, output
    client = TestClient(ran["app"], base_url="https://127.0.0.1")
    response = client.get("/login")
    assert ("secure" in response.headers["set-cookie"].lower()) is secure
    assert ("strict-transport-security" in response.headers) is secure


@pytest.mark.parametrize("change", [["passwd", "coord", "--password-env", "PW"],
                                    ["remove", "coord"]])
def test_password_change_or_removal_ends_the_users_sessions(world: World,
                                                            change: list[str]) -> None:
    app = create_app(world.url)
    client = TestClient(app)
    login_coordinator(client)
    cookie = client.cookies.get("exhunt_session")
    assert client.get("/api/summary").status_code == 200
    listed = CliRunner().invoke(_app(), ["users", "list", "--db", world.url])
    assert listed.exit_code == 0 and re.search(r"coord\s.*\s1\s", listed.output)
    result = CliRunner().invoke(_app(), ["users", *change, "--db", world.url],
                                env={"PW": "a brand new passphrase"})
    assert result.exit_code == 0, result.output
    replay = TestClient(app, cookies={"exhunt_session": cookie or ""})
    assert replay.get("/api/summary").status_code == 401  # the same cookie, refused
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_users_commands_name_unknown_users(world: World) -> None:
    for args in (["passwd", "ghost", "--password-env", "PW"], ["remove", "ghost"]):
        result = CliRunner().invoke(_app(), ["users", *args, "--db", world.url],
                                    env={"PW": "a brand new passphrase"})
        assert result.exit_code == 2 and "no coordinator 'ghost'" in result.output
    listed = CliRunner().invoke(_app(), ["users", "list", "--db", world.url])
    assert "1 coordinators" in listed.output
