"""Fixtures for the dashboard tests (the world itself is in helpers.webworld)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from exhunt.web.app import create_app
from helpers.dbfixtures import db_url
from helpers.webworld import World, build_world, login_coordinator, open_as_victim

__all__ = ["db_url"]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return build_world(f"sqlite:///{tmp_path / 'web.db'}")


@pytest.fixture
def app(world: World) -> FastAPI:
    return create_app(world.url)


@pytest.fixture
def clients(app: FastAPI, world: World) -> Iterator[dict[str, TestClient]]:
    """One client per role, each with its own cookies: anonymous, victim A, victim B,
    coordinator."""
    made = {name: TestClient(app, base_url="http://127.0.0.1") for name in
            ("anonymous", "victim_a", "victim_b", "coordinator")}
    open_as_victim(made["victim_a"], world.token_a)
    open_as_victim(made["victim_b"], world.token_b)
    login_coordinator(made["coordinator"])
    yield made
    for client in made.values():
        client.close()
