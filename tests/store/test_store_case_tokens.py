"""Case tokens live in the store (migration 0004_i16_homes): a database whose tokens the web
layer kept in its own tables keeps every token it already sent in a notice."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from exhunt.cases.tokens import case_token, check_token, current_token, rotate_token
from exhunt.store.db import Store, upgrade
from exhunt.store.models import Case, Organisation

SECRET = "ab" * 32
DAY = timedelta(days=1)


def test_tokens_the_web_tables_held_still_open_their_cases(db_url: str) -> None:
    store = Store(db_url, migrate=False)
    try:
        upgrade(store.engine, "0003_i13_absence")
        with store.engine.begin() as conn:  # as the web layer's create_all made them
            conn.execute(sa.text("CREATE TABLE web_settings (key VARCHAR(64) PRIMARY KEY, "
                                 "value TEXT NOT NULL)"))
            conn.execute(sa.text("CREATE TABLE web_case_tokens (reference VARCHAR(32) PRIMARY "
                                 "KEY, generation INTEGER NOT NULL, revoked_at TIMESTAMP, "
                                 "expires_at TIMESTAMP)"))
            conn.execute(sa.text("INSERT INTO web_settings VALUES ('token_secret', :s)"),
                         {"s": SECRET})
            conn.execute(sa.text("INSERT INTO web_case_tokens VALUES ('EX-2', 3, NULL, NULL)"))
        upgrade(store.engine)
        with store.transaction() as session:
            for reference in ("EX-1", "EX-2"):
                org = Organisation(name=f"Town {reference}")
                session.add(org)
                session.flush()
                session.add(Case(organisation_id=org.id, reference=reference, status="open"))
        sent = {"EX-1": case_token(bytes.fromhex(SECRET), "EX-1"),
                "EX-2": case_token(bytes.fromhex(SECRET), "EX-2", 3)}
        with store.transaction() as session:
            for reference, token in sent.items():
                opened = check_token(session, token, DAY).case
                assert opened is not None and opened.reference == reference
                assert current_token(session, reference) == token
            rotated = rotate_token(session, "EX-2")
            assert check_token(session, sent["EX-2"], DAY).refusal == "replaced"
            assert check_token(session, rotated, DAY).case is not None
    finally:
        store.close()
