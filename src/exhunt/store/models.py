"""The coordinator's SQL store: who owns what, what was seen, what was said to whom.

Every timestamp is stored as naive UTC (SQLite keeps no zone); `utcnow()` gives that form.
The schema is created and changed only through the alembic migrations in
`exhunt/store/migrations`; keep the two in step (tests compare them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Host states are a concept of every part (model.py); the store keeps their values.
from exhunt.model import COMPROMISED as COMPROMISED
from exhunt.model import RANK as RANK
from exhunt.model import HostState as HostState


def utcnow() -> datetime:
    """Now, as naive UTC (the form every column holds)."""
    return datetime.now(UTC).replace(tzinfo=None)


class MessageStatus(StrEnum):
    """Outbox life of one rendered notice."""

    PENDING = "pending"  # rendered and committed, not yet handed to SMTP
    SENDING = "sending"  # committed just before the end-of-data marker was written
    SENT = "sent"  # the SMTP server accepted it
    FAILED = "failed"  # gave up after the retry budget
    BOUNCED = "bounced"  # a delivery report came back for it


class Base(DeclarativeBase):
    pass


class Organisation(Base):
    __tablename__ = "organisations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(512), unique=True)
    country: Mapped[str | None] = mapped_column(String(8))
    sector: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    networks: Mapped[list[Network]] = relationship(back_populates="organisation")
    contacts: Mapped[list[Contact]] = relationship(
        back_populates="organisation", order_by="Contact.position"
    )


class Network(Base):
    __tablename__ = "networks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cidr: Mapped[str] = mapped_column(String(64), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    organisation: Mapped[Organisation] = relationship(back_populates="networks")


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("organisation_id", "email"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    position: Mapped[int] = mapped_column(Integer, default=0)  # order of preference
    bounced_at: Mapped[datetime | None] = mapped_column(DateTime)
    organisation: Mapped[Organisation] = relationship(back_populates="contacts")


class Host(Base):
    __tablename__ = "hosts"
    # absence reads hosts not yet marked and not seen since a day, and marked hosts seen
    # again, from this index alone (absence.py)
    # not on last_seen: every daily report moves most hosts' last sighting, and an index
    # holding it would be rewritten for each (a third of a later day's host updates)
    __table_args__ = (Index("ix_hosts_unreported", "unreported_since"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ip: Mapped[str] = mapped_column(String(64), unique=True)
    hostname: Mapped[str | None] = mapped_column(Text)
    servername: Mapped[str | None] = mapped_column(Text)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    network: Mapped[str | None] = mapped_column(String(64))
    asn: Mapped[int | None] = mapped_column(BigInteger)
    as_name: Mapped[str | None] = mapped_column(Text)
    country: Mapped[str | None] = mapped_column(String(8))
    sector: Mapped[str | None] = mapped_column(String(128))
    sector_source: Mapped[str | None] = mapped_column(String(32))  # contacts | naics | unknown
    naics: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str | None] = mapped_column(String(16), index=True)  # current HostState
    worst_state: Mapped[str | None] = mapped_column(String(16))
    state_since: Mapped[datetime | None] = mapped_column(DateTime)
    first_seen: Mapped[datetime | None] = mapped_column(DateTime)
    last_seen: Mapped[datetime | None] = mapped_column(DateTime)
    # when exhunt last learned of a worse state (ingest clock): drives re-notification
    last_worse_at: Mapped[datetime | None] = mapped_column(DateTime)
    first_vulnerable_at: Mapped[datetime | None] = mapped_column(DateTime)
    first_patched_at: Mapped[datetime | None] = mapped_column(DateTime)
    # where `country` comes from: the feed's own column (Shadowserver geo) and the registry's
    # (RIR allocation); `country` is the one the case uses, `country_source` says which
    feed_country: Mapped[str | None] = mapped_column(String(8))
    registry_country: Mapped[str | None] = mapped_column(String(8))
    country_source: Mapped[str | None] = mapped_column(String(16))  # registry | feed
    # the day a report that would have listed the host first left it out (NULL while it is
    # listed, or when no report covers it): "no longer reported", never "patched" (absence.py)
    unreported_since: Mapped[datetime | None] = mapped_column(DateTime)
    organisation: Mapped[Organisation | None] = relationship()


class IngestedFile(Base):
    """Ledger of every file taken in, by content hash: re-ingesting the same bytes adds nothing."""

    __tablename__ = "ingested_files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    added: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    ingested_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # a report's type (e.g. scan_exchange): absence is read only against the same type
    report_type: Mapped[str | None] = mapped_column(String(64))


class Observation(Base):
    """A run of unchanged evidence about one host: the same finding from the same source, seen
    from `seen_at` to `last_seen_at`. The host's latest run is open (`last_seen_at` NULL) and
    lasts until the host's `last_seen`; a daily feed that says the same thing again only moves
    that, so the store grows with what changes, not with every sighting (each sighting is
    still kept in the Parquet lake when one is given)."""

    __tablename__ = "observations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"), index=True)
    file_id: Mapped[int | None] = mapped_column(ForeignKey("ingested_files.id"))
    source: Mapped[str] = mapped_column(String(32))  # shadowserver | scan | hunt
    seen_at: Mapped[datetime] = mapped_column(DateTime)  # first sighting of the run
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime)  # NULL: the open run
    state: Mapped[str] = mapped_column(String(16))
    port: Mapped[int | None] = mapped_column(Integer)
    build: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)  # bounded, feed text kept as data

    def ended(self, host_last_seen: datetime | None) -> datetime:
        return run_end(self.seen_at, self.last_seen_at, host_last_seen)


def run_end(seen_at: datetime, last_seen_at: datetime | None,
            host_last_seen: datetime | None) -> datetime:
    """When an evidence run was last seen: an open run (no last_seen_at) lasts until its
    host's last sighting."""
    return last_seen_at or host_last_seen or seen_at


class Case(Base):
    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), unique=True)
    # open | unconfirmed (every host no longer reported, none confirmed fixed) | resolved
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)  # a notice bounced
    flag_reason: Mapped[str | None] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_notified_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    # kept by CaseBook.judge so that case lists sort and page in SQL
    hosts: Mapped[int] = mapped_column(Integer, default=0, index=True)
    worst: Mapped[str | None] = mapped_column(String(16))
    worst_rank: Mapped[int] = mapped_column(Integer, default=-1, index=True)
    organisation: Mapped[Organisation] = relationship()


class Message(Base):
    """The outbox: one rendered notice per case per round, committed before any sending."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("case_id", "round"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    recipient: Mapped[str] = mapped_column(Text)  # every listed address, comma-separated
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the full RFC 5322 message
    hosts: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    error: Mapped[str | None] = mapped_column(Text)
    # the sender (host:journal) that claimed it and when: the claim's token in that sender's
    # handover journal says whether its end-of-data marker went out (cases/handover.py)
    claimed_by: Mapped[str | None] = mapped_column(String(300))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)


class Event(Base):
    """History: every state change, notice, bounce and import, for the case file."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)


class Reject(Base):
    """A row that could not be used, with the reason: nothing is silently dropped."""

    __tablename__ = "rejects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int | None] = mapped_column(ForeignKey("ingested_files.id"), index=True)
    source: Mapped[str] = mapped_column(Text)
    line: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)  # bounded
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ReportDay(Base):
    """One daily report's listing, as absence reads it: how many hosts it listed, which
    countries it covered, and whether its absences counted or it was held back as partial."""

    __tablename__ = "report_days"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("ingested_files.id"), unique=True)
    report_type: Mapped[str] = mapped_column(String(64), index=True)
    day: Mapped[datetime] = mapped_column(DateTime)  # the report's first sighting
    listed: Mapped[int] = mapped_column(Integer)  # distinct addresses
    coverage: Mapped[str] = mapped_column(Text)  # countries, comma-separated ('' = all)
    held_back: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    unreported: Mapped[int] = mapped_column(Integer, default=0)  # hosts it moved


class DailyStates(Base):
    """The campaign's counts at the end of each day of evidence, written as ingest goes: the
    states-over-time series and the uptake curve read these rows, not every host."""

    __tablename__ = "daily_states"
    day: Mapped[datetime] = mapped_column(DateTime, primary_key=True)
    exposed: Mapped[int] = mapped_column(Integer, default=0)
    vulnerable: Mapped[int] = mapped_column(Integer, default=0)  # still listed
    backdoored: Mapped[int] = mapped_column(Integer, default=0)
    clean: Mapped[int] = mapped_column(Integer, default=0)  # confirmed patched or clean
    unreported: Mapped[int] = mapped_column(Integer, default=0)  # no longer reported
    vulnerable_ever: Mapped[int] = mapped_column(Integer, default=0)
    confirmed: Mapped[int] = mapped_column(Integer, default=0)  # of those: confirmed fixed
    dropped: Mapped[int] = mapped_column(Integer, default=0)  # of those: no longer reported
    # the overview's groupings at the end of the day (JSON: by_state, by_country, by_sector,
    # by_as, hosts), so that the overview reads one row
    figures: Mapped[str] = mapped_column(Text, default="{}")


class CaseToken(Base):
    """The state of one case's victim token when the operator changed it: its generation
    (a rotation makes a new token and the old one stops opening the case), a revocation, an
    expiry date set by hand. A case without a row has generation 1, open, default expiry."""

    __tablename__ = "case_tokens"
    reference: Mapped[str] = mapped_column(String(32), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)


class Setting(Base):
    """A value the coordinator keeps once per database (the case tokens' HMAC secret)."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# The portal's own tables (web/security.py, web/queries.py), made by 0006_i16_web.


class WebUser(Base):
    """A coordinator account of the portal (argon2id hash, web/security.py)."""

    __tablename__ = "web_users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class WebSession(Base):
    """A signed-in browser: a coordinator's or a victim's (opened by a case token)."""

    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the cookie
    kind: Mapped[str] = mapped_column(String(16))  # coordinator | victim
    subject: Mapped[str] = mapped_column(String(64))  # username or case reference
    csrf: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class WebSetting(Base):
    """A value the portal keeps (the fleet summary a responder uploaded for the dashboard)."""

    __tablename__ = "web_settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class WebReport(Base):
    """A hunt report a victim uploaded, kept verbatim so a coordinator can read it."""

    __tablename__ = "web_reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(Integer, index=True)
    host_ip: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    uploaded_by: Mapped[str] = mapped_column(String(16))  # victim | coordinator
    body: Mapped[bytes] = mapped_column(LargeBinary)
