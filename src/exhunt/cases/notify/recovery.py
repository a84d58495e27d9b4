"""Settling claims a stopped run left behind: which 'sending' notices went out and which are
sent again (the exactly-once protocol is explained in cases/notify/send.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from exhunt.cases.handover import HandoverJournal, claim_token
from exhunt.cases.notify.plan import flag_case
from exhunt.store.db import Store
from exhunt.store.models import Case, Event, Message, MessageStatus, utcnow

STALE_CLAIM = timedelta(hours=1)  # no live sender holds one notice this long


def recover(store: Store, journal: HandoverJournal | None = None) -> int:
    """Settle rows left 'sending' by a stopped run: with this sender's journal, a claim whose
    token is journalled went out (counted sent, unconfirmed) and one whose token is not never
    did (sent again); a claim by no journal, or by another sender long ago, counts as sent.
    A claim by another live sender is left alone. See the docstring of notify/send.py."""
    now = utcnow()
    handed = journal.handed_over() if journal is not None and journal.alone else set()
    settled = 0
    with store.transaction() as session:
        for message in session.scalars(select(Message).where(
                Message.status == MessageStatus.SENDING)):
            verdict = _claim_verdict(message, journal, handed, now)
            if verdict is None:
                continue
            settled += 1
            if verdict == MessageStatus.PENDING:
                message.status = MessageStatus.PENDING
                session.add(Event(case_id=message.case_id, kind="notice-resumed", at=now,
                                  detail=f"{message.message_id}: the run stopped before its "
                                  "end of data went out; sending it again"))
                continue
            message.status = MessageStatus.SENT
            message.sent_at = now
            message.error = "unconfirmed: the run stopped before the server's reply was recorded"
            session.add(Event(case_id=message.case_id, kind="notice-unconfirmed", at=now,
                              detail=f"{message.message_id} counted as sent after a restart"))
            if not _journalled(message, journal):
                # nothing here proves its end of data went out: counted as sent (no duplicate),
                # and the case flagged, so the doubt is seen rather than a notice silently lost
                case = session.get(Case, message.case_id)
                if case is not None:
                    flag_case(session, case, f"notice {message.message_id} may not have gone "
                              "out: its sender stopped mid-send and left no journal this run can "
                              "read; confirm with the recipient or send it again", now)
    if journal is not None and journal.alone:
        journal.forget_all()
        journal.share()
    return settled


def _journalled(message: Message, journal: HandoverJournal | None) -> bool:
    """Whether this sender's own journal settled the claim."""
    return journal is not None and message.claimed_by == journal.identity


def _claim_verdict(message: Message, journal: HandoverJournal | None, handed: set[str],
                   now: datetime) -> MessageStatus | None:
    """Sent, pending again, or None (another live sender's claim: not ours to settle)."""
    if journal is not None and message.claimed_by == journal.identity:
        if not journal.alone:
            return None  # a sender sharing this journal may be mid-notice
        token = claim_token(message.id, message.claimed_at) if message.claimed_at else ""
        return MessageStatus.SENT if token in handed else MessageStatus.PENDING
    if (message.claimed_by is None or message.claimed_at is None
            or message.claimed_at < now - STALE_CLAIM):
        return MessageStatus.SENT
    return None
