from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from exhunt.store.db import Store, upgrade
from exhunt.store.models import Base, Organisation, WebReport, WebSession, WebSetting, WebUser

EXPECTED = {"cases", "contacts", "events", "hosts", "ingested_files", "messages",
            "networks", "observations", "organisations", "rejects", "web_users",
            "web_sessions", "web_settings", "web_reports"}
WEB_TABLES = [m.__table__ for m in (WebUser, WebSession, WebSetting, WebReport)]


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


def _schema_diff(store: Store) -> list[object]:
    with store.engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(
            conn, opts={"include_object": _not_a_trigram_index}), Base.metadata))


def test_a_store_whose_portal_made_its_own_tables_keeps_them_and_their_rows(db_url: str) -> None:
    store = Store(db_url, migrate=False)
    try:
        upgrade(store.engine, "0005_i13_search")
        Base.metadata.create_all(store.engine, tables=WEB_TABLES)  # as older portals did
        with store.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO web_settings (key, value) VALUES ('k', 'kept')"))
        upgrade(store.engine)
        with store.session() as s:
            assert s.get(WebSetting, "k") is not None
        assert _schema_diff(store) == []
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
