"""Shadowserver scan_exchange CSV read column-wise.

A national CERT's daily report holds hundreds of thousands of rows; reading them one Python
dict at a time costs more than everything the coordinator then does with them. Here pyarrow
splits the file and every per-row rule of `feeds.read_shadowserver` runs on whole columns.
Only rows in the plain form (canonical IPv4 address, 'YYYY-MM-DD HH:MM:SS' time, printable
ASCII text of bounded length) are taken this way; any other row is handed to the row reader's
own function, so both paths give the same sightings and the same rejects (a differential
test holds them to it). A file the column reader cannot map line for line (invalid UTF-8,
NUL bytes, blank lines, quoted line breaks, ragged rows, huge lines) is read by the row
reader whole.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from exhunt.cases.feeds import (
    MAX_FIELD_CHARS,
    RowProblem,
    Sighting,
    normalise_header,
    shadowserver_line,
    shadowserver_report,
)
from exhunt.readers.base import MAX_LINE_BYTES
from exhunt.store.models import HostState

_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"^{_OCTET}(\.{_OCTET}){{3}}$"  # the canonical text only: others go to the row reader
_TIME = (r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]) "
         r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$")
# printable ASCII with no space at either end (and, checked apart, at most MAX_FIELD_CHARS):
# the row reader's strip and cut leave such a value as it is
_PLAIN = r"^([!-~]([ -~]*[!-~])?)?$"
_DIGITS = r"^[0-9]{1,10}$"
_DOUBLED_THEN_TEXT = re.compile(rb'""[^,"\r\n]')
_PRINTABLE = bytes(range(0x20, 0x7F)) + b"\r\n"
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
    data = data.removeprefix(b"\xef\xbb\xbf")
    lines = _line_count(data)
    types = _all_text(data) if lines is not None else None
    if lines is None or types is None or _stray_quotes(data):
        return None
    try:
        # one thread: ingest parses beside its read of the stored hosts, the longer of the two,
        # and Arrow's pool would take the core that read needs
        table = pacsv.read_csv(pa.BufferReader(data), read_options=pacsv.ReadOptions(
            use_threads=False, block_size=8 << 20), convert_options=pacsv.ConvertOptions(
            column_types=types, strings_can_be_null=False,
            quoted_strings_can_be_null=False), parse_options=pacsv.ParseOptions(
            newlines_in_values=False, ignore_empty_lines=False))
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
        return None
    header = [normalise_header(h) for h in table.column_names]
    if "ip" not in header or "timestamp" not in header or len(set(header)) != len(header):
        return None
    if table.num_rows + 1 != lines or not _lines_short(data, table):
        return None
    table = table.rename_columns(header)
    printable = not data.translate(None, _PRINTABLE)
    return _split(table, header, shadowserver_report(name), name, printable)


def _stray_quotes(data: bytes) -> bool:
    """Quotes the row reader keeps as written and Arrow would eat (`""unsafe""`): such a
    file is the row reader's. (Checked only where a doubled quote occurs at all.)"""
    return b'""' in data and _DOUBLED_THEN_TEXT.search(data) is not None


def _line_count(data: bytes) -> int | None:
    """Lines in the file when none is blank and line ends are one kind (else None)."""
    if not data or b"\x00" in data:
        return None
    # the body without its final line end, as bounds (a report is megabytes: no copies)
    end = len(data) - data.endswith(b"\n")
    end -= data.endswith(b"\r", 0, end)
    if (data.find(b"\n\n", 0, end) >= 0 or data.find(b"\n\r\n", 0, end) >= 0
            or data.startswith((b"\n", b"\r"), 0, end)):
        return None
    # a lone CR ends a line for the row reader
    if data.find(b"\r", 0, end) >= 0 and data.count(b"\r", 0, end) != data.count(b"\r\n", 0, end):
        return None
    return data.count(b"\n", 0, end) + 1


def _lines_short(data: bytes, table: pa.Table) -> bool:
    """No line longer than the row reader reads (it cuts there). Bounded from the widest cell
    of each column (each quoted, its quotes doubled) before walking the lines themselves."""
    if len(data) <= MAX_LINE_BYTES:
        return True
    widest = sum(2 * (pc.max(pc.binary_length(table.column(i))).as_py() or 0) + 3
                 for i in range(table.num_columns))
    if widest <= MAX_LINE_BYTES:
        return True
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        if end - start > MAX_LINE_BYTES:
            return False
        start = end + 1
    return True


def _all_text(data: bytes) -> dict[str, pa.DataType] | None:
    """Every header column typed as text (nothing inferred from the values)."""
    first = data.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        names = next(csv.reader([first.decode("utf-8")]))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        return None
    return {n: pa.string() for n in names}


def _split(table: pa.Table, header: list[str], report: str, name: str,
           printable: bool) -> ColumnRead:
    text = {c: table.column(c) if c in header else pa.chunked_array(
        [pa.array([""] * table.num_rows, pa.string())]) for c in USED}
    seen_at = pc.strptime(text["timestamp"], format="%Y-%m-%d %H:%M:%S", unit="us",
                          error_is_null=True)
    timed = pc.match_substring_regex(text["timestamp"], _TIME)
    ok = pc.and_(pc.match_substring_regex(text["ip"], _IPV4), timed)
    # arrow's strptime rolls 2021-02-30 over to March: only a time whose month and day are the
    # ones written is a real one (the rest go to the row reader, which refuses them)
    stamp = pc.if_else(timed, text["timestamp"], "0000-00-00 00:00:00")
    ok = pc.and_(ok, pc.fill_null(pc.and_(_written(stamp, 5, pc.month(seen_at)),
                                          _written(stamp, 8, pc.day(seen_at))), False))
    for column in USED:
        ok = pc.and_(ok, _plain(text[column], printable))
    for column in ("port", "asn"):
        value = text[column]
        ok = pc.and_(ok, pc.or_(pc.equal(value, ""), pc.match_substring_regex(value, _DIGITS)))
    evidence = _evidence(report, text)
    ok = pc.and_(ok, pc.less_equal(pc.utf8_length(evidence), MAX_EVIDENCE))
    lines = pa.array(range(2, table.num_rows + 2), pa.int64())
    plain = pc.filter(pa.table({**text, "seen_at": seen_at, "evidence": evidence,
                                "line": lines}), ok)
    return ColumnRead(_typed(plain), _others(table, header, report, name, ok))


def _written(stamp: pa.ChunkedArray, start: int, value: pa.ChunkedArray) -> pa.ChunkedArray:
    """The two digits at `start` of the time's text (digits there: checked) equal `value`."""
    return pc.equal(pc.cast(pc.utf8_slice_codeunits(stamp, start, start + 2), pa.int64()), value)


def _plain(value: pa.ChunkedArray, printable: bool) -> pa.ChunkedArray:
    """Cells the row reader would keep as they are: printable ASCII with no space at either
    end, at most MAX_FIELD_CHARS long (in a file of printable ASCII only the ends are left to
    check)."""
    if printable:
        edges = pc.or_(pc.starts_with(value, " "), pc.ends_with(value, " "))
        fine = pc.invert(edges)
    else:
        fine = pc.match_substring_regex(value, _PLAIN)
    return pc.and_(fine, pc.less_equal(pc.binary_length(value), MAX_FIELD_CHARS))


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


def _number(text: pa.ChunkedArray, low: int, high: int) -> pa.ChunkedArray:
    """Digits to an int when low < n < high, else null (an empty cell is null too)."""
    numbers = pc.cast(pc.if_else(pc.equal(text, ""), None, text), pa.int64())
    in_range = pc.and_(pc.greater(numbers, low), pc.less(numbers, high))
    return pc.if_else(in_range, numbers, None)


def _or_none(values: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.if_else(pc.equal(values, ""), None, values)


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
        "port": _number(c("port"), 0, 65536),
        "hostname": _or_none(c("hostname")),
        "servername": _or_none(c("servername")),
        "build": _or_none(c("version")),
        "asn": _number(c("asn"), 0, 2**32),
        "country": _or_none(pc.utf8_upper(pc.utf8_slice_codeunits(c("geo"), 0, 8))),
        "naics": _or_none(pc.utf8_slice_codeunits(c("naics"), 0, 16)),
        "feed_sector": _or_none(pc.utf8_slice_codeunits(c("sector"), 0, 128)),
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
