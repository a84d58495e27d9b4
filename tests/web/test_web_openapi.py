"""schemathesis over the OpenAPI description, in-process against the ASGI app: whatever the
generated requests, as a coordinator or as a victim with a token, no server error."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from sqlalchemy.engine import make_url

from exhunt.store.db import Store
from exhunt.web.app import create_app
from exhunt.web.security import open_session
from helpers.dbfixtures import pg_server_url
from helpers.webworld import build_world


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api_setup(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    if request.param == "sqlite":
        url = f"sqlite:///{Path(tmp_path_factory.mktemp('api')) / 'api.db'}"
        drop = None
    else:  # a fresh database on the test cluster, as the store's fixtures make them
        server = make_url(pg_server_url())
        name = "t_" + uuid.uuid4().hex[:16]
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = server.set(database=name).render_as_string(hide_password=False)
        drop = (admin, name)
    world = build_world(url)
    app = create_app(world.url)
    store = Store(world.url)
    with store.transaction() as session:
        cookie, principal = open_session(session, "coordinator", "coord")
    store.close()
    yield {"app": app, "cookie": cookie, "csrf": principal.csrf, "token": world.token_a}
    app.state.web.store.close()
    if drop is not None:
        admin, name = drop
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _fuzz_every_operation(app: object, headers: dict[str, str],
                          coordinator: dict[str, str]) -> int:
    # the description itself is for coordinators only
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app, headers=coordinator)
    operations = [result.ok() for result in schema.get_all_operations()]

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def one(case: Case) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        one()
    return len(operations)


def test_no_server_error_as_coordinator(api_setup: dict[str, object]) -> None:
    headers = {"cookie": f"exhunt_session={api_setup['cookie']}",
               "x-csrf-token": str(api_setup["csrf"])}
    assert _fuzz_every_operation(api_setup["app"], headers, headers) == 7


def test_no_server_error_as_victim(api_setup: dict[str, object]) -> None:
    headers = {"authorization": f"Bearer {api_setup['token']}"}
    coordinator = {"cookie": f"exhunt_session={api_setup['cookie']}"}
    assert _fuzz_every_operation(api_setup["app"], headers, coordinator) == 7


def test_the_upload_schema_is_whole(tmp_path: Path) -> None:
    app = create_app(f"sqlite:///{tmp_path / 'd.db'}")
    body = app.openapi()["paths"]["/api/reports"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert "$ref" not in str(schema) and "$defs" not in str(schema)  # nothing points nowhere
    assert {"source", "host", "verdict", "findings"} <= set(schema["required"]) | set(
        schema["properties"])
    assert "name" in schema["properties"]["host"]["properties"]
