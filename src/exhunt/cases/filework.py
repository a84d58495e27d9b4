"""The store updates for one file's sightings, in one transaction, set at a time: one query per
chunk of addresses, one executemany per table, case bookkeeping once per file.

Each host's sightings are taken in time order against its open evidence run: the same finding
again only moves the host's last sighting; a new finding closes that run and opens another; a
sighting older than the host's last one ("late") is checked against every run the host has and,
when it says something new, stored as a one-sighting run, after which the host's state is
replayed from its runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exhunt.cases.owners import EVENT_COLUMNS, Attributor, CaseBook
from exhunt.cases.shadowcsv import SightingColumns
from exhunt.cases.tracking import (
    SCAN_STATES,
    apply,
    last_scan_state,
    replay,
)
from exhunt.store.bulk import bulk_insert, bulk_update, core, fetch_rows, in_parts
from exhunt.store.models import (
    RANK,
    Event,
    Host,
    HostState,
    IngestedFile,
    Observation,
    run_end,
)


@dataclass(slots=True)
class HostRow:
    """A plain, mutable copy of one hosts row: ingest moves thousands of these per file, and
    the ORM's per-attribute instrumentation cost more than the SQL itself."""

    id: int = 0  # 0 until inserted
    ip: str = ""
    hostname: str | None = None
    servername: str | None = None
    organisation_id: int | None = None
    network: str | None = None
    asn: int | None = None
    as_name: str | None = None
    country: str | None = None
    sector: str | None = None
    sector_source: str | None = None
    naics: str | None = None
    state: str | None = None
    worst_state: str | None = None
    state_since: datetime | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    last_worse_at: datetime | None = None
    first_vulnerable_at: datetime | None = None
    first_patched_at: datetime | None = None
    feed_country: str | None = None
    registry_country: str | None = None
    country_source: str | None = None
    unreported_since: datetime | None = None

    def values(self) -> tuple[object, ...]:
        return _host_values(self)


HOST_COLUMNS: tuple[str, ...] = tuple(c.key for c in core(Host).columns)
assert HostRow.__slots__ == HOST_COLUMNS, "HostRow must mirror the hosts table, in its order"
_host_values = attrgetter(*HOST_COLUMNS)
_NEW_HOST_COLUMNS = tuple(c for c in HOST_COLUMNS if c != "id")
_new_host_values = attrgetter(*_NEW_HOST_COLUMNS)
RUN_COLUMNS = ("host_id", "file_id", "source", "seen_at", "last_seen_at", "state", "port",
               "build", "evidence")


@dataclass(slots=True)
class Run:
    """One evidence run as ingest holds it (see models.Observation)."""

    host: HostRow
    source: str
    state: str
    evidence: str
    build: str | None
    port: int | None
    seen_at: datetime
    last_seen_at: datetime | None = None  # None while open
    id: int = 0  # 0 until inserted

    def says(self, cols: SightingColumns, i: int) -> bool:
        """The same finding from the same source (the port may differ: one server, two
        ports, one finding)."""
        return (self.state == cols.state[i] and self.evidence == cols.evidence[i]
                and self.source == cols.source[i] and self.build == cols.build[i])

    def covers(self, cols: SightingColumns, i: int, host_last_seen: datetime | None) -> bool:
        end = run_end(self.seen_at, self.last_seen_at, host_last_seen)
        return self.seen_at <= cols.seen_at[i] <= end and self.says(cols, i)


def _run_from(host: HostRow, cols: SightingColumns, i: int) -> Run:
    return Run(host, cols.source[i], cols.state[i], cols.evidence[i], cols.build[i],
               cols.port[i], cols.seen_at[i])


class FileWork:
    """What one file's sightings change in the store; `run` returns how many said something
    the store did not hold."""

    def __init__(self, session: Session, ledger: IngestedFile, attributor: Attributor,
                 now: datetime) -> None:
        self.session = session
        self.ledger = ledger
        self.attributor = attributor
        self.now = now
        self.cols = SightingColumns()
        self.added = 0
        self.new_runs: list[Run] = []
        self.closed: list[tuple[datetime, int]] = []  # (last_seen_at, id) of stored runs
        self.open: dict[str, Run] = {}
        self.all_runs: dict[str, list[Run]] = {}  # fetched only for hosts with late sightings
        self.late: set[str] = set()

    def run(self, cols: SightingColumns) -> int:
        if not len(cols):
            return 0
        self.cols = cols
        by_host: dict[str, list[int]] = {}
        for i, ip in enumerate(cols.ip):
            by_host.setdefault(ip, []).append(i)
        hosts, stored = self._hosts_for(by_host)
        self._load_open_runs([hosts[ip] for ip in stored])
        before = {ip: hosts[ip].state for ip in by_host}
        for ip, rows in by_host.items():
            self._take(hosts[ip], rows, ip not in stored)
        new_hosts = [hosts[ip] for ip in sorted(by_host) if ip not in stored]
        self._insert_new_hosts(new_hosts)
        self._write_runs()
        for ip in self.late:
            replay(self.session, hosts[ip])
        for ip, was in before.items():
            self._note_worse(hosts[ip], was)
        self._update_stored_hosts(hosts, stored)
        self._record(hosts, before, stored)
        return self.added

    # --- reading what the store holds ---------------------------------------------------

    def _hosts_for(
        self, by_host: dict[str, list[int]]
    ) -> tuple[dict[str, HostRow], dict[str, tuple[object, ...]]]:
        """Every host the file names, as plain rows; and, for those already stored, their
        values as read (to write back only what changed)."""
        table = core(Host)
        hosts: dict[str, HostRow] = {}
        stored: dict[str, tuple[object, ...]] = {}
        if by_host:
            for query in in_parts(self.session, select(table), table.c.ip, sorted(by_host)):
                for values in fetch_rows(self.session, query):
                    if values[1] in by_host:
                        host = HostRow(*values)
                        hosts[host.ip] = host
                        stored[host.ip] = values
        cols = self.cols
        for ip, rows in by_host.items():
            if ip not in hosts:
                i = rows[0]
                host = HostRow(ip=ip, naics=cols.naics[i], country=cols.country[i],
                               asn=cols.asn[i])
                self.attributor.attribute(host, cols.feed_sector[i])
                hosts[ip] = host
        return hosts, stored

    def _load_open_runs(self, stored: list[HostRow]) -> None:
        if not stored:
            return
        table = core(Observation)
        by_id = {h.id: h for h in stored}
        query = select(table.c.id, table.c.host_id, table.c.source, table.c.state,
                       table.c.evidence, table.c.build, table.c.port, table.c.seen_at
                       ).where(table.c.last_seen_at.is_(None))
        for part in in_parts(self.session, query, table.c.host_id, sorted(by_id)):
            for run_id, host_id, source, state, evidence, build, port, seen_at in fetch_rows(
                    self.session, part):
                host = by_id.get(host_id)
                if host is None:
                    continue
                run = Run(host, source, state, evidence, build, port, seen_at, None, run_id)
                held = self.open.get(host.ip)
                if held is None or (held.seen_at, held.id) < (run.seen_at, run.id):
                    self.open[host.ip] = run

    def _runs_of(self, host: HostRow) -> list[Run]:
        """Every run the host has (for a late sighting), read once per file."""
        if host.ip not in self.all_runs:
            runs: list[Run] = []
            if host.id:
                for o in self.session.execute(
                        select(Observation.id, Observation.source, Observation.state,
                               Observation.evidence, Observation.build, Observation.port,
                               Observation.seen_at, Observation.last_seen_at)
                        .where(Observation.host_id == host.id)):
                    runs.append(Run(host, o.source, o.state, o.evidence, o.build, o.port,
                                    o.seen_at, o.last_seen_at, o.id))
            self.all_runs[host.ip] = runs
        return self.all_runs[host.ip]

    # --- moving one host ----------------------------------------------------------------

    def _take(self, host: HostRow, rows: list[int], is_new: bool) -> None:
        cols = self.cols
        if is_new and len(rows) == 1:  # most of a first report: one sighting, a new host
            self._take_first(host, rows[0])
            return
        if len(rows) > 1:
            rows.sort(key=cols.seen_at.__getitem__)
        self._describe(host, rows[-1])
        run = self.open.get(host.ip)
        last_scan: HostState | None = None
        if not is_new and host.state is not None and any(
                cols.state[i] == HostState.CLEAN for i in rows):
            last_scan = last_scan_state(self.session, host.id)
        for i in rows:
            seen_at = cols.seen_at[i]
            if host.last_seen is not None and seen_at < host.last_seen:
                self._take_late(host, i)
                continue
            if run is not None and run.says(cols, i):
                if seen_at == host.last_seen:
                    continue  # this very sighting is held already
            else:
                if run is not None:
                    self._close(run, host.last_seen or run.seen_at)
                run = _run_from(host, cols, i)
                self.new_runs.append(run)
            self.added += 1
            if host.first_seen is None:
                host.first_seen = seen_at
            host.last_seen = seen_at
            seen = HostState(cols.state[i])
            if cols.source[i] != "hunt" and seen in SCAN_STATES:
                last_scan = seen
            apply(host, seen, seen_at, last_scan)
        if run is not None:
            self.open[host.ip] = run

    def _take_first(self, host: HostRow, i: int) -> None:
        cols = self.cols
        self._describe(host, i)
        run = _run_from(host, cols, i)
        self.new_runs.append(run)
        self.open[host.ip] = run
        self.added += 1
        host.first_seen = host.last_seen = seen_at = cols.seen_at[i]
        seen = HostState(cols.state[i])
        apply(host, seen, seen_at,
              seen if cols.source[i] != "hunt" and seen in SCAN_STATES else None)

    def _take_late(self, host: HostRow, i: int) -> None:
        runs = self._runs_of(host)
        if any(r.covers(self.cols, i, host.last_seen) for r in runs):
            return
        seen_at = self.cols.seen_at[i]
        point = _run_from(host, self.cols, i)
        point.last_seen_at = seen_at
        runs.append(point)
        self.new_runs.append(point)
        self.late.add(host.ip)
        self.added += 1
        host.first_seen = seen_at if host.first_seen is None else min(host.first_seen, seen_at)

    def _close(self, run: Run, end: datetime) -> None:
        if run.id:
            self.closed.append((end, run.id))
        else:
            run.last_seen_at = end

    def _describe(self, host: HostRow, i: int) -> None:
        cols = self.cols
        host.hostname = cols.hostname[i] or host.hostname
        host.servername = cols.servername[i] or host.servername
        if cols.naics[i]:
            host.naics = cols.naics[i]
        if host.asn is None and cols.asn[i] is not None:
            host.asn = cols.asn[i]

    def _note_worse(self, host: HostRow, was: str | None) -> None:
        if host.state and (was is None or RANK[HostState(host.state)] > RANK[HostState(was)]):
            host.last_worse_at = self.now  # when we learned it: drives re-notification

    # --- writing ------------------------------------------------------------------------

    def _insert_new_hosts(self, new_hosts: list[HostRow]) -> None:
        if not new_hosts:
            return
        table = core(Host)
        # ids only grow (SQLite rowid, PostgreSQL sequence): the new rows are the ones above
        # the highest id before the insert, read back in one query rather than one per chunk
        floor = self.session.scalar(select(func.max(table.c.id))) or 0
        bulk_insert(self.session, table, _NEW_HOST_COLUMNS, list(map(_new_host_values, new_hosts)))
        by_ip = {h.ip: h for h in new_hosts}
        for host_id, ip in fetch_rows(self.session,
                                      select(table.c.id, table.c.ip).where(table.c.id > floor)):
            if ip in by_ip:  # a host another run stored meanwhile is not ours
                by_ip[ip].id = host_id
        missing = [ip for ip, h in by_ip.items() if not h.id]
        assert not missing, f"inserted hosts not read back: {missing[:3]}"

    def _write_runs(self) -> None:
        file_id = self.ledger.id
        bulk_insert(self.session, core(Observation), RUN_COLUMNS, [
            (r.host.id, file_id, r.source, r.seen_at, r.last_seen_at, r.state, r.port, r.build,
             r.evidence) for r in self.new_runs])
        bulk_update(self.session, core(Observation), ["last_seen_at"], self.closed)

    def _update_stored_hosts(self, hosts: dict[str, HostRow],
                             stored: dict[str, tuple[object, ...]]) -> None:
        update_moved_hosts(self.session, ((hosts[ip], was) for ip, was in stored.items()))

    def _record(self, hosts: dict[str, HostRow], before: dict[str, str | None],
                stored: dict[str, tuple[object, ...]]) -> None:
        """History and cases: a line per stored host whose state moved, one line per case for
        the hosts it gained, and every touched organisation's case opened or re-judged."""
        events: list[tuple[object, ...]] = []
        gained: dict[int, Counter[str]] = {}
        touched: set[int] = set()
        for ip, was in before.items():
            host = hosts[ip]
            if host.organisation_id is not None:
                touched.add(host.organisation_id)
                if ip not in stored:
                    assert host.state is not None, "a new host has its first sighting's state"
                    gained.setdefault(host.organisation_id, Counter())[host.state] += 1
            if ip in stored and host.state != was:
                events.append((None, host.id, "host-state", self.now,
                               f"{ip}: {was or 'new'} -> {host.state}"))
        cases = CaseBook(self.session, self.attributor, self.now)
        case_ids = cases.ensure(touched)
        for org_id, states in sorted(gained.items()):
            events.append((case_ids[org_id], None, "hosts-added", self.now,
                           _gained_text(states)))
        events.extend(cases.judge(touched))
        bulk_insert(self.session, core(Event), EVENT_COLUMNS, events)


def update_moved_hosts(session: Session,
                       hosts: Iterable[tuple[HostRow, tuple[object, ...]]]) -> None:
    """Write back the hosts whose values moved since they were read (each with its values as
    read), one executemany per set of moved columns: a daily report mostly moves last_seen
    alone, and an UPDATE that sets only that column leaves the hosts' indexes alone."""
    by_columns: dict[tuple[int, ...], list[tuple[object, ...]]] = {}
    for host, was in hosts:
        now = host.values()
        moved = tuple(i for i, (a, b) in enumerate(zip(now, was, strict=True)) if a != b)
        if moved:
            by_columns.setdefault(moved, []).append((*(now[i] for i in moved), host.id))
    for moved, rows in by_columns.items():
        bulk_update(session, core(Host), [HOST_COLUMNS[i] for i in moved], rows)


def _gained_text(states: Counter[str]) -> str:
    """'3 hosts first seen: 1 backdoor, 2 vulnerable' (worst first)."""
    total = sum(states.values())
    ranked = sorted(states.items(), key=lambda item: (-RANK[HostState(item[0])], item[0]))
    parts = ", ".join(f"{n} {state}" for state, n in ranked)
    return f"{total} host{'s' if total != 1 else ''} first seen: {parts}"
