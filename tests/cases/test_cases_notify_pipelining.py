"""A relay that offers PIPELINING gets each notice's envelope in one write: still every
address once, a refused address stops no other, and a drop before end of data is retried."""

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


def test_pipelined_envelopes_reach_every_address_once(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = loaded(db_url)
    queued = plan_round(store, Renderer(SENDER)).queued
    pipelined: list[object] = []
    original = Sender._envelope_pipelined

    def spy(self: Sender, *args: object) -> None:
        pipelined.append(args)
        original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Sender, "_envelope_pipelined", spy)
    with RunningSink(pipelining=True) as sink:
        result = Sender(store, SmtpTarget.parse(sink.address), SENDER,
                        journal=HandoverJournal(tmp_path / "j")).run()
        assert result.sent == queued
        assert sink.sink.by_recipient() == EVERY_ADDRESS
        assert set(sink.sink.message_ids().values()) == {1}
        assert sink.sink.commands["EHLO"] == 1  # one connection for the round
    assert len(pipelined) == queued


def test_pipelined_refusals_stop_only_what_they_refuse(db_url: str, tmp_path: Path) -> None:
    store = loaded(db_url)
    plan_round(store, Renderer(SENDER))
    with RunningSink(pipelining=True) as sink:
        # the branch lists two addresses: one refused still reaches the other; a notice whose
        # only address is refused fails, and the next notice on the connection still goes
        sink.sink.refused_addresses = {"backup@cu-one.example", "clerk@town.example"}
        result = Sender(store, SmtpTarget.parse(sink.address), SENDER,
                        journal=HandoverJournal(tmp_path / "j")).run()
        assert (result.sent, result.failed) == (3, 1)
        expected = {a: 1 for a in EVERY_ADDRESS if a not in sink.sink.refused_addresses}
        assert sink.sink.by_recipient() == expected
    with store.session() as session:
        failed = session.scalars(sa.select(Message.recipient).where(
            Message.status == "failed")).all()
    assert failed == ["clerk@town.example"]


def test_pipelined_drop_before_end_of_data_is_retried_once(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = loaded(db_url)
    plan_round(store, Renderer(SENDER))
    original = send.smtp_payload
    broken: list[bytes] = []

    def drop_first(body: bytes) -> bytes:
        if not broken:
            broken.append(body)
            raise ConnectionResetError("relay went away")
        return original(body)

    monkeypatch.setattr(send, "smtp_payload", drop_first)
    with RunningSink(pipelining=True) as sink:
        target = SmtpTarget.parse(sink.address)
        result = Sender(store, target, SENDER, journal=HandoverJournal(tmp_path / "j"),
                        retry_base=timedelta(0)).run()
        assert (result.sent, result.retried) == (3, 1)
        assert Sender(store, target, SENDER, journal=HandoverJournal(tmp_path / "j")).run().sent == 1
        assert sink.sink.by_recipient() == EVERY_ADDRESS
