"""Read-only views of the coordinator's store, shared by the command line and the web (plain
dicts, JSON-ready). The dashboard's own page views stay in `exhunt.web.queries`, which
re-exports the ones defined here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exhunt.cases.absence import campaign_counts, held_back_days, uptake_curve
from exhunt.cases.tracking import HEADLINE_GROUPS, headline_group
from exhunt.store.db import Store
from exhunt.store.models import Case, Event, Host, Message, Observation, Reject


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def host_json(h: Host) -> dict[str, Any]:
    """One host as the dashboard and the API show it."""
    return {"ip": h.ip, "hostname": h.hostname, "state": h.state, "worst_state": h.worst_state,
            "country": h.country, "sector": h.sector, "asn": h.asn, "as_name": h.as_name,
            "network": h.network, "first_seen": iso(h.first_seen),
            "last_seen": iso(h.last_seen), "state_since": iso(h.state_since),
            "unreported_since": iso(h.unreported_since),
            "group": headline_group(h.state, h.unreported_since is not None)}


def host_record(h: Host) -> dict[str, Any]:
    """One host with where its country and sector came from (the CLI's case lists)."""
    return host_json(h) | {
        "country_source": h.country_source, "feed_country": h.feed_country,
        "registry_country": h.registry_country,
        "country_disagrees": bool(h.feed_country and h.registry_country
                                  and h.feed_country != h.registry_country),
        "sector_source": h.sector_source}


def run_json(o: Observation, host_last_seen: datetime | None) -> dict[str, Any]:
    """One evidence run: first and last sighting, what was seen."""
    return {"seen_at": iso(o.seen_at), "last_seen_at": iso(o.ended(host_last_seen)),
            "source": o.source, "state": o.state, "port": o.port, "build": o.build,
            "evidence": o.evidence}


def case_rows(store: Store, *, detail: bool = False) -> list[dict[str, Any]]:
    """Cases with their hosts; with `detail`, each host's evidence and each case's history."""
    with store.session() as session:
        cases = list(session.scalars(select(Case).order_by(Case.reference)))
        hosts = list(session.scalars(select(Host).where(Host.organisation_id.is_not(None))
                                     .order_by(Host.ip)))
        by_org: dict[int, list[Host]] = {}
        for host in hosts:
            assert host.organisation_id is not None
            by_org.setdefault(host.organisation_id, []).append(host)
        evidence, history = _details(session, cases, hosts) if detail else ({}, {})
        rows = []
        for c in cases:
            row: dict[str, Any] = {
                "reference": c.reference, "organisation": c.organisation.name,
                "status": c.status, "flagged": c.flagged, "flag_reason": c.flag_reason,
                "last_notified_at": iso(c.last_notified_at),
                "contacts": [ct.email for ct in c.organisation.contacts],
                "hosts": [host_record(h) | ({"evidence": evidence.get(h.id, [])} if detail
                                            else {})
                          for h in by_org.get(c.organisation_id, [])],
            }
            if detail:
                row["history"] = history.get(c.id, [])
            rows.append(row)
        return rows


def _details(session: Session, cases: list[Case], hosts: list[Host]
             ) -> tuple[dict[int, list[dict[str, Any]]], dict[int, list[dict[str, Any]]]]:
    """Evidence runs by host id and history events by case id."""
    evidence: dict[int, list[dict[str, Any]]] = {}
    history: dict[int, list[dict[str, Any]]] = {}
    last_seen = {h.id: h.last_seen for h in hosts}
    for o in session.scalars(select(Observation).order_by(Observation.seen_at)):
        evidence.setdefault(o.host_id, []).append(run_json(o, last_seen.get(o.host_id)))
    host_case = {h.id: h.organisation_id for h in hosts}
    case_of_org = {c.organisation_id: c.id for c in cases}
    for e in session.scalars(select(Event).order_by(Event.at, Event.id)):
        case_id = e.case_id or case_of_org.get(host_case.get(e.host_id or -1) or -1)
        if case_id is not None:
            history.setdefault(case_id, []).append(
                {"at": e.at.isoformat(), "kind": e.kind, "detail": e.detail})
    return evidence, history


def unattributed_rows(store: Store) -> list[dict[str, Any]]:
    """Hosts with no owner yet."""
    with store.session() as session:
        return [host_record(h) for h in session.scalars(
            select(Host).where(Host.organisation_id.is_(None)).order_by(Host.ip))]


def reject_rows(store: Store) -> list[dict[str, Any]]:
    """Rows that could not be used, with the reason."""
    with store.session() as session:
        return [{"source": r.source, "line": r.line, "reason": r.reason, "raw": r.raw}
                for r in session.scalars(select(Reject).order_by(Reject.id))]


def campaign_stats(store: Store) -> dict[str, Any]:
    """Counts and the uptake curve, grouped in SQL (the curve from the counts ingest wrote
    each day: confirmed fixed and no longer reported, apart)."""
    with store.session() as session:
        def grouped(column: Any) -> dict[str, int]:
            return {str(value): n for value, n in session.execute(
                select(column, func.count()).group_by(column))}

        groups = campaign_counts(session)
        by_state = grouped(Host.state)
        notified = session.execute(
            select(Host.first_patched_at, func.min(Message.sent_at))
            .join(Case, Case.organisation_id == Host.organisation_id)
            .join(Message, Message.case_id == Case.id)
            .where(Message.sent_at.is_not(None)).group_by(Host.id, Host.first_patched_at)).all()
        result = {
            "hosts": sum(by_state.values()),
            "by_group": {g: groups[g] for g in (*HEADLINE_GROUPS, "unknown")},
            "by_state": by_state,
            "by_country": grouped(Host.country),
            "by_sector": grouped(Host.sector),
            "by_asn": grouped(Host.asn),
            "messages": grouped(Message.status),
            "uptake": uptake_curve(session),
            "held_back_days": held_back_days(session),
        }
    waits = sorted((fixed - sent).total_seconds() / 86400 for fixed, sent in notified
                   if fixed is not None and sent is not None and fixed >= sent)
    result["remediation_after_notice"] = {
        "notified_hosts": len(notified), "remediated": len(waits),
        "median_days": waits[len(waits) // 2] if waits else None}
    return result
