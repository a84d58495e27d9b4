"""The dashboard's queries as they were before issue 13 (commit 3d206e3), kept as the peer
of bench/dashboard/run.py: every figure computed in Python over every row (the series by
replaying every host's evidence runs). Not used by exhunt itself."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exhunt.cases.tracking import SCAN_STATES, next_state, run_points
from exhunt.store.models import (
    COMPROMISED,
    Case,
    Host,
    HostState,
    Message,
    MessageStatus,
    Observation,
    Organisation,
)
from exhunt.web.security import WebReport

MAX_DAYS = 120
OVERVIEW_STATES = ("exposed", "vulnerable", "backdoored", "clean")
CASE_SORTS = ("reference", "organisation", "status", "hosts", "worst", "notified")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def overview_group(state: str | None) -> str:
    """The four headline groups: back doors and exploitation count as back-doored."""
    if state is None:
        return "unknown"
    s = HostState(state)
    if s in COMPROMISED:
        return "backdoored"
    if s in (HostState.CLEAN, HostState.PATCHED):
        return "clean"
    return s.value


def state_series(session: Session) -> list[dict[str, Any]]:
    """Per day, how many hosts were in each headline group (replaying the tracking rules over
    each host's evidence runs)."""
    rows = session.execute(
        select(Observation.host_id, Observation.state, Observation.seen_at,
               Observation.last_seen_at, Observation.source, Host.last_seen)
        .join(Host, Host.id == Observation.host_id)
        .order_by(Observation.host_id, Observation.seen_at, Observation.id)).all()
    if not rows:
        return []
    by_host: dict[int, list[Any]] = defaultdict(list)
    for r in rows:
        by_host[r.host_id].append(r)
    timelines = [run_points([(r.state, r.seen_at, r.last_seen_at, r.source) for r in runs],
                            runs[0].last_seen) for runs in by_host.values()]
    last_day = max(t[-1][0] for t in timelines).date()
    first_day = max(min(t[0][0] for t in timelines).date(), last_day - timedelta(days=MAX_DAYS))
    days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    counts = [Counter[str]() for _ in days]
    for points in timelines:
        state: HostState | None = None
        last_scan: HostState | None = None
        index = 0
        for day_no, day in enumerate(days):
            while index < len(points) and points[index][0].date() <= day:
                _, seen, source = points[index]
                if source != "hunt" and seen in SCAN_STATES:
                    last_scan = seen
                state = next_state(state, seen, last_scan)
                index += 1
            if state is not None:
                counts[day_no][overview_group(state.value)] += 1
    return [{"day": day.isoformat(), **{g: c.get(g, 0) for g in OVERVIEW_STATES}}
            for day, c in zip(days, counts, strict=True)]


def uptake(session: Session) -> list[dict[str, Any]]:
    """Share of hosts ever seen vulnerable that were patched or clean, by day."""
    rows = session.execute(select(Host.first_vulnerable_at, Host.first_patched_at)).all()
    vulnerable = sum(1 for v, _ in rows if v is not None)
    per_day = Counter(f"{p:%Y-%m-%d}" for v, p in rows if v is not None and p is not None)
    curve: list[dict[str, Any]] = []
    running = 0
    for day in sorted(per_day):
        running += per_day[day]
        curve.append({"day": day, "patched": running, "vulnerable_ever": vulnerable,
                      "patched_share": running / vulnerable if vulnerable else 0.0})
    return curve


def funnel(session: Session) -> dict[str, int]:
    cases = session.scalar(select(func.count(Case.id))) or 0
    statuses = session.execute(select(Message.case_id, Message.status)).all()
    notified = {c for c, s in statuses}
    delivered = {c for c, s in statuses if s == MessageStatus.SENT}
    bounced = {c for c, s in statuses if s == MessageStatus.BOUNCED}
    acknowledged = set(session.scalars(select(WebReport.case_id)).all())
    remediated = session.scalar(select(func.count(Case.id)).where(Case.status == "resolved")) or 0
    return {"cases": cases, "notified": len(notified), "delivered": len(delivered),
            "bounced": len(bounced), "acknowledged": len(acknowledged), "remediated": remediated}


def summary(session: Session) -> dict[str, Any]:
    hosts = session.execute(select(Host.state, Host.country, Host.sector, Host.asn,
                                   Host.as_name)).all()
    groups = Counter(overview_group(h.state) for h in hosts)
    as_names = {h.asn: h.as_name for h in hosts if h.asn is not None}
    by_as = Counter(h.asn for h in hosts)
    return {
        "hosts": len(hosts),
        "by_group": {g: groups.get(g, 0) for g in (*OVERVIEW_STATES, "unknown")},
        "by_state": dict(Counter(h.state or "unknown" for h in hosts)),
        "by_country": dict(Counter(h.country or "unknown" for h in hosts).most_common(15)),
        "by_sector": dict(Counter(h.sector or "unknown" for h in hosts).most_common(15)),
        "by_as": [{"asn": asn, "as_name": as_names.get(asn), "hosts": n}
                  for asn, n in by_as.most_common(15)],
        "funnel": funnel(session),
        "series": state_series(session),
    }


def case_list(session: Session, query: str = "", sort: str = "reference",
              descending: bool = False) -> list[dict[str, Any]]:
    stmt = select(Case, Organisation).join(Organisation, Organisation.id == Case.organisation_id)
    needle = query.strip()[:200]
    if needle:
        pattern = "%" + needle.lower().replace("\\", "\\\\").replace("%", "\\%").replace(
            "_", "\\_") + "%"
        host_orgs = select(Host.organisation_id).where(
            func.lower(Host.ip).like(pattern, escape="\\")
            | func.lower(func.coalesce(Host.hostname, "")).like(pattern, escape="\\"))
        stmt = stmt.where(func.lower(Case.reference).like(pattern, escape="\\")
                          | func.lower(Organisation.name).like(pattern, escape="\\")
                          | Organisation.id.in_(host_orgs))
    pairs = session.execute(stmt).all()
    org_ids = [o.id for _, o in pairs]
    hosts: dict[int, list[str | None]] = defaultdict(list)
    if org_ids:
        for org_id, state in session.execute(
                select(Host.organisation_id, Host.state).where(Host.organisation_id.in_(org_ids))):
            if org_id is not None:
                hosts[org_id].append(state)
    rows = []
    for case, org in pairs:
        states = hosts.get(org.id, [])
        worst = max((HostState(s) for s in states if s), key=list(HostState).index, default=None)
        rows.append({"reference": case.reference, "organisation": org.name,
                     "country": org.country, "sector": org.sector, "status": case.status,
                     "flagged": case.flagged, "hosts": len(states),
                     "worst": worst.value if worst else None,
                     "notified": _iso(case.last_notified_at)})
    key = sort if sort in CASE_SORTS else "reference"
    rank = {s.value: i for i, s in enumerate(HostState)}

    def order(row: dict[str, Any]) -> tuple[int, str]:
        if key == "worst":
            return (rank.get(str(row["worst"]), -1), "")
        value = row[key]
        return (0 if value is None else 1, f"{value:>12}" if isinstance(value, int) else
                str(value or ""))

    rows.sort(key=order, reverse=descending)
    return rows
