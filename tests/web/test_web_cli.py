"""`exhunt users add`, `exhunt users token` and `exhunt serve` registered through register()."""

from __future__ import annotations

from pathlib import Path

import typer
from exhunt_webworld import World
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from exhunt.web.app import create_app
from exhunt.web.cli import register


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
