"""Database fixtures shared by tests/store and tests/cases: every test gets a fresh database,
once on SQLite and once on PostgreSQL. Under `make test` the PostgreSQL cluster comes from
tests/services/start-postgres.sh (EXHUNT_TEST_PG_URL); run by hand, a throwaway cluster is
started the same way for the session."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

SERVICES = Path(__file__).resolve().parent.parent / "services"
_cluster: dict[str, str] = {}


def _stop_own_cluster() -> None:
    root = _cluster.get("root")
    if root:
        ctl = _cluster["ctl"]
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, ctl, "-D", f"{root}/data", "-m", "immediate", "-w", "stop"],
                       check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        _cluster.clear()


def pg_server_url() -> str:
    url = os.environ.get("EXHUNT_TEST_PG_URL")
    if url:
        return url
    if "url" not in _cluster:
        script = (f"source {SERVICES}/start-postgres.sh >&2; "
                  'echo "${EXHUNT_TEST_PG_URL:-}|${EXHUNT_PG_ROOT:-}|${EXHUNT_PG_CTL:-}"')
        out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)
        url, root, ctl = ([*out.stdout.strip().split("|"), "", "", ""])[:3]
        if not url:
            pytest.fail(f"could not start a PostgreSQL cluster for the tests:\n{out.stderr}")
        _cluster.update(url=url, root=root, ctl=ctl)
        atexit.register(_stop_own_cluster)
    return _cluster["url"]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'exhunt.db'}"
        return
    server = make_url(pg_server_url())
    name = "t_" + uuid.uuid4().hex[:16]
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
