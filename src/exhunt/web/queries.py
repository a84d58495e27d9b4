"""Read-only views of the store for the dashboard and the JSON API (plain dicts, JSON-ready)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from email import policy
from email.parser import BytesParser
from typing import Any

import orjson
from sqlalchemy import func, select, union
from sqlalchemy.orm import Session

from exhunt.cases.absence import (
    campaign_figures,
    held_back_days,
    latest_figures,
    states_by_day,
    uptake_curve,
)
from exhunt.cases.owners import STATUS_TEXT
from exhunt.cases.tracking import HEADLINE_GROUPS, RESOLVED_STATES, headline_group
from exhunt.store.models import (
    COMPROMISED,
    Case,
    Event,
    Host,
    HostState,
    Message,
    MessageStatus,
    Observation,
    Organisation,
)
from exhunt.store.queries import host_json
from exhunt.store.queries import run_json as _run_json
from exhunt.web.security import WebReport, WebSetting

FLEET_KEY = "fleet_summary"
MAX_FLEET_BYTES = 2 * 1024 * 1024
MAX_DAYS = 120  # the state-over-time series covers at most this many days
OVERVIEW_STATES = HEADLINE_GROUPS
CASE_HOSTS_SHOWN = 500  # a case page lists this many hosts; the API pages through the rest
CASE_SORTS = ("reference", "organisation", "status", "hosts", "worst", "notified")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def overview_group(state: str | None, unreported: bool = False) -> str:
    """The headline group of a host (tracking.headline_group)."""
    return headline_group(state, unreported)


def state_series(session: Session) -> list[dict[str, Any]]:
    """Per day of evidence, how many hosts were in each headline group (kept at ingest)."""
    return states_by_day(session, MAX_DAYS)


def uptake(session: Session) -> list[dict[str, Any]]:
    """Share of hosts ever seen vulnerable that were confirmed fixed, and that are no longer
    reported, by day (kept at ingest)."""
    return uptake_curve(session)


def funnel(session: Session) -> dict[str, int]:
    def cases_with(*where: Any) -> int:
        return session.scalar(select(func.count(func.distinct(Message.case_id))).where(*where)
                              ) or 0

    def by_status(status: str) -> int:
        return session.scalar(select(func.count(Case.id)).where(Case.status == status)) or 0

    return {"cases": session.scalar(select(func.count(Case.id))) or 0,
            "notified": cases_with(),
            "delivered": cases_with(Message.status == MessageStatus.SENT),
            "bounced": cases_with(Message.status == MessageStatus.BOUNCED),
            "acknowledged": session.scalar(
                select(func.count(func.distinct(WebReport.case_id)))) or 0,
            "unconfirmed": by_status("unconfirmed"),
            "remediated": by_status("resolved")}


def summary(session: Session) -> dict[str, Any]:
    """The overview's figures: the groupings written at the end of the latest day of evidence
    (grouped in SQL when none is written yet), the funnel, the series kept at ingest."""
    figures = latest_figures(session) or campaign_figures(session)
    return figures | {"funnel": funnel(session), "series": state_series(session),
                      "held_back": held_back_days(session)}


_CASE_ORDER: dict[str, Any] = {
    "reference": Case.reference, "organisation": Organisation.name, "status": Case.status,
    "hosts": Case.hosts, "worst": Case.worst_rank, "notified": Case.last_notified_at}


def _like(needle: str) -> str:
    return "%" + needle.lower().replace("\\", "\\\\").replace("%", "\\%").replace(
        "_", "\\_") + "%"


def _matching_organisations(needle: str, dialect: str) -> Any:
    """The organisations a search names: by case reference, organisation name, or a host's
    address or name (on PostgreSQL from trigram indexes on exactly these lower() expressions,
    see the absence migration; on SQLite one plain scan of each table, not one per case)."""
    pattern = _like(needle)

    def contains(column: Any) -> Any:
        # SQLite's LIKE already ignores case, for ASCII only, like its lower(): the same
        # match without a function call per row
        text = column if dialect == "sqlite" else func.lower(column)
        return text.like(pattern, escape="\\")
    return union(
        select(Case.organisation_id).where(contains(Case.reference)),
        select(Organisation.id).where(contains(Organisation.name)),
        select(Host.organisation_id).where(
            Host.organisation_id.is_not(None), contains(Host.ip) | contains(Host.hostname)))


def case_page(session: Session, query: str = "", sort: str = "reference",
              descending: bool = False, limit: int = 200, offset: int = 0
              ) -> tuple[int, list[dict[str, Any]]]:
    """(cases matching, one page of them in the chosen order): searched by reference,
    organisation, host address or name; sorted, counted and paged in SQL on the case's kept
    host count and worst state. The page's case ids are chosen first from the sort's index
    alone, so a deep page skips index entries, not joined rows."""
    column = _CASE_ORDER.get(sort, Case.reference)
    order = column.desc() if descending else column.asc()
    if column is Case.last_notified_at:  # never notified sorts as the smallest
        order = order.nulls_last() if descending else order.nulls_first()
    ids = select(Case.id)
    if column is Organisation.name:
        ids = ids.join(Organisation, Organisation.id == Case.organisation_id)
    ids = ids.order_by(order, Case.id.desc() if descending else Case.id)
    needle = query.strip()[:200]
    if needle:  # the search runs once: every match's id in order, counted and paged here
        every = list(session.scalars(ids.where(Case.organisation_id.in_(
            _matching_organisations(needle, session.get_bind().dialect.name)))))
        total, chosen = len(every), every[offset:offset + limit]
    else:
        total = session.scalar(select(func.count(Case.id))) or 0
        chosen = list(session.scalars(ids.limit(limit).offset(offset)))
    found = {r.id: r for r in session.execute(
        select(Case.id, Case.reference, Organisation.name, Organisation.country,
               Organisation.sector, Case.status, Case.flagged, Case.hosts, Case.worst,
               Case.last_notified_at)
        .join(Organisation, Organisation.id == Case.organisation_id)
        .where(Case.id.in_(chosen)))} if chosen else {}
    rows = [{"reference": r.reference, "organisation": r.name, "country": r.country,
             "sector": r.sector, "status": r.status,
             "status_text": STATUS_TEXT.get(r.status, r.status), "flagged": r.flagged,
             "hosts": r.hosts, "worst": r.worst, "notified": _iso(r.last_notified_at)}
            for r in (found[i] for i in chosen if i in found)]
    return total, rows


def host_page(session: Session, group: str = "", limit: int = 200, offset: int = 0
              ) -> tuple[int, list[dict[str, Any]]]:
    """(hosts in a headline group or state, or all, one page of them in address order)."""
    where: list[Any] = []
    gone = Host.unreported_since.is_not(None)
    open_states = [HostState.EXPOSED.value, HostState.VULNERABLE.value]
    if group == "unreported":
        where = [Host.state.in_(open_states), gone]
    elif group in ("exposed", "vulnerable"):
        where = [Host.state == group, Host.unreported_since.is_(None)]
    elif group == "backdoored":
        where = [Host.state.in_([s.value for s in COMPROMISED])]
    elif group == "clean":
        where = [Host.state.in_([s.value for s in RESOLVED_STATES])]
    elif group in {s.value for s in HostState}:
        where = [Host.state == group]
    total = session.scalar(select(func.count(Host.id)).where(*where)) or 0
    hosts = session.scalars(select(Host).where(*where).order_by(Host.ip).limit(limit)
                            .offset(offset))
    return total, [host_json(h) for h in hosts]


def _message_text(body: bytes) -> str:
    """The readable text of a stored notice (its first text part), never rendered as HTML."""
    try:
        parsed = BytesParser(policy=policy.default).parsebytes(body)
        part = parsed.get_body(preferencelist=("plain",))
        if part is not None:
            return str(part.get_content())[:100_000]
    except Exception:  # a malformed stored message still shows, raw
        pass
    return body[:100_000].decode("utf-8", "replace")


def case_detail(session: Session, case: Case, *, with_bodies: bool,
                host_offset: int = 0) -> dict[str, Any]:
    org = case.organisation
    hosts = list(session.scalars(select(Host).where(Host.organisation_id == org.id)
                                 .order_by(Host.ip).limit(CASE_HOSTS_SHOWN)
                                 .offset(host_offset)))
    host_ids = [h.id for h in hosts]
    last_seen = {h.id: h.last_seen for h in hosts}
    evidence: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if host_ids:
        for o in session.scalars(select(Observation).where(Observation.host_id.in_(host_ids))
                                 .order_by(Observation.seen_at.desc()).limit(2000)):
            evidence[o.host_id].append(_run_json(o, last_seen.get(o.host_id)))
    messages = []
    for m in session.scalars(select(Message).where(Message.case_id == case.id)
                             .order_by(Message.round)):
        row: dict[str, Any] = {"round": m.round, "recipient": m.recipient, "subject": m.subject,
                               "status": m.status, "attempts": m.attempts,
                               "sent_at": _iso(m.sent_at), "error": m.error, "hosts": m.hosts}
        if with_bodies:
            row["text"] = _message_text(m.body)
        messages.append(row)
    event_filter = Event.case_id == case.id
    if host_ids:
        event_filter = event_filter | Event.host_id.in_(host_ids)
    history = [{"at": _iso(e.at), "kind": e.kind, "detail": e.detail}
               for e in session.scalars(select(Event).where(event_filter)
                                        .order_by(Event.at.desc(), Event.id.desc()).limit(500))]
    reports = [{"id": r.id, "host_ip": r.host_ip, "verdict": r.verdict,
                "received_at": _iso(r.received_at), "uploaded_by": r.uploaded_by}
               for r in session.scalars(select(WebReport).where(WebReport.case_id == case.id)
                                        .order_by(WebReport.received_at.desc()))]
    return {
        "reference": case.reference, "organisation": org.name, "country": org.country,
        "sector": org.sector, "status": case.status,
        "status_text": STATUS_TEXT.get(case.status, case.status), "flagged": case.flagged,
        "hosts_total": case.hosts, "hosts_offset": host_offset,
        "flag_reason": case.flag_reason, "opened_at": _iso(case.opened_at),
        "resolved_at": _iso(case.resolved_at), "last_notified_at": _iso(case.last_notified_at),
        "hosts": [host_json(h) | {"evidence": evidence.get(h.id, [])} for h in hosts],
        "messages": messages, "history": history, "reports": reports,
    }


def host_detail(session: Session, host: Host) -> dict[str, Any]:
    observations = [_run_json(o, host.last_seen)
                    for o in session.scalars(select(Observation)
                                             .where(Observation.host_id == host.id)
                                             .order_by(Observation.seen_at, Observation.id)
                                             .limit(5000))]
    case = (session.scalar(select(Case).where(Case.organisation_id == host.organisation_id))
            if host.organisation_id else None)
    return host_json(host) | {"case": case.reference if case else None,
                              "organisation": host.organisation.name if host.organisation
                              else None,
                              "observations": observations}


def save_fleet_summary(session: Session, summary: dict[str, Any]) -> None:
    """Keep the latest fleet-hunt summary (`exhunt hunt` fleet JSON) for the overview."""
    data = orjson.dumps(summary)
    if len(data) > MAX_FLEET_BYTES:
        raise ValueError(f"fleet summary larger than {MAX_FLEET_BYTES} bytes")
    row = session.get(WebSetting, FLEET_KEY)
    if row is None:
        session.add(WebSetting(key=FLEET_KEY, value=data.decode()))
    else:
        row.value = data.decode()


def fleet_view(session: Session) -> dict[str, Any] | None:
    """Waves and shared-infrastructure clusters of the last fleet hunt, in a fixed shape
    (the stored summary is data from a hunt of attacker-touched files: nothing is trusted)."""
    row = session.get(WebSetting, FLEET_KEY)
    if row is None:
        return None
    try:
        summary = orjson.loads(row.value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(summary, dict):
        return None
    waves = summary.get("waves")
    clusters = summary.get("clusters")
    shown = []
    for c in clusters if isinstance(clusters, list) else []:
        if not isinstance(c, dict):
            continue
        indicators = c.get("indicators")
        shown.append({
            "id": str(c.get("id")),
            "servers": [str(s) for s in c.get("servers") or [] if isinstance(s, str)][:50],
            "waves": ", ".join(f"{k}: {v}" for k, v in (c.get("waves") or {}).items())
            if isinstance(c.get("waves"), dict) else "",
            "first_exploitation": str(c.get("first_exploitation") or ""),
            "indicators": [f"{i.get('kind')}: {i.get('value')}" for i in
                           (indicators if isinstance(indicators, list) else [])[:20]
                           if isinstance(i, dict)],
        })
    return {
        "waves": {str(k): v for k, v in waves.items() if isinstance(v, int)}
        if isinstance(waves, dict) else {},
        "clusters": shown[:100],
        "answer": str(summary.get("answer") or ""),
        "servers": summary.get("servers") if isinstance(summary.get("servers"), int) else None,
    }
