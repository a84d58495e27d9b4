"""Shadowserver scan_exchange CSV taken as sightings, column-wise.

A national CERT's daily report holds hundreds of thousands of rows; reading them one Python
dict at a time costs more than everything the coordinator then does with them. The file is
split into columns by readers/shadowserver.py and every per-row rule of
`feeds.read_shadowserver` runs here on whole columns. Only rows in the plain form (canonical
IPv4 address, 'YYYY-MM-DD HH:MM:SS' time, printable ASCII text of bounded length) are taken
this way; any other row is handed to the row reader's own function, so both paths give the
same sightings and the same rejects (a differential test holds them to it). A file the column
reader cannot map line for line is read by the row reader whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from exhunt.cases.feeds import RowProblem, Sighting, shadowserver_line, shadowserver_report
from exhunt.readers.feeds import MAX_FIELD_CHARS
from exhunt.readers.shadowserver import (
    DIGITS,
    IPV4,
    TIME_PLAIN,
    number,
    or_none,
    plain_cells,
    read_text_table,
    written,
)
from exhunt.store.models import HostState

EVIDENCE_COLUMNS = ("version", "servername", "url", "severity", "hostname")
USED = ("ip", "timestamp", "tag", "port", "asn", "geo", "naics", "sector", *EVIDENCE_COLUMNS)
MAX_EVIDENCE = MAX_FIELD_CHARS * 2


@dataclass(slots=True)
class SightingColumns:
    """Many sightings as parallel lists, one per field (what `Sighting` holds for one)."""

    source: list[str] = field(default_factory=list)
    ip: list[str] = field(default_factory=list)
    seen_at: list[datetime] = field(default_factory=list)
    state: list[str] = field(default_factory=list)  # HostState values
    evidence: list[str] = field(default_factory=list)
    line: list[int | None] = field(default_factory=list)
    port: list[int | None] = field(default_factory=list)
    hostname: list[str | None] = field(default_factory=list)
    servername: list[str | None] = field(default_factory=list)
    build: list[str | None] = field(default_factory=list)
    asn: list[int | None] = field(default_factory=list)
    country: list[str | None] = field(default_factory=list)
    naics: list[str | None] = field(default_factory=list)
    feed_sector: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ip)

    def append(self, s: Sighting) -> None:
        assert s.ip is not None, "only sightings tied to an address go in columns"
        for name in self.__slots__:
            value = s.state.value if name == "state" else getattr(s, name)
            getattr(self, name).append(value)

    def extend(self, other: SightingColumns) -> None:
        for name in self.__slots__:
            getattr(self, name).extend(getattr(other, name))

    def sighting(self, i: int) -> Sighting:
        return Sighting(self.source[i], self.ip[i], self.seen_at[i], HostState(self.state[i]),
                        self.evidence[i], self.line[i], self.port[i], self.hostname[i],
                        self.servername[i], self.build[i], self.asn[i], self.country[i],
                        self.naics[i], self.feed_sector[i])

    def sightings(self) -> Iterator[Sighting]:
        return (self.sighting(i) for i in range(len(self)))

    @classmethod
    def empty_table(cls) -> pa.Table:
        """A table of no sightings, with the columns `from_table` reads."""
        return pa.table({name: pa.array([], pa.null()) for name in cls.__slots__})

    @classmethod
    def from_table(cls, table: pa.Table) -> SightingColumns:
        """Python values of a table of sightings (one list per column)."""
        return cls(**{name: table.column(name).to_pylist() for name in cls.__slots__})

    @classmethod
    def of(cls, sightings: Sequence[Sighting]) -> SightingColumns:
        columns = cls()
        for s in sightings:
            columns.append(s)
        return columns


@dataclass(slots=True)
class ColumnRead:
    """What the column reader made of a file: the plain rows as one Arrow table (columns named
    and typed as in SightingColumns), the rest as rows."""

    table: pa.Table
    others: list[Sighting | RowProblem]

    @property
    def columns(self) -> SightingColumns:
        return SightingColumns.from_table(self.table)


def read_shadowserver_columns(data: bytes, name: str) -> ColumnRead | None:
    """The file's rows, or None when only the row reader can map it line for line."""
    read = read_text_table(data, required=("ip", "timestamp"))
    if read is None:
        return None
    return _split(read.table, read.header, shadowserver_report(name), name, read.printable)


def _split(table: pa.Table, header: list[str], report: str, name: str,
           printable: bool) -> ColumnRead:
    text = {c: table.column(c) if c in header else pa.chunked_array(
        [pa.array([""] * table.num_rows, pa.string())]) for c in USED}
    seen_at = pc.strptime(text["timestamp"], format="%Y-%m-%d %H:%M:%S", unit="us",
                          error_is_null=True)
    timed = pc.match_substring_regex(text["timestamp"], TIME_PLAIN)
    ok = pc.and_(pc.match_substring_regex(text["ip"], IPV4), timed)
    # arrow's strptime rolls 2021-02-30 over to March: only a time whose month and day are the
    # ones written is a real one (the rest go to the row reader, which refuses them)
    stamp = pc.if_else(timed, text["timestamp"], "0000-00-00 00:00:00")
    ok = pc.and_(ok, pc.fill_null(pc.and_(written(stamp, 5, pc.month(seen_at)),
                                          written(stamp, 8, pc.day(seen_at))), False))
    for column in USED:
        ok = pc.and_(ok, plain_cells(text[column], printable))
    for column in ("port", "asn"):
        value = text[column]
        ok = pc.and_(ok, pc.or_(pc.equal(value, ""), pc.match_substring_regex(value, DIGITS)))
    evidence = _evidence(report, text)
    ok = pc.and_(ok, pc.less_equal(pc.utf8_length(evidence), MAX_EVIDENCE))
    lines = pa.array(range(2, table.num_rows + 2), pa.int64())
    plain = pc.filter(pa.table({**text, "seen_at": seen_at, "evidence": evidence,
                                "line": lines}), ok)
    return ColumnRead(_typed(plain), _others(table, header, report, name, ok))


def _evidence(report: str, text: dict[str, pa.ChunkedArray]) -> pa.ChunkedArray:
    parts: list[pa.ChunkedArray | str] = [
        pc.binary_join_element_wise(f"Shadowserver {report}: tag=", text["tag"], "")]
    for column in EVIDENCE_COLUMNS:
        value = text[column]
        parts.append(pc.if_else(pc.equal(value, ""), "",
                                pc.binary_join_element_wise(f"; {column}=", value, "")))
    return pc.binary_join_element_wise(*parts, "")


def _state(tag: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.if_else(pc.match_substring(tag, "webshell", ignore_case=True),
                      HostState.BACKDOOR.value,
                      pc.if_else(pc.match_substring(tag, "cve-", ignore_case=True),
                                 HostState.VULNERABLE.value, HostState.EXPOSED.value))


def _typed(plain: pa.Table) -> pa.Table:
    """The plain rows as sightings: SightingColumns' names, Python's types."""
    c = plain.column
    return pa.table({
        "source": pa.repeat("shadowserver", plain.num_rows),
        "ip": c("ip"),
        "seen_at": c("seen_at"),
        "state": _state(c("tag")),
        "evidence": c("evidence"),
        "line": c("line"),
        "port": number(c("port"), 0, 65536),
        "hostname": or_none(c("hostname")),
        "servername": or_none(c("servername")),
        "build": or_none(c("version")),
        "asn": number(c("asn"), 0, 2**32),
        "country": or_none(pc.utf8_upper(pc.utf8_slice_codeunits(c("geo"), 0, 8))),
        "naics": or_none(pc.utf8_slice_codeunits(c("naics"), 0, 16)),
        "feed_sector": or_none(pc.utf8_slice_codeunits(c("sector"), 0, 128)),
    })


def _others(table: pa.Table, header: list[str], report: str, name: str,
            ok: pa.ChunkedArray) -> list[Sighting | RowProblem]:
    """The rows not in the plain form, each read by the row reader's own rule."""
    rest = pc.indices_nonzero(pc.invert(ok)).to_pylist()
    if not rest:
        return []
    columns = [table.column(i) for i in range(table.num_columns)]
    out: list[Sighting | RowProblem] = []
    for index in rest:
        values = [str(col[index].as_py()) for col in columns]
        row = shadowserver_line(report, name, index + 2, header, values)
        if row is not None:
            out.append(row)
    return out
