"""Notices: one message per organisation per round, rendered into the outbox and committed
before anything is sent; then the outbox is sent over SMTP, each message exactly once.

Exactly once, and the window that remains (why the order below):
  pending --(body written, commit 'sending')--> end-of-data marker written, token journalled
          --(reply 250)--> 'sent'
The SMTP server takes the message when it reads the end-of-data marker. Everything but that
marker is written first; then the claim ('sending', with who and when) is committed; then the
marker is written and, in the next system call, the claim's token is appended to the sender's
local handover journal (cases/handover.py). A kill before the marker leaves the row 'pending',
or 'sending' with no token in the journal: the server dropped the unfinished transaction and
the rerun sends the notice (once). A kill after the token leaves 'sending' with the token: the
rerun counts it as sent (unconfirmed) and never sends it again. Residual risk, stated
honestly: a kill in the microseconds between the marker's write and the token's write sends
that one notice twice; a power loss can lose journal lines and do the same; a server that
refuses the message at end-of-data while we are being killed is recorded as sent. Without a
journal (library use), a 'sending' row counts as sent, as before, and the gap is the claim's
commit instead.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from exhunt.cases.handover import HandoverJournal, claim_token
from exhunt.cases.notify.plan import recipients_of
from exhunt.cases.notify.recovery import recover
from exhunt.cases.notify.smtp import (
    END_OF_DATA,
    PermanentFailure,
    SmtpTarget,
    TakenElsewhere,
    TemporaryFailure,
    smtp_payload,
)
from exhunt.store.db import Store
from exhunt.store.models import Event, Message, MessageStatus, utcnow

CLAIM_BATCH = 200


@dataclass
class SendResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    recovered: int = 0
    skipped: int = 0


class Sender:
    def __init__(self, store: Store, target: SmtpTarget, sender: str, *,
                 rate: float | None = None, max_attempts: int = 5,
                 retry_base: timedelta = timedelta(seconds=60),
                 on_sent: Callable[[], None] | None = None,
                 journal: HandoverJournal | None = None) -> None:
        self.store = store
        self.journal = journal
        self.target = target
        self.sender = sender
        self.min_gap = 1.0 / rate if rate else 0.0
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.on_sent = on_sent
        self._smtp: smtplib.SMTP | None = None
        self._last_send = 0.0
        # accepted by the server (250) but not yet recorded 'sent': recorded in the same commit
        # as the next claim, which halves the commits per message. Safe: a row left 'sending'
        # already counts as sent after a restart.
        self._confirmed: list[int] = []
        self._held: set[int] = set()  # claimed in a batch, not yet sent

    def run(self) -> SendResult:
        result = SendResult(recovered=recover(self.store, self.journal))
        try:
            for batch in self._due():
                for outcome in self._send_batch(batch):
                    setattr(result, outcome, getattr(result, outcome) + 1)
        finally:
            self._close()
            with self.store.transaction() as session:
                self._record_confirmed(session)
                self._release_held(session)
        return result

    def _due(self) -> Iterator[list[int]]:
        now = utcnow()
        with self.store.session() as session:
            ids = list(session.scalars(
                select(Message.id).where(
                    Message.status == MessageStatus.PENDING,
                    (Message.next_attempt_at.is_(None)) | (Message.next_attempt_at <= now))
                .order_by(Message.id)))
        for start in range(0, len(ids), CLAIM_BATCH):
            yield ids[start:start + CLAIM_BATCH]

    def _send_batch(self, batch: list[int]) -> Iterator[str]:
        """With a journal, the batch is claimed in one commit before any of it is sent: a
        claim whose token never reaches the journal is sent again after a stop, so claiming
        early loses nothing, and one commit per batch instead of one per message lets the
        outbox keep pace with a bare SMTP loop. Without a journal a claim counts as sent, so
        each message is claimed alone, after its body is written."""
        if self.journal is None:
            for message_pk in batch:
                self._pace()
                yield self._send_one(message_pk)
            return
        claimed = self._claim_batch(batch)
        yield from ["skipped"] * (len(batch) - len(claimed))
        for message_pk, recipient, body, token in claimed:
            self._pace()
            self._held.discard(message_pk)
            yield self._deliver(message_pk, recipient, body, token)

    def _pace(self) -> None:
        if self.min_gap:
            wait = self._last_send + self.min_gap - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_send = time.monotonic()

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            try:
                smtp = smtplib.SMTP(self.target.host, self.target.port, timeout=60)
                if smtp.sock is not None:
                    # no Nagle: small SMTP writes must not wait for a delayed ACK (~40 ms each)
                    smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                smtp.ehlo_or_helo_if_needed()
            except (OSError, smtplib.SMTPException) as exc:
                raise TemporaryFailure(f"cannot reach {self.target.host}:{self.target.port}: "
                                       f"{exc}") from exc
            self._smtp = smtp
        return self._smtp

    def _close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._smtp.quit()
            self._smtp = None

    def _send_one(self, message_pk: int) -> str:
        with self.store.session() as session:
            message = session.get(Message, message_pk)
            if message is None or message.status != MessageStatus.PENDING:
                return "skipped"  # another run took it meanwhile
            recipient, body = message.recipient, message.body
        return self._deliver(message_pk, recipient, body, None)

    def _deliver(self, message_pk: int, recipient: str, body: bytes, token: str | None) -> str:
        try:
            self._transfer(message_pk, recipient, body, token)
        except TakenElsewhere:
            return "skipped"
        except TemporaryFailure as exc:
            self._close()
            return self._retry_later(message_pk, str(exc))
        except PermanentFailure as exc:
            self._mark(message_pk, MessageStatus.FAILED, str(exc))
            return "failed"
        if self.on_sent:
            self.on_sent()
        return "sent"

    def _transfer(self, message_pk: int, recipient: str, body: bytes,
                  token: str | None) -> None:
        smtp = self._connection()
        handing = False  # set once the end-of-data marker may have left
        try:
            if smtp.has_extn("pipelining"):
                self._envelope_pipelined(smtp, recipients_of(recipient))
            else:
                self._envelope(smtp, recipients_of(recipient))
            payload = smtp_payload(body)
            smtp.send(payload[:-len(END_OF_DATA)])  # all but the marker the server acts on
            if token is None:
                token = self._claim(message_pk)
            if token is None:
                # a concurrent run claimed it: drop this transaction without end-of-data
                # (QUIT now would be read as message text), so the server discards it
                self._abandon_connection()
                raise TakenElsewhere(message_pk)
            handing = True
            self._hand_over(smtp, token)
            code, reply = smtp.getreply()
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            # a lost connection is dropped, not QUIT: mid-DATA a QUIT is read as message text
            # and the reply never comes
            self._abandon_connection()
            if handing:
                # the bytes left us; whether the server kept them is unknown: never resend
                self._mark(message_pk, MessageStatus.SENT, f"unconfirmed: {exc}")
                return
            raise TemporaryFailure(f"connection lost: {exc}") from exc
        if code == 250:
            self._confirmed.append(message_pk)
            return
        self._unclaim(message_pk)
        self._check(code, reply, "end of data")

    def _envelope(self, smtp: smtplib.SMTP, recipients: list[str]) -> None:
        """MAIL FROM, each RCPT TO and DATA, each answered before the next is sent."""
        code, reply = smtp.mail(self.sender)
        self._check(code, reply, "MAIL FROM")
        replies = [smtp.rcpt(address) for address in recipients]
        self._check_recipients(replies)
        code, reply = smtp.docmd("DATA")
        if code != 354:
            self._check(code, reply, "DATA")

    def _envelope_pipelined(self, smtp: smtplib.SMTP, recipients: list[str]) -> None:
        """The same commands in one write, their replies read after (RFC 2920 PIPELINING,
        offered by the server's EHLO): two round trips a notice instead of four."""
        commands = [f"MAIL FROM:{smtplib.quoteaddr(self.sender)}",
                    *(f"RCPT TO:{smtplib.quoteaddr(a)}" for a in recipients), "DATA"]
        smtp.send("".join(f"{c}\r\n" for c in commands))
        replies = [smtp.getreply() for _ in commands]  # all of them: the stream stays in step
        (mail_code, mail_reply), *rcpts, (data_code, data_reply) = replies
        if data_code == 354 and not (200 <= mail_code < 400 and any(
                200 <= code < 400 for code, _ in rcpts)):
            # a server that opened DATA for an envelope it refused gets an empty message
            smtp.send(END_OF_DATA)
            smtp.getreply()
        self._check(mail_code, mail_reply, "MAIL FROM")
        self._check_recipients(rcpts)
        if data_code != 354:
            self._check(data_code, data_reply, "DATA")

    def _check_recipients(self, replies: list[tuple[int, bytes]]) -> None:
        """One refused address stops no other; all refused stops the notice."""
        refused = [r for r in replies if not 200 <= r[0] < 400]
        if refused and len(refused) == len(replies):
            self._check(*refused[-1], "RCPT TO")

    def _check(self, code: int, reply: bytes, step: str) -> None:
        if 200 <= code < 400:
            return
        text = f"{step} refused: {code} {reply.decode('utf-8', 'replace')[:200]}"
        if self._smtp is not None:
            try:
                self._smtp.rset()
            except (OSError, smtplib.SMTPException):
                self._close()
        if 400 <= code < 500:
            raise TemporaryFailure(text)
        raise PermanentFailure(text)

    def _record_confirmed(self, session: Session) -> None:
        """The accepted messages 'sent', with their case-file events: two statements for the
        whole batch (no ORM object per message: it cost as much as the SMTP exchange)."""
        if not self._confirmed:
            return
        now = utcnow()
        rows = session.execute(update(Message).where(Message.id.in_(self._confirmed))
                               .values(status=MessageStatus.SENT, sent_at=now, error=None)
                               .returning(Message.id, Message.case_id, Message.message_id,
                                          Message.recipient)).all()
        if rows:
            session.execute(insert(Event), [
                {"case_id": case_id, "kind": "notice-sent", "at": now,
                 "detail": f"{message_id} to {recipient}"}
                for _, case_id, message_id, recipient in sorted(rows)])
        self._confirmed.clear()

    def _claim(self, message_pk: int) -> str | None:
        """Commit 'sending' (who, when); the claim's token, or None if another run has it."""
        now = utcnow()
        with self.store.transaction() as session:
            self._record_confirmed(session)
            claimed = session.execute(update(Message).where(
                Message.id == message_pk, Message.status == MessageStatus.PENDING)
                .values(status=MessageStatus.SENDING, claimed_at=now,
                        claimed_by=self.journal.identity if self.journal else None))
            taken = bool(claimed.rowcount == 1)  # type: ignore[attr-defined]
        return claim_token(message_pk, now) if taken else None

    def _claim_batch(self, batch: list[int]) -> list[tuple[int, str, bytes, str]]:
        """Claim what is still pending of `batch` in one commit (recording the messages the
        server accepted since the last commit in it too): (id, recipient, body, token)."""
        now = utcnow()
        identity = self.journal.identity if self.journal else None
        with self.store.transaction() as session:
            self._record_confirmed(session)
            taken = list(session.execute(update(Message).where(
                Message.id.in_(batch), Message.status == MessageStatus.PENDING)
                .values(status=MessageStatus.SENDING, claimed_at=now, claimed_by=identity)
                .returning(Message.id, Message.recipient, Message.body)))
        claimed = sorted((pk, recipient, body, claim_token(pk, now))
                         for pk, recipient, body in taken)
        self._held.update(pk for pk, *_ in claimed)
        return claimed

    def _release_held(self, session: Session) -> None:
        """Claims of a batch this run stopped before sending go back to pending."""
        if self._held:
            session.execute(update(Message).where(
                Message.id.in_(self._held), Message.status == MessageStatus.SENDING)
                .values(status=MessageStatus.PENDING))
            self._held.clear()

    def _hand_over(self, smtp: smtplib.SMTP, token: str) -> None:
        """The end-of-data marker, then at once the claim's token in the journal: nothing
        but these two system calls stands between them (see the module docstring)."""
        sock = smtp.sock
        if sock is None:
            raise smtplib.SMTPServerDisconnected("connection closed before end of data")
        journal = self.journal
        entry = journal.entry(token) if journal is not None else b""
        sock.sendall(END_OF_DATA)
        if journal is not None:
            journal.write(entry)

    def _abandon_connection(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    def _unclaim(self, message_pk: int) -> None:
        with self.store.transaction() as session:
            session.execute(update(Message).where(Message.id == message_pk)
                            .values(status=MessageStatus.PENDING))

    def _mark(self, message_pk: int, status: MessageStatus, error: str | None) -> None:
        now = utcnow()
        with self.store.transaction() as session:
            message = session.get(Message, message_pk)
            assert message is not None
            message.status = status
            message.error = error
            if status == MessageStatus.SENT:
                message.sent_at = now
            session.add(Event(case_id=message.case_id, kind=f"notice-{status}", at=now,
                              detail=f"{message.message_id} to {message.recipient}"
                                     + (f": {error}" if error else "")))

    def _retry_later(self, message_pk: int, error: str) -> str:
        now = utcnow()
        with self.store.transaction() as session:
            message = session.get(Message, message_pk)
            assert message is not None
            message.attempts += 1
            message.status = MessageStatus.PENDING
            message.error = error
            if message.attempts >= self.max_attempts:
                message.status = MessageStatus.FAILED
                session.add(Event(case_id=message.case_id, kind="notice-failed", at=now,
                                  detail=f"{message.message_id}: gave up: {error}"))
                return "failed"
            # exponential backoff: base, 2x base, 4x base ...
            message.next_attempt_at = now + self.retry_base * (2 ** (message.attempts - 1))
        return "retried"
