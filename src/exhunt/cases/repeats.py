"""The rows of a daily report that only repeat what the store holds, settled column-wise.

After the first report, most rows of each daily report say of a host what its open evidence
run already says: the same finding from the same source, seen again later. All such a row
moves is the host's last sighting and what it describes (names, NAICS code). These rows are
found by comparing whole columns (the file's plain rows aligned with the stored hosts and
their open runs) and settled with one UPDATE per host. Every other row goes to FileWork,
which takes it one host at a time: a new host, a new finding, a late sighting, a host named
twice in the file, and any row whose state tracking could still move something. A
differential test holds both routes to the same store.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import String, and_, case, cast, func, or_, select
from sqlalchemy.orm import Session

from exhunt.store.bulk import bulk_update, core, driver_times, fetch_table, in_parts
from exhunt.store.models import RANK, Host, HostState, Observation

# A repeat of these moves nothing but the last sighting once the host is in that state (with
# its worst state at least as bad). A clean or patched report is left to FileWork: a clean
# hunt consults the last scan, and a resolved state may still set first_patched_at.
REPEATABLE = (HostState.EXPOSED, HostState.VULNERABLE, HostState.EXPLOITED, HostState.BACKDOOR,
              HostState.REENTERED)
# The finding an open run holds, as one text: source, state, evidence, build. Plain rows hold
# no control characters, so a stored text with extra separators never equals a file's.
_SEP, _NO_BUILD = "\x1f", "\x1e"
_TEXT = pa.string()
_STORED = pa.schema([("ip", _TEXT), ("h_id", pa.int64()), ("h_last_seen", _TEXT),
                     ("h_finding", _TEXT)])


def settle_repeats(session: Session, table: pa.Table, elsewhere: set[str],
                   held: pa.Table | None = None) -> tuple[int, pa.Table]:
    """(rows that moved a host's last sighting, the rows left for FileWork). `elsewhere`: the
    addresses the file names in rows outside `table` (their hosts go to FileWork whole);
    `held`: what held_hosts read, if it did."""
    if table.num_rows == 0:
        return 0, table
    ips = table.column("ip")
    once = _named_once(ips, elsewhere)
    stored = held if held is not None else _held(session, pc.filter(ips, once))
    if stored is None:
        return 0, table
    # each row's stored host, aligned row for row (null where none is stored, or where the
    # file names the address more than once); masks and single columns from here on, as a
    # daily report's table is too wide to copy
    where = pc.if_else(once, pc.index_in(ips, value_set=stored.column("ip")), None)
    aligned = stored.take(where)
    repeat = _repeats(table, aligned)
    later = pc.and_(repeat, pc.fill_null(pc.greater(table.column("seen_at"),
                                                    aligned.column("h_last_seen")), False))
    _settle(session, table, aligned.column("h_id"), repeat)
    return pc.sum(later).as_py() or 0, table.filter(pc.invert(repeat))


def _settle(session: Session, rows: pa.Table, host_ids: pa.ChunkedArray,
            repeat: pa.ChunkedArray) -> None:
    """What FileWork would write for the repeats: the last sighting (unchanged when this is the
    very sighting held), and what the row describes where it says anything (names and NAICS
    code from the latest sighting, the AS number where none is held)."""
    def values(column: pa.ChunkedArray) -> list[object]:
        return pc.filter(column, repeat).to_pylist()  # type: ignore[no-any-return]

    c = rows.column
    bulk_update(session, core(Host), ["last_seen", "naics", "hostname", "servername", "asn"],
                list(zip(driver_times(session, pc.filter(c("seen_at"), repeat)),
                         values(c("naics")), values(c("hostname")), values(c("servername")),
                         values(c("asn")), values(host_ids), strict=True)),
                given={"naics", "hostname", "servername"}, unset={"asn"})


def _named_once(ips: pa.ChunkedArray, elsewhere: set[str]) -> pa.ChunkedArray:
    counts = pc.value_counts(ips)
    twice = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    named = pa.concat_arrays([twice, pa.array(sorted(elsewhere), pa.string())])
    return pc.invert(pc.is_in(ips, value_set=named))


def held_hosts(session: Session, expected_rows: int) -> pa.Table | None:
    """Every stored host with its steady finding, read before the file is parsed (so both can
    go on at once) when a file of about `expected_rows` rows names a good share of the store;
    else None, and settle_repeats reads only the hosts the file names."""
    return _held(session, None, expected_rows)


def _held(session: Session, ips: pa.ChunkedArray | None, expected_rows: int = 0
          ) -> pa.Table | None:
    """Stored hosts (among `ips`, or every one): their finding when steady (one open run, whose
    state is the host's and would move nothing if seen again), else null; hosts with several
    open runs are left out (FileWork sorts them out)."""
    hosts, runs = core(Host).c, core(Observation).c
    rank = case({state.value: RANK[state] for state in HostState}, value=hosts.state)
    worst = case({state.value: RANK[state] for state in HostState}, value=hosts.worst_state)
    steady = and_(hosts.state == runs.state, hosts.state.in_([s.value for s in REPEATABLE]),
                  worst >= rank, or_(hosts.state != HostState.VULNERABLE.value,
                                     hosts.first_vulnerable_at.is_not(None)))
    finding = (runs.source + _SEP + runs.state + _SEP + runs.evidence + _SEP
               + func.coalesce(runs.build, _NO_BUILD))
    # the last sighting as text, which Arrow parses faster than Python makes datetimes
    query = (select(hosts.ip, hosts.id, cast(hosts.last_seen, String), case((steady, finding)))
             .join(core(Observation), (runs.host_id == hosts.id) & runs.last_seen_at.is_(None))
             .where(hosts.last_seen.is_not(None)))
    if ips is None:  # in_parts weighs the number of keys only when it reads the whole table
        parts = in_parts(session, query, hosts.ip, range(expected_rows))
        if len(parts) != 1 or parts[0] is not query:
            return None  # a small file against a large store: read its hosts only, later
    else:
        parts = in_parts(session, query, hosts.ip, pc.unique(ips).to_pylist())
    if not parts:
        return None
    table = pa.concat_tables([fetch_table(session, part, _STORED) for part in parts])
    if not table.num_rows:
        return None
    try:
        table = table.set_column(2, "h_last_seen", table.column(2).cast(pa.timestamp("us")))
    except pa.ArrowInvalid:  # a time stored in another form: FileWork reads it the long way
        return None
    counts = pc.value_counts(table.column("h_id"))
    several = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    return table.filter(pc.invert(pc.is_in(table.column("h_id"), value_set=several)))


def _repeats(rows: pa.Table, stored: pa.Table) -> pa.ChunkedArray:
    """Rows whose whole effect in FileWork would be what `_settle` writes: the host's open run
    says the same (same finding, source and build) and is steady, and the row is not late (a
    sighting before the host's last one is checked against every run the host has)."""
    c = rows.column
    finding = pc.binary_join_element_wise(c("source"), c("state"), c("evidence"),
                                          pc.fill_null(c("build"), _NO_BUILD), _SEP)
    same = pc.equal(finding, stored.column("h_finding"))
    not_late = pc.greater_equal(c("seen_at"), stored.column("h_last_seen"))
    return pc.fill_null(pc.and_kleene(same, not_late), False)
