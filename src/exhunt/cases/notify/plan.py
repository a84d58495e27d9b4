"""Planning a round: each open case that is due gets one notice, rendered into the outbox and
committed before anything is sent (the sender only ever reads committed rows)."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from exhunt.cases.notify.render import STATE_LABELS, NoticeHost, Renderer, software_of
from exhunt.cases.tracking import RESOLVED_STATES
from exhunt.errors import UsageError
from exhunt.store.db import Store
from exhunt.store.models import (
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


def parse_duration(text: str) -> timedelta:
    """'7d', '12h', '30m', '45s' (or a bare number of seconds)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise UsageError(f"not a duration: {text!r} (use e.g. 7d, 12h, 30m)")
    value = float(match.group(1))
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return timedelta(seconds=value * unit)


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
            flag_case(session, case, "no contact left to try (all bounced or none listed)", now)
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


def flag_case(session: Session, case: Case, reason: str, now: datetime) -> None:
    """Flag a case for a person to look at (once per reason), with an event in its file."""
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
