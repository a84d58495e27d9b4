"""Absence from a daily report as evidence, carefully (the rules: docs/absence.md).

A vulnerable-server report lists the servers its scan found vulnerable; a server that was
patched simply stops being listed. So a host left out of a later report of the same type
that covers its country moves to "no longer reported since D": counted apart from hosts a
scan or a hunt report confirmed patched, and never for a compromised host (patching removes
no back door). A host listed again goes back, its history kept. A report that lists far
fewer hosts than the counted days before it (a partial scan) is held back: its sightings
count, its absences do not. After every file the day's counts are written to daily_states,
which the dashboard's series and uptake curve read.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from exhunt.cases.owners import EVENT_COLUMNS, Attributor, CaseBook
from exhunt.cases.shadowcsv import SightingColumns
from exhunt.cases.tracking import (
    HEADLINE_GROUPS,
    RESOLVED_STATES,
    SCAN_STATES,
    headline_group,
    next_state,
    run_points,
)
from exhunt.store.bulk import bulk_insert, bulk_update, core, fetch_rows
from exhunt.store.models import (
    COMPROMISED,
    DailyStates,
    Event,
    Host,
    HostState,
    IngestedFile,
    Observation,
    ReportDay,
)

# A report listing fewer than this share of the median of the (up to) three counted days
# before it is held back as partial; `exhunt ingest --partial-below` sets another.
PARTIAL_BELOW = 0.5
REFERENCE_DAYS = 3
_DATED = re.compile(r"^\d{4}-\d{2}-\d{2}[-_]?")


def report_type(name: str) -> str:
    """The report's type from Shadowserver's file name, `2021-03-10-scan_exchange-...csv`
    -> `scan_exchange` (scan6_exchange, the IPv6 scan, is another type: it never covers an
    IPv4 host)."""
    stem = re.split(r"[\\/]", name)[-1].lower()
    stem = stem.removesuffix(".gz").removesuffix(".csv")
    stem = _DATED.sub("", stem)
    return (stem.split("-")[0] or "shadowserver")[:64]


@dataclass(frozen=True, slots=True)
class Listing:
    """What one report listed: its type, its first sighting, how many addresses, which
    countries."""

    report_type: str
    day: datetime
    listed: int
    countries: tuple[str, ...]

    @property
    def coverage(self) -> str:
        return ",".join(self.countries)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What absence made of one file, for the run's output."""

    unreported: int = 0
    reported_again: int = 0
    held_back: str | None = None  # why the report's absences were not counted

    def note(self) -> str | None:
        parts = []
        if self.held_back:
            parts.append(f"held back: {self.held_back}")
        if self.unreported:
            parts.append(f"{self.unreported} hosts no longer reported")
        if self.reported_again:
            parts.append(f"{self.reported_again} hosts reported again")
        return "; ".join(parts) or None


def listing_of(name: str, table: pa.Table, others: SightingColumns) -> Listing | None:
    """The listing of a report file's usable rows (None when it has none)."""
    ips = pa.chunked_array([*table.column("ip").cast(pa.string()).chunks,
                            pa.array(others.ip, pa.string())], pa.string())
    if not len(ips):
        return None
    times = [t for t in (pc.min(table.column("seen_at")).as_py() if table.num_rows else None,
                         min(others.seen_at, default=None)) if t is not None]
    countries = set(c for c in pc.unique(table.column("country").cast(pa.string())).to_pylist()
                    if c) | {c for c in others.country if c}
    return Listing(report_type(name), min(times), len(pc.unique(ips)),
                   tuple(sorted(countries)))


def after_file(session: Session, ledger: IngestedFile, listing: Listing | None,
               latest: datetime | None, now: datetime,
               partial_below: float = PARTIAL_BELOW) -> Outcome:
    """Absence's part of one file's ingest, in its transaction: hosts listed again, the
    report's absences (unless held back), the cases of every host moved, the day's counts."""
    events: list[tuple[object, ...]] = []
    again = _reported_again(session, now, events)
    left: list[tuple[int, str, int | None]] = []
    held = None
    if listing is not None:
        ledger.report_type = listing.report_type
        held = _held_back(session, listing, partial_below)
        if held is None:
            left = _left_out(session, listing)
        session.execute(insert(ReportDay).values(
            file_id=ledger.id, report_type=listing.report_type, day=listing.day,
            listed=listing.listed, coverage=listing.coverage, held_back=held is not None,
            reason=held, unreported=len(left)))
    moved_orgs = {org for _, _, org in left if org is not None} | {
        org for _, _, org in again if org is not None}
    if moved_orgs:
        cases = CaseBook(session, Attributor(session), now)
        case_ids = cases.ensure(moved_orgs)
        if listing is not None:
            events.extend(_left_events(left, case_ids, listing, now))
        events.extend(cases.judge(moved_orgs))
    bulk_insert(session, core(Event), EVENT_COLUMNS, events)
    if latest is not None:
        record_day(session, latest)
    return Outcome(len(left), len(again), held)


def _left_events(left: list[tuple[int, str, int | None]], case_ids: dict[int, int],
                 listing: Listing, now: datetime) -> list[tuple[object, ...]]:
    """One history line per case: which of its hosts the report left out (a daily report
    can leave out tens of thousands; the host itself carries its unreported_since)."""
    by_case: dict[int, list[str]] = {}
    for _, ip, org_id in left:
        if org_id is not None:
            by_case.setdefault(case_ids[org_id], []).append(ip)
    day = f"{listing.day:%Y-%m-%d}"
    return [(case_id, None, "host-unreported", now,
             f"{len(ips)} host{'s' if len(ips) != 1 else ''} no longer reported since {day} "
             f"({listing.report_type}): {', '.join(sorted(ips)[:20])}"
             + (" …" if len(ips) > 20 else ""))
            for case_id, ips in sorted(by_case.items())]


def _held_back(session: Session, listing: Listing, partial_below: float) -> str | None:
    """Why the report's absences should not count, or None. The reference is the median
    listing of the counted days before it (same type, same coverage); a second small day
    in a row that agrees with the first is a real drop and counts."""
    days = core(ReportDay).c
    before = list(fetch_rows(session, select(days.listed, days.held_back, days.day)
                             .where(days.report_type == listing.report_type,
                                    days.coverage == listing.coverage,
                                    days.day < listing.day)
                             .order_by(days.day.desc()).limit(4 * REFERENCE_DAYS)))
    counted = [listed for listed, held, _ in before if not held][:REFERENCE_DAYS]
    if not counted:
        return None
    reference = statistics.median(counted)
    if listing.listed >= partial_below * reference:
        return None
    if before and before[0][1] and listing.listed >= partial_below * before[0][0]:
        return None  # the day before was small too: the drop is real
    return (f"{listing.report_type} of {listing.day:%Y-%m-%d} lists {listing.listed} hosts, "
            f"under {partial_below:.0%} of the {len(counted)} counted days before it "
            f"(median {reference:g}); a partial scan is taken as sightings only")


def _left_out(session: Session, listing: Listing) -> list[tuple[int, str, int | None]]:
    """Hosts the report would have listed and did not, now marked: listed last by a report
    of this type (their open run came from one), in a country it covers, not seen since its
    first sighting, not confirmed fixed, not already marked. (id, address, organisation)."""
    hosts, runs, files = core(Host).c, core(Observation).c, core(IngestedFile).c
    listed_by_type = (select(runs.id)
                      .join(core(IngestedFile), files.id == runs.file_id)
                      .where(runs.host_id == hosts.id, runs.last_seen_at.is_(None),
                             files.report_type == listing.report_type))
    day = listing.day.replace(hour=0, minute=0, second=0, microsecond=0)
    marking = (update(core(Host))
               .where(hosts.unreported_since.is_(None), hosts.last_seen < listing.day,
                      hosts.state.not_in([s.value for s in RESOLVED_STATES]),
                      listed_by_type.exists())
               .values(unreported_since=day)
               .returning(hosts.id, hosts.ip, hosts.organisation_id))
    if listing.countries:
        marking = marking.where(hosts.country.in_(listing.countries))
    # one statement marks them and says which (RETURNING: SQLite 3.35+, PostgreSQL)
    return [(host_id, ip, org_id) for host_id, ip, org_id in session.execute(marking)]


def _reported_again(session: Session, now: datetime, events: list[tuple[object, ...]]
                    ) -> list[tuple[int, str, int | None]]:
    """Hosts seen again (in any evidence) since they were marked no longer reported."""
    hosts = core(Host).c
    back = list(fetch_rows(session, select(hosts.id, hosts.ip, hosts.organisation_id,
                                           hosts.unreported_since, hosts.last_seen)
                           .where(hosts.unreported_since.is_not(None),
                                  hosts.last_seen >= hosts.unreported_since)))
    bulk_update(session, core(Host), ["unreported_since"], [(None, h[0]) for h in back])
    for host_id, ip, _, since, last_seen in back:
        events.append((None, host_id, "host-reported-again", now,
                       f"{ip}: reported again on {last_seen:%Y-%m-%d} after no report "
                       f"since {since:%Y-%m-%d}"))
    return [(host_id, ip, org_id) for host_id, ip, org_id, _, _ in back]


def _top(session: Session, column: Any, *also: Any, limit: int = 15) -> list[tuple[Any, ...]]:
    count = func.count()
    return list(session.execute(select(column, count, *also).group_by(column)
                                .order_by(count.desc(), column).limit(limit)))


def campaign_figures(session: Session, groups: dict[str, int] | None = None
                     ) -> dict[str, Any]:
    """The overview's groupings as they stand, each grouped in SQL: hosts by headline group
    and state (`groups`: campaign_counts, when read already), the top countries, sectors and
    AS numbers."""
    groups = groups or campaign_counts(session)
    by_state = {k.removeprefix("state:"): n for k, n in groups.items()
                if k.startswith("state:")}
    return {"hosts": sum(by_state.values()),
            "by_group": {g: groups[g] for g in (*HEADLINE_GROUPS, "unknown")},
            "by_state": by_state,
            "by_country": {c or "unknown": n for c, n in _top(session, Host.country)},
            "by_sector": {s or "unknown": n for s, n in _top(session, Host.sector)},
            "by_as": [{"asn": asn, "as_name": name if asn is not None else None, "hosts": n}
                      for asn, n, name in _top(session, Host.asn, func.max(Host.as_name))]}


def latest_figures(session: Session) -> dict[str, Any] | None:
    """The groupings written at the end of the latest day of evidence (None before any)."""
    row = session.scalar(select(DailyStates.figures).order_by(DailyStates.day.desc()).limit(1))
    if not row:
        return None
    figures = orjson.loads(row)
    return figures if isinstance(figures, dict) and "by_group" in figures else None


def campaign_counts(session: Session) -> dict[str, int]:
    """The headline groups, the uptake counts and the hosts of each state ("state:S") of the
    store now, in one grouped query."""
    hosts = core(Host).c
    counts = dict.fromkeys(("exposed", "vulnerable", "backdoored", "clean", "unreported",
                            "unknown", "vulnerable_ever", "confirmed", "dropped"), 0)
    unreported = hosts.unreported_since.is_not(None)
    ever = hosts.first_vulnerable_at.is_not(None)
    fixed = hosts.first_patched_at.is_not(None)
    for state, gone, was_vulnerable, confirmed, n in session.execute(
            select(hosts.state, unreported, ever, fixed, func.count())
            .group_by(hosts.state, unreported, ever, fixed)):
        counts[headline_group(state, bool(gone))] += n
        key = f"state:{state or 'unknown'}"
        counts[key] = counts.get(key, 0) + n
        if was_vulnerable:
            counts["vulnerable_ever"] += n
            if confirmed:
                counts["confirmed"] += n
            elif gone and state and HostState(state) not in COMPROMISED:
                counts["dropped"] += n
    return counts


def record_day(session: Session, latest: datetime) -> None:
    """Write the counts as they stand for the latest day of evidence (a file about an earlier
    day rewrites the latest day's row: the counts are those of now)."""
    day = latest.replace(hour=0, minute=0, second=0, microsecond=0)
    last = session.scalar(select(func.max(DailyStates.day)))
    if last is not None and last > day:
        day = last
    counts = campaign_counts(session)
    figures = campaign_figures(session, counts)
    session.execute(delete(DailyStates).where(DailyStates.day == day))
    session.execute(insert(DailyStates).values(day=day, figures=orjson.dumps(figures).decode(),
                                               **{k: counts[k] for k in (
                                                   "exposed", "vulnerable", "backdoored",
                                                   "clean", "unreported", "vulnerable_ever",
                                                   "confirmed", "dropped")}))


def refresh_day(session: Session) -> None:
    """Rewrite the latest day's figures after a change that is not evidence (a contacts
    import moves hosts between owners and sectors)."""
    last = session.scalar(select(func.max(DailyStates.day)))
    if last is not None:
        record_day(session, last)


def uptake_curve(session: Session) -> list[dict[str, Any]]:
    """Per day of evidence: of the hosts ever seen vulnerable, the share confirmed fixed (a
    scan or hunt report said patched or clean) and the share no longer reported."""
    curve: list[dict[str, Any]] = []
    for row in session.scalars(select(DailyStates).order_by(DailyStates.day)):
        ever = row.vulnerable_ever
        curve.append({"day": f"{row.day:%Y-%m-%d}", "vulnerable_ever": ever,
                      "patched": row.confirmed, "unreported": row.dropped,
                      "patched_share": row.confirmed / ever if ever else 0.0,
                      "unreported_share": row.dropped / ever if ever else 0.0})
    return curve


def states_by_day(session: Session, max_days: int) -> list[dict[str, Any]]:
    """The headline groups at the end of each day of evidence (the last `max_days`)."""
    rows = list(session.scalars(select(DailyStates).order_by(DailyStates.day.desc())
                                .limit(max_days)))
    return [{"day": f"{r.day:%Y-%m-%d}", "exposed": r.exposed, "vulnerable": r.vulnerable,
             "unreported": r.unreported, "backdoored": r.backdoored, "clean": r.clean}
            for r in reversed(rows)]


def held_back_days(session: Session) -> list[dict[str, Any]]:
    return [{"day": f"{r.day:%Y-%m-%d}", "report_type": r.report_type, "listed": r.listed,
             "reason": r.reason}
            for r in session.scalars(select(ReportDay).where(ReportDay.held_back)
                                     .order_by(ReportDay.day))]


_COUNTED = ("exposed", "vulnerable", "backdoored", "clean", "unreported", "vulnerable_ever",
            "confirmed", "dropped")


def backfill_days(session: Session) -> int:
    """daily_states for a store filled before they were kept (the absence migration runs
    this): each day of evidence's headline groups by replaying every host's evidence runs
    through the tracking rules, and the uptake from each host's first vulnerable and first
    patched sightings. Absence is not replayed (the reports' listings were not kept), so
    before the latest day no host counts as no longer reported; the latest day's row holds
    the counts of now (record_day). The number of days written; none when the store has
    daily_states already or no hosts."""
    if session.scalar(select(func.count()).select_from(DailyStates)):
        return 0
    deltas = _day_deltas(session)
    if not deltas:
        return 0
    days = sorted(deltas)
    running = dict.fromkeys(_COUNTED, 0)
    rows = []
    for day in days:
        for key, change in deltas[day].items():
            if key in running:
                running[key] += change
        rows.append({"day": day, "figures": "{}", **running})
    if len(rows) > 1:
        session.execute(insert(DailyStates), rows[:-1])
    record_day(session, days[-1])
    return len(rows)


def _day_deltas(session: Session) -> dict[datetime, dict[str, int]]:
    """Per day of evidence, how each count moved that day (one pass over the runs in host
    order: a host adds to a group on the day it enters it and leaves the one it was in)."""
    runs, hosts = core(Observation).c, core(Host).c
    query = (select(runs.host_id, runs.state, runs.seen_at, runs.last_seen_at, runs.source,
                    hosts.last_seen, hosts.first_vulnerable_at, hosts.first_patched_at)
             .join(core(Host), hosts.id == runs.host_id)
             .order_by(runs.host_id, runs.seen_at, runs.id))
    deltas: dict[datetime, dict[str, int]] = {}

    def move(at: datetime, key: str, change: int) -> None:
        day = at.replace(hour=0, minute=0, second=0, microsecond=0)
        counts = deltas.setdefault(day, {})
        counts[key] = counts.get(key, 0) + change

    host_runs: list[tuple[Any, ...]] = []
    for row in [*fetch_rows(session, query), None]:
        if host_runs and (row is None or row[0] != host_runs[0][0]):
            _replay_host(host_runs, move)
            host_runs = []
        if row is not None:
            host_runs.append(row)
    return deltas


def _replay_host(runs: list[tuple[Any, ...]], move: Callable[[datetime, str, int], None]
                 ) -> None:
    _, _, _, _, _, last_seen, first_vulnerable, first_patched = runs[0]
    points = run_points([(state, seen, until, source)
                         for _, state, seen, until, source, *_ in runs], last_seen)
    state: HostState | None = None
    last_scan: HostState | None = None
    group: str | None = None
    for at, seen, source in points:
        if source != "hunt" and seen in SCAN_STATES:
            last_scan = seen
        state = next_state(state, seen, last_scan)
        now_in = headline_group(state.value)
        if group is not None:
            move(at, group, -1)
        move(at, now_in, 1)  # every sighting's day is a day of evidence, moved or not
        group = now_in
    if first_vulnerable is not None:
        move(first_vulnerable, "vulnerable_ever", 1)
        if first_patched is not None:
            move(max(first_vulnerable, first_patched), "confirmed", 1)
