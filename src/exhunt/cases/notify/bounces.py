"""Delivery reports (bounces): the notice they name is marked, its dead addresses are not used
again, and the next planning round writes to the organisation's next contact."""

from __future__ import annotations

import email.policy
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesParser
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exhunt.cases.notify.plan import flag_case, recipients_of
from exhunt.errors import UsageError
from exhunt.store.db import Store
from exhunt.store.models import Case, Contact, Event, Message, MessageStatus, utcnow


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
    flag_case(session, case, f"notice to {who} bounced", now)
    session.add(Event(case_id=case.id, kind="notice-bounced", at=now,
                      detail=f"{message.message_id} to {who} bounced ({source})"))
    return 1
