"""The handover journal settles notices a stopped sender left 'sending': one whose end-of-data
marker went out is never sent again, one whose marker never went out is sent once. Each
stop point is set up exactly (no timing luck), on SQLite and PostgreSQL, against the
loopback SMTP sink."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from test_cases_notify import SENDER, loaded

from exhunt.cases.handover import HandoverJournal, claim_token
from exhunt.cases.notify import Renderer, Sender, SmtpTarget, plan_round
from exhunt.cases.notify.recovery import recover
from exhunt.store.db import Store
from exhunt.store.models import Case, Message, MessageStatus, utcnow
from helpers.smtp_sink import RunningSink


def _claim(store: Store, recipient: str, by: str | None, minutes_ago: int = 0) -> str:
    """Leave one notice as a killed sender would: 'sending', claimed by `by`."""
    at = utcnow() - timedelta(minutes=minutes_ago)
    with store.transaction() as s:
        message = s.scalars(sa.select(Message).where(Message.recipient == recipient)).one()
        message.status, message.claimed_by, message.claimed_at = MessageStatus.SENDING, by, at
        return claim_token(message.id, at)


def _statuses(store: Store) -> dict[str, str]:
    with store.session() as s:
        return {r: st for r, st in s.execute(sa.select(Message.recipient, Message.status))}


def test_marker_written_counts_as_sent_marker_not_written_is_sent_once(
        db_url: str, tmp_path: Path) -> None:
    store = loaded(db_url)
    plan_round(store, Renderer(SENDER))
    journal = HandoverJournal(tmp_path / "outbox.journal")
    went_out = _claim(store, "it@cu-one.example", journal.identity)
    journal.write(journal.entry(went_out))  # marker written, token journalled, then killed
    _claim(store, "clerk@town.example", journal.identity)  # claimed, killed before the marker
    journal.close()
    with RunningSink() as sink:
        again = HandoverJournal(tmp_path / "outbox.journal")
        result = Sender(store, SmtpTarget.parse(sink.address), SENDER, journal=again).run()
        again.close()
        got = sink.sink.by_recipient()
        notices = len(sink.sink.received)
    assert result.recovered == 2
    assert "it@cu-one.example" not in got  # it went out before the stop: never twice
    assert got["clerk@town.example"] == 1  # it never went out: sent now, once
    assert all(n == 1 for n in got.values())
    assert set(_statuses(store).values()) == {MessageStatus.SENT}
    assert (tmp_path / "outbox.journal").read_bytes().count(b"\n") == notices
    with store.session() as s:  # the journal settled both: no doubt to flag
        assert not s.scalars(sa.select(Case.id).where(Case.flagged)).all()


def test_claims_of_a_live_sender_are_left_to_it(db_url: str, tmp_path: Path) -> None:
    store = loaded(db_url)
    plan_round(store, Renderer(SENDER))
    live = HandoverJournal(tmp_path / "outbox.journal")  # a sender still running here
    assert live.alone
    live.share()
    _claim(store, "it@cu-one.example", live.identity)
    _claim(store, "clerk@town.example", "other-machine:/var/lib/j", minutes_ago=5)
    _claim(store, "abuse@isp.example", "other-machine:/var/lib/j", minutes_ago=120)
    second = HandoverJournal(tmp_path / "outbox.journal")
    assert not second.alone
    assert recover(store, second) == 1
    statuses = _statuses(store)
    assert statuses["it@cu-one.example"] == MessageStatus.SENDING  # the live one's
    assert statuses["clerk@town.example"] == MessageStatus.SENDING  # another's, recent
    assert statuses["abuse@isp.example"] == MessageStatus.SENT  # another's, long dead
    second.close()
    live.close()


def test_without_a_journal_a_claim_counts_as_sent(db_url: str) -> None:
    store = loaded(db_url)
    plan_round(store, Renderer(SENDER))
    _claim(store, "it@cu-one.example", None)
    assert recover(store) == 1
    assert _statuses(store)["it@cu-one.example"] == MessageStatus.SENT
    with store.session() as s:  # nothing proves it went out: counted sent, and the doubt shown
        flagged = s.scalars(sa.select(Case.flag_reason).where(Case.flagged)).all()
    assert len(flagged) == 1 and "may not have gone out" in (flagged[0] or "")
