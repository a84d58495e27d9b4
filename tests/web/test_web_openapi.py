"""schemathesis over the OpenAPI description, in-process against the ASGI app: whatever the
generated requests, as a coordinator or as a victim with a token, no server error."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import sqlalchemy as sa
from exhunt_dbfixtures import pg_server_url
from exhunt_webworld import build_world
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from sqlalchemy.engine import make_url

from exhunt.store.db import Store
from exhunt.web.app import create_app
from exhunt.web.security import open_session


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


def _fuzz_every_operation(app: object, headers: dict[str, str]) -> int:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
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
    assert _fuzz_every_operation(api_setup["app"], headers) == 7


def test_no_server_error_as_victim(api_setup: dict[str, object]) -> None:
    headers = {"authorization": f"Bearer {api_setup['token']}"}
    assert _fuzz_every_operation(api_setup["app"], headers) == 7
