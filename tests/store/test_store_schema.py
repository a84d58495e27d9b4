from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from exhunt.store.db import Store, upgrade
from exhunt.store.models import Base, Organisation

EXPECTED = {"cases", "contacts", "events", "hosts", "ingested_files", "messages",
            "networks", "observations", "organisations", "rejects"}


def _not_a_trigram_index(item: object, name: str | None, kind: str, *_: object) -> bool:
    """The case search's trigram indexes are PostgreSQL's alone (made by the absence migration
    when pg_trgm is there), so the models, shared by both databases, do not list them."""
    return not (kind == "index" and (name or "").endswith("_trgm"))


def test_migrations_build_every_table_and_match_the_models(db_url: str) -> None:
    store = Store(db_url)
    try:
        assert set(store.table_names()) >= EXPECTED
        assert "alembic_version" in store.table_names()
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(
                conn, opts={"include_object": _not_a_trigram_index}), Base.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
    finally:
        store.close()


def test_upgrade_twice_changes_nothing_and_keeps_data(db_url: str) -> None:
    store = Store(db_url)
    try:
        with store.transaction() as s:
            s.add(Organisation(name="Town of <b>Example</b>"))
        upgrade(store.engine)
        with store.session() as s:
            names = s.scalars(sa.select(Organisation.name)).all()
        assert names == ["Town of <b>Example</b>"]
    finally:
        store.close()


def test_env_var_and_bare_path_select_the_database(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("EXHUNT_DB", str(tmp_path / "chosen.db"))
    store = Store()
    store.close()
    assert (tmp_path / "chosen.db").exists()
