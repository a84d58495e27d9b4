"""How a host's state moves on evidence, and when a case is open.

Rules (why): patching closes the hole but removes no back door, so a compromised host stays
compromised until a hunt report says clean; a clean hunt report on a host whose last scan
still showed a vulnerable build leaves it vulnerable; any later evidence of a flaw or a back
door reopens a host that was patched or clean.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from exhunt.store.models import (
    COMPROMISED,
    RANK,
    HostState,
    Observation,
    run_end,
)

RESOLVED_STATES = frozenset({HostState.CLEAN, HostState.PATCHED})
SCAN_STATES = frozenset({HostState.VULNERABLE, HostState.PATCHED, HostState.EXPOSED})


class Tracked(Protocol):
    """What state tracking reads and moves on a host: the ORM row or a plain in-memory copy
    (ingest works on plain copies, the ORM's per-attribute bookkeeping costs too much)."""

    state: str | None
    worst_state: str | None
    state_since: datetime | None
    first_vulnerable_at: datetime | None
    first_patched_at: datetime | None
    last_seen: datetime | None

    @property
    def id(self) -> int: ...


def worse(a: HostState | None, b: HostState) -> HostState:
    return b if a is None or RANK[b] > RANK[a] else a


def next_state(
    current: HostState | None, seen: HostState, last_scan: HostState | None
) -> HostState:
    if seen in COMPROMISED:
        return worse(current, seen) if current in COMPROMISED else seen
    if seen is HostState.CLEAN:
        return HostState.VULNERABLE if last_scan is HostState.VULNERABLE else HostState.CLEAN
    if current in COMPROMISED:
        return current
    if seen is HostState.EXPOSED:
        return current or HostState.EXPOSED
    if seen is HostState.PATCHED and current is HostState.CLEAN:
        return HostState.CLEAN
    return seen


def apply(host: Tracked, seen: HostState, at: datetime, last_scan: HostState | None) -> bool:
    """Move `host` on one observation; True when its state changed."""
    before = HostState(host.state) if host.state else None
    after = next_state(before, seen, last_scan)
    host.worst_state = worse(HostState(host.worst_state) if host.worst_state else None,
                             after).value
    if seen is HostState.VULNERABLE and host.first_vulnerable_at is None:
        host.first_vulnerable_at = at
    if (after in RESOLVED_STATES and host.first_vulnerable_at is not None
            and host.first_patched_at is None):
        host.first_patched_at = at
    if after is before:
        return False
    host.state = after.value
    host.state_since = at
    return True


RunRow = tuple[str, datetime, datetime | None, str]  # state, seen_at, last_seen_at, source


def run_points(runs: Iterable[RunRow], host_last_seen: datetime | None
               ) -> list[tuple[datetime, HostState, str]]:
    """A host's evidence runs as the sightings that matter for its state, in time order: each
    run's first sighting and, when later, its last one (an open run ends at the host's last
    sighting). Sightings inside a run repeat what its ends say."""
    points: list[tuple[datetime, int, HostState, str]] = []
    for order, (state, seen_at, last_seen_at, source) in enumerate(runs):
        seen = HostState(state)
        points.append((seen_at, order, seen, source))
        end = run_end(seen_at, last_seen_at, host_last_seen)
        if end > seen_at:
            points.append((end, order, seen, source))
    points.sort(key=lambda p: (p[0], p[1]))
    return [(at, seen, source) for at, _, seen, source in points]


def replay(session: Session, host: Tracked) -> None:
    """Recompute a host's state from all its evidence runs (used when evidence arrives out of
    time order)."""
    runs = session.execute(
        select(Observation.state, Observation.seen_at, Observation.last_seen_at,
               Observation.source)
        .where(Observation.host_id == host.id)
        .order_by(Observation.seen_at, Observation.id)
    ).all()
    replay_points(host, run_points(runs, host.last_seen))


def replay_points(host: Tracked, points: Iterable[tuple[datetime, HostState, str]]) -> None:
    host.state = None
    host.worst_state = None
    host.state_since = None
    host.first_vulnerable_at = host.first_patched_at = None
    last_scan: HostState | None = None
    for at, seen, source in points:
        if source != "hunt" and seen in SCAN_STATES:
            last_scan = seen
        apply(host, seen, at, last_scan)


def last_scan_state(session: Session, host_id: int) -> HostState | None:
    """What the latest scan (not hunt) evidence said: the open run when it is a scan's,
    else the scan run that ended last."""
    state = session.scalar(
        select(Observation.state)
        .where(Observation.host_id == host_id, Observation.source != "hunt",
               Observation.state.in_([s.value for s in SCAN_STATES]))
        .order_by(Observation.last_seen_at.is_(None).desc(), Observation.last_seen_at.desc(),
                  Observation.id.desc())
        .limit(1)
    )
    return HostState(state) if state else None


HEADLINE_GROUPS = ("exposed", "vulnerable", "unreported", "backdoored", "clean")


def headline_group(state: str | None, unreported: bool = False) -> str:
    """The campaign's headline groups: back doors and exploitation count as back-doored
    (reported or not: a report leaving one out proves nothing); confirmed patched or clean as
    clean; a vulnerable or exposed host no longer reported as unreported."""
    if state is None:
        return "unknown"
    s = HostState(state)
    if s in COMPROMISED:
        return "backdoored"
    if s in RESOLVED_STATES:
        return "clean"
    return "unreported" if unreported else s.value


def hosts_worst(states: Iterable[str | None]) -> HostState | None:
    result: HostState | None = None
    for state in states:
        if state:
            result = worse(result, HostState(state))
    return result
