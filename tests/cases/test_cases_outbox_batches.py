"""The journalled outbox claims a batch of notices per commit: what that may and may not do.

A batch is claimed before any of it is sent, so a stop in the middle of a batch must leave
the unsent claims to be sent by the next run, each notice still exactly once; and a lost
connection before a notice's end of data must not count that notice as sent."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_cases_notify import EVERY_ADDRESS, SENDER, loaded

from exhunt.cases.handover import HandoverJournal
from exhunt.cases.notify import Renderer, Sender, SmtpTarget, plan_round, send
from exhunt.store.models import Message
from helpers.smtp_sink import RunningSink


def statuses(store: object) -> list[str]:
    with store.session() as s:  # type: ignore[attr-defined]
        return sorted(s.scalars(sa.select(Message.status)))


def test_stop_mid_batch_sends_the_rest_next_run_exactly_once(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = loaded(db_url)
    plan_round(store, Renderer(SENDER))
    original = Sender._deliver
    calls = []

    def stop_after_two(self: Sender, *args: object) -> str:
        if len(calls) == 2:
            raise KeyboardInterrupt  # the operator stops the run mid-batch
        calls.append(args)
        return original(self, *args)  # type: ignore[arg-type]

    with RunningSink() as sink:
        target = SmtpTarget.parse(sink.address)
        monkeypatch.setattr(Sender, "_deliver", stop_after_two)
        stopped = HandoverJournal(tmp_path / "j")
        with pytest.raises(KeyboardInterrupt):
            Sender(store, target, SENDER, journal=stopped).run()
        stopped.close()  # the stopped process is gone, and its hold on the journal with it
        # the two sent are recorded; the claim never tried is pending again; the one the stop
        # interrupted stays claimed, for the journal to settle
        assert statuses(store) == ["pending", "sending", "sent", "sent"]
        monkeypatch.setattr(Sender, "_deliver", original)
        again = Sender(store, target, SENDER, journal=HandoverJournal(tmp_path / "j")).run()
        assert (again.recovered, again.sent) == (1, 2)  # its token never reached the journal
        assert sink.sink.by_recipient() == EVERY_ADDRESS
        assert set(sink.sink.message_ids().values()) == {1}


def test_connection_lost_before_end_of_data_is_retried_not_counted_sent(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The notice was claimed with its batch, but its body never finished leaving: it is
    retried, not counted as sent (a claim alone proves nothing once claims come first)."""
    store = loaded(db_url)
    plan_round(store, Renderer(SENDER))
    original = send.smtp_payload
    broken: list[bytes] = []

    def drop_first(body: bytes) -> bytes:
        if not broken:
            broken.append(body)
            raise ConnectionResetError("relay went away")  # while the body was being written
        return original(body)

    monkeypatch.setattr(send, "smtp_payload", drop_first)
    with RunningSink() as sink:
        target = SmtpTarget.parse(sink.address)
        result = Sender(store, target, SENDER, journal=HandoverJournal(tmp_path / "j"),
                        retry_base=timedelta(0)).run()
        assert (result.sent, result.retried) == (3, 1)
        assert Sender(store, target, SENDER, journal=HandoverJournal(tmp_path / "j")).run().sent == 1
        assert sink.sink.by_recipient() == EVERY_ADDRESS
