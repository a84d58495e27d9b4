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
import csv
import email.policy
import io
import mailbox
import re
import smtplib
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesParser
from email.utils import formatdate
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session, selectinload

from exhunt.cases.handover import HandoverJournal, claim_token
from exhunt.cases.tracking import RESOLVED_STATES
from exhunt.errors import UsageError
from exhunt.intel.builds import explain
from exhunt.intel.guidance import notice_guidance
from exhunt.store.db import Store
from exhunt.store.models import (
    COMPROMISED,
    Case,
    Contact,
    Event,
    Host,
    HostState,
    Message,
    MessageStatus,
    Observation,
    Organisation,
    run_end,
    utcnow,
)

EVIDENCE_PER_HOST = 5
PLAN_BATCH = 500
CLAIM_BATCH = 200
STATE_LABELS = {
    HostState.REENTERED: "back door used (re-entered)",
    HostState.BACKDOOR: "back door seen",
    HostState.EXPLOITED: "exploited",
    HostState.VULNERABLE: "vulnerable build",
    HostState.EXPOSED: "exposed",
    HostState.PATCHED: "patched",
    HostState.CLEAN: "clean",
}
CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
DEFAULT_VERIFY = (
    "This notice comes from {sender}. To check that it is genuine, do not use links or "
    "numbers in this message: look up our contact details yourself and quote {reference}."
)


def parse_duration(text: str) -> timedelta:
    """'7d', '12h', '30m', '45s' (or a bare number of seconds)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise UsageError(f"not a duration: {text!r} (use e.g. 7d, 12h, 30m)")
    value = float(match.group(1))
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return timedelta(seconds=value * unit)


def header_safe(text: str, limit: int = 200) -> str:
    """Text that cannot break out of a header: controls (CR, LF, NUL ...) become spaces."""
    return CONTROL.sub(" ", text).strip()[:limit]


def csv_safe(value: object) -> str:
    """A spreadsheet cell that cannot run as a formula when the recipient opens the CSV."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@dataclass
class NoticeHost:
    ip: str
    hostname: str | None
    state: HostState
    label: str
    first_seen: str
    last_seen: str
    evidence: list[str] = field(default_factory=list)
    software: str = ""  # 'Exchange Server 2019 CU7 (build 15.2.721)', from the build table
    install: list[str] = field(default_factory=list)  # what to install, from the build table
    cu_only: bool = False  # only the CU is visible from outside, not the installed update


@lru_cache(maxsize=4096)  # a round of 100,000 notices names a few hundred builds
def software_of(build: str | None) -> tuple[str, tuple[str, ...], bool]:
    """(product, CU and update in words; what to install; only the CU visible) for the
    build last seen on a host, from the build table ('' and () when none is known)."""
    if not build:
        return "", (), False
    try:
        info = explain(build)
    except ValueError:
        return f"build {build} (not an Exchange build number)", (), False
    if info.product is None:
        return f"build {info.build} (not in the build table)", (), False
    named = " ".join(p for p in (info.product, info.cu, info.update) if p)
    return f"{named} (build {info.build})", tuple(info.install), not info.exact


@dataclass(frozen=True, slots=True)
class Guidance:
    title: str
    steps: list[str]


def _guidance_data() -> dict[str, Any]:
    return notice_guidance()  # data shared with the hunt report (intel/data/guidance.toml)


@dataclass(frozen=True)
class Portal:
    """Where a victim uploads their hunt report, and the token that opens their case only."""

    url: str
    token_for: Callable[[str], str]


class Renderer:
    def __init__(self, sender: str, verify: str | None = None,
                 portal: Portal | None = None) -> None:
        self.sender = sender
        self.verify = verify or DEFAULT_VERIFY
        self.portal = portal
        self.html = Environment(
            loader=PackageLoader("exhunt.cases", "templates"),
            autoescape=select_autoescape(["html", "html.j2"], default_for_string=True),
            undefined=StrictUndefined,
        )
        self.text = Environment(
            loader=PackageLoader("exhunt.cases", "templates"),
            autoescape=False,  # plain text: nothing is interpreted as markup
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        self.guidance = _guidance_data()
        self.domain = sender.rpartition("@")[2] or "exhunt.invalid"

    def guidance_for(self, states: set[HostState]) -> list[Guidance]:
        chosen: list[Guidance] = []
        if states & COMPROMISED:
            chosen.append(Guidance(**self.guidance["compromised"]))
        if HostState.VULNERABLE in states:
            chosen.append(Guidance(**self.guidance["vulnerable"]))
        if HostState.EXPOSED in states:
            chosen.append(Guidance(**self.guidance["exposed"]))
        return chosen

    def render(
        self, *, reference: str, organisation: str, recipient: str, hosts: list[NoticeHost],
        round_number: int,
    ) -> tuple[str, str, bytes]:
        """(Message-ID, subject, full message bytes)."""
        context = {
            "reference": reference, "organisation": organisation, "hosts": hosts,
            "guidance": self.guidance_for({h.state for h in hosts}),
            "verify": self.verify.format(sender=self.sender, reference=reference),
            "portal": None if self.portal is None else {
                "url": self.portal.url.rstrip("/") + "/access",
                "token": self.portal.token_for(reference)},
        }
        message_id = f"<{reference}.{round_number}.{uuid.uuid4().hex[:16]}@{self.domain}>"
        subject = header_safe(
            f"[{reference}] Exchange servers of {organisation} need action", 250)
        # email.mime with the compat32 policy: ten times faster than EmailMessage's header
        # registry at 100,000 notices; every header value is ours or passed header_safe().
        mail = MIMEMultipart("mixed")
        mail["From"] = header_safe(self.sender)
        mail["To"] = header_safe(recipient, 2000)
        mail["Subject"] = Header(subject, "utf-8").encode()
        mail["Message-ID"] = message_id
        mail["Date"] = formatdate(usegmt=True)
        mail["X-Exhunt-Case"] = reference
        body = MIMEMultipart("alternative")
        body.attach(MIMEText(self.text.get_template("notice.txt.j2").render(context), "plain",
                             "utf-8"))
        body.attach(MIMEText(self.html.get_template("notice.html.j2").render(context), "html",
                             "utf-8"))
        mail.attach(body)
        attachment = MIMEText(hosts_csv(hosts), "csv", "utf-8")
        attachment.add_header("Content-Disposition", "attachment",
                              filename=f"{reference}-hosts.csv")
        mail.attach(attachment)
        return message_id, subject, mail.as_bytes()


def hosts_csv(hosts: list[NoticeHost]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["ip", "hostname", "state", "first_seen", "last_seen", "evidence",
                     "software", "install"])
    for h in hosts:
        writer.writerow([csv_safe(v) for v in (h.ip, h.hostname, h.label, h.first_seen,
                                                h.last_seen, " | ".join(h.evidence), h.software,
                                                " | ".join(h.install))])
    return out.getvalue()


# --- planning: render and commit ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanResult:
    queued: int
    skipped_no_contact: int


def _active_contacts(contacts: list[Contact]) -> list[Contact]:
    """Every address listed for the organisation that has not bounced: all are written to."""
    return [c for c in sorted(contacts, key=lambda c: c.position) if c.bounced_at is None]


RECIPIENT_SEPARATOR = ", "


def recipients_of(text: str) -> list[str]:
    """The addresses of a notice's recipient line (contacts hold no comma: contacts.EMAIL)."""
    return [r.strip() for r in text.split(",") if r.strip()]


def _needs_notice(case: Case, hosts: list[Host], latest: Message | None, now: datetime,
                  renotify_after: timedelta | None) -> bool:
    open_hosts = [h for h in hosts if h.state and HostState(h.state) not in RESOLVED_STATES]
    if not open_hosts:
        return False
    if latest is None:
        return True
    if latest.status in (MessageStatus.PENDING, MessageStatus.SENDING):
        return False  # still in the outbox
    if latest.status == MessageStatus.BOUNCED:
        return True  # try the next contact
    if any(h.last_worse_at and h.last_worse_at > latest.created_at for h in open_hosts):
        return True  # new evidence since the last notice
    return renotify_after is not None and now - latest.created_at >= renotify_after


def plan_round(
    store: Store, renderer: Renderer, *, renotify_after: timedelta | None = None,
    now: datetime | None = None,
) -> PlanResult:
    """Render every notice that is due into the outbox; committed in batches so that a kill
    leaves either whole committed messages or nothing for that batch."""
    now = now or utcnow()
    with store.session() as session:
        case_ids = list(session.scalars(select(Case.id).where(Case.status == "open")
                                        .order_by(Case.id)))
    queued = skipped = 0
    for start in range(0, len(case_ids), PLAN_BATCH):
        with store.transaction() as session:
            q, s = _plan_batch(session, renderer, case_ids[start:start + PLAN_BATCH],
                               renotify_after, now)
            queued += q
            skipped += s
    return PlanResult(queued, skipped)


def _plan_batch(session: Session, renderer: Renderer, case_ids: list[int],
                renotify_after: timedelta | None, now: datetime) -> tuple[int, int]:
    cases = list(session.scalars(
        select(Case).where(Case.id.in_(case_ids))
        .options(selectinload(Case.organisation).selectinload(Organisation.contacts))))
    org_ids = [c.organisation_id for c in cases]
    hosts_by_org: dict[int, list[Host]] = defaultdict(list)
    for host in session.scalars(select(Host).where(Host.organisation_id.in_(org_ids))
                                .order_by(Host.ip)):
        assert host.organisation_id is not None
        hosts_by_org[host.organisation_id].append(host)
    latest = _latest_messages(session, case_ids)
    queued = skipped = 0
    due: list[tuple[Case, list[Host], str]] = []
    for case in cases:
        hosts = hosts_by_org[case.organisation_id]
        if not _needs_notice(case, hosts, latest.get(case.id), now, renotify_after):
            continue
        contacts = _active_contacts(case.organisation.contacts)
        if not contacts:
            skipped += 1
            _flag(session, case, "no contact left to try (all bounced or none listed)", now)
            continue
        due.append((case, hosts, RECIPIENT_SEPARATOR.join(c.email for c in contacts)))
    evidence, builds = _evidence(session, [h.id for _, hosts, _ in due for h in hosts])
    for case, hosts, recipients in due:
        notice_hosts = [_notice_host(h, evidence.get(h.id, []), builds.get(h.id)) for h in hosts
                        if h.state and HostState(h.state) not in RESOLVED_STATES]
        previous = latest.get(case.id)
        round_number = (previous.round + 1) if previous else 1
        message_id, subject, body = renderer.render(
            reference=case.reference, organisation=case.organisation.name,
            recipient=recipients, hosts=notice_hosts, round_number=round_number)
        session.add(Message(case_id=case.id, round=round_number, message_id=message_id,
                            recipient=recipients, subject=subject, body=body,
                            hosts=len(notice_hosts), status=MessageStatus.PENDING,
                            created_at=now))
        case.last_notified_at = now
        session.add(Event(case_id=case.id, kind="notice-queued", at=now,
                          detail=f"round {round_number} to {recipients}, "
                                 f"{len(notice_hosts)} host(s)"))
        queued += 1
    return queued, skipped


def _flag(session: Session, case: Case, reason: str, now: datetime) -> None:
    if case.flagged and case.flag_reason == reason:
        return
    case.flagged = True
    case.flag_reason = reason
    session.add(Event(case_id=case.id, kind="case-flagged", at=now, detail=reason))


def _latest_messages(session: Session, case_ids: list[int]) -> dict[int, Message]:
    newest = (select(Message.case_id, func.max(Message.round).label("r"))
              .where(Message.case_id.in_(case_ids)).group_by(Message.case_id).subquery())
    rows = session.scalars(select(Message).join(
        newest, (Message.case_id == newest.c.case_id) & (Message.round == newest.c.r)))
    return {m.case_id: m for m in rows}


def _evidence(session: Session, host_ids: list[int]
              ) -> tuple[dict[int, list[str]], dict[int, str]]:
    """Each host's latest evidence runs, newest first, each with when it was seen; and the
    build its newest evidence naming one gives."""
    found: dict[int, list[str]] = defaultdict(list)
    builds: dict[int, str] = {}
    for start in range(0, len(host_ids), 1000):
        part = host_ids[start:start + 1000]
        rows = session.execute(
            select(Observation.host_id, Observation.seen_at, Observation.last_seen_at,
                   Host.last_seen, Observation.evidence, Observation.build)
            .join(Host, Host.id == Observation.host_id)
            .where(Observation.host_id.in_(part))
            .order_by(Observation.host_id, Observation.seen_at.desc(), Observation.id.desc()))
        for host_id, seen_at, last_seen_at, host_last_seen, text, build in rows:
            if build and host_id not in builds:
                builds[host_id] = build
            if len(found[host_id]) < EVIDENCE_PER_HOST:
                end = run_end(seen_at, last_seen_at, host_last_seen)
                found[host_id].append(f"{seen_span(seen_at, end)}: {text}")
    return found, builds


def seen_span(first: datetime, last: datetime) -> str:
    """'2021-03-02 06:10 UTC', or the first and last sighting of a run."""
    if last <= first:
        return f"{first:%Y-%m-%d %H:%M} UTC"
    return f"{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"


def _notice_host(host: Host, evidence: list[str], build: str | None = None) -> NoticeHost:
    state = HostState(host.state or HostState.EXPOSED)
    software, install, cu_only = software_of(build)
    return NoticeHost(
        ip=host.ip, hostname=host.hostname, state=state, label=STATE_LABELS[state],
        first_seen=f"{host.first_seen:%Y-%m-%d}" if host.first_seen else "",
        last_seen=f"{host.last_seen:%Y-%m-%d}" if host.last_seen else "",
        evidence=evidence, software=software, install=list(install), cu_only=cu_only)


# --- sending: the outbox ------------------------------------------------------------------


@dataclass
class SendResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    recovered: int = 0
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> SmtpTarget:
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise UsageError(f"--smtp wants HOST:PORT, got {text!r}")
        return cls(host.strip("[]"), int(port))


END_OF_DATA = b".\r\n"  # after the CRLF that ends the last line (RFC 5321 4.1.1.4)


def smtp_payload(body: bytes) -> bytes:
    """CRLF line ends, leading dots doubled (RFC 5321 4.5.2), then the end-of-data marker."""
    data = re.sub(rb"\r\n|\n|\r", b"\r\n", body)
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + END_OF_DATA


class TemporaryFailure(Exception):
    pass


class TakenElsewhere(Exception):
    pass


class PermanentFailure(Exception):
    pass


STALE_CLAIM = timedelta(hours=1)  # no live sender holds one notice this long


def recover(store: Store, journal: HandoverJournal | None = None) -> int:
    """Settle rows left 'sending' by a stopped run: with this sender's journal, a claim whose
    token is journalled went out (counted sent, unconfirmed) and one whose token is not never
    did (sent again); a claim by no journal, or by another sender long ago, counts as sent.
    A claim by another live sender is left alone. See the module docstring."""
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
                    _flag(session, case, f"notice {message.message_id} may not have gone out: "
                          "its sender stopped mid-send and left no journal this run can read; "
                          "confirm with the recipient or send it again", now)
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


# --- bounces ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BounceResult:
    files: int
    matched: int
    unmatched: int


MESSAGE_ID = re.compile(rb"<EXH-[0-9A-F]{10}\.\d+\.[0-9a-f]{16}@[^>\s]{1,255}>")


def _referenced_ids(raw: bytes) -> set[str]:
    """Our Message-IDs named anywhere in a delivery report (headers of the returned message,
    In-Reply-To, References); the report format varies too much to trust one place."""
    found = {m.decode("ascii", "replace") for m in MESSAGE_ID.findall(raw)}
    parsed = BytesParser(policy=email.policy.default).parsebytes(raw)
    for header in ("In-Reply-To", "References"):
        value = parsed.get(header)
        if value:
            found |= {m.decode("ascii", "replace") for m in MESSAGE_ID.findall(
                str(value).encode("ascii", "replace"))}
    return found


MAX_REPORT_BYTES = 10 << 20  # a delivery report quotes headers, not whole mailboxes


def process_bounces(store: Store, source: Path) -> BounceResult:
    """Read delivery status notifications from a folder (one message per file), a Maildir or
    an mbox file: the matching notice is marked bounced, its contact is not used again, the
    case is flagged, and the next planning round sends to the organisation's next contact."""
    files = matched = unmatched = 0
    now = utcnow()
    for name, raw in _reports(source):
        files += 1
        ids = _referenced_ids(raw[:MAX_REPORT_BYTES])
        with store.transaction() as session:
            hits = list(session.scalars(select(Message).where(Message.message_id.in_(ids))))
            if not hits:
                unmatched += 1
                continue
            for message in hits:
                matched += _bounce(session, message, name, now, raw[:MAX_REPORT_BYTES])
    return BounceResult(files, matched, unmatched)


def _reports(source: Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each delivery report in a folder of files, a Maildir or an mbox."""
    if source.is_symlink() or not source.exists():
        raise UsageError(f"{source}: no such bounces folder or mailbox")
    if source.is_file():
        try:
            box = mailbox.mbox(source, create=False)
            keys = list(box.keys())
        except (OSError, mailbox.Error) as exc:
            raise UsageError(f"{source}: not a readable mbox: {exc}") from exc
        for key in keys:
            yield f"{source.name}#{key}", box.get_bytes(key)[:MAX_REPORT_BYTES]
        return
    if (source / "cur").is_dir() and (source / "new").is_dir():
        maildir = mailbox.Maildir(source, factory=None, create=False)
        for key in sorted(maildir.keys()):
            yield f"{source.name}/{key}", maildir.get_bytes(key)[:MAX_REPORT_BYTES]
        return
    for path in sorted(source.iterdir()):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as handle:
                yield path.name, handle.read(MAX_REPORT_BYTES)


def _bounce(session: Session, message: Message, source: str, now: datetime,
            raw: bytes = b"") -> int:
    """The addresses a delivery report names (all of the notice's when it names none of them)
    are not written to again; the notice counts as bounced, and is sent again to the next
    contact, only when every one of its addresses has bounced."""
    if message.status == MessageStatus.BOUNCED:
        return 0
    case = session.get(Case, message.case_id)
    assert case is not None
    addresses = recipients_of(message.recipient)
    text = raw.decode("utf-8", "replace").lower()
    failed = [a for a in addresses if a.lower() in text] or addresses
    named = {a.lower() for a in failed}
    contacts = list(session.scalars(select(Contact).where(
        Contact.organisation_id == case.organisation_id,
        func.lower(Contact.email).in_([a.lower() for a in addresses]))))
    fresh = [c for c in contacts if c.email.lower() in named and c.bounced_at is None]
    if not fresh and contacts:
        return 0  # this report was read before
    for contact in fresh:
        contact.bounced_at = now
    if all(c.bounced_at is not None for c in contacts):
        message.status = MessageStatus.BOUNCED
        message.error = f"delivery report {source}"
    who = ", ".join(failed)
    _flag(session, case, f"notice to {who} bounced", now)
    session.add(Event(case_id=case.id, kind="notice-bounced", at=now,
                      detail=f"{message.message_id} to {who} bounced ({source})"))
    return 1
