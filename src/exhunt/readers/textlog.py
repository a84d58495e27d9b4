"""Text logs with a `#Fields:` header: Exchange CSV logs, IIS W3C, and free text.

Exchange writes its logs (HttpProxy, ECP Server, Rps_Http, ...) as CSV whose
columns are named by the file's own `#Fields:` line; IIS writes W3C extended
logs whose `#Fields:` line may change in the middle of a file. Both are read
here by their headers, never by a fixed column list. The reader streams in
large chunks, counts every line, and splits into columns only the lines the
prefilter lets through.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from functools import lru_cache
from typing import BinaryIO, Protocol

from exhunt.model import LogRecord, RecordKind
from exhunt.readers.base import MAX_LINE_BYTES, BoundedGzip, CountingRaw, ReadStats
from exhunt.readers.exchange import RPS_HTTP_FIELDS, parse_cmdlet, parse_event_data
from exhunt.readers.prefilter import LiteralFilter
from exhunt.readers.sniff import sniff_encoding, text_decoder

CHUNK_BYTES = 8 << 20
# The raw line kept on a record for evidence.
MAX_RAW_CHARS = 64 << 10

# Logs whose checks read the message text rather than columns keep the raw line; others
# do not, since a record per matched line is held until the hunt ends.
RAW_KINDS = frozenset({RecordKind.OAB_GENERATOR})
# Columns of logs that some builds write without a #Fields line; a #Fields line wins.
DEFAULT_FIELDS: dict[RecordKind, tuple[str, ...]] = {RecordKind.RPS_HTTP: RPS_HTTP_FIELDS}
# Columns in which a log names the server that wrote it.
HOST_COLUMNS = ("ServerHostName", "ServerName", "s-computername")
_LEADING_TIME = re.compile(r"^\s*(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?Z?)")


class ByteSource(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class LogSyntax(Enum):
    CSV = "csv"          # Exchange: comma-separated, double quotes doubled inside quoted fields
    W3C = "w3c"          # IIS: space-separated, spaces inside values encoded as '+'
    FREE_TEXT = "text"   # no #Fields line: the whole line is the message


SYNTAX_BY_KIND: dict[RecordKind, LogSyntax] = {
    RecordKind.HTTPPROXY: LogSyntax.CSV,
    RecordKind.ECP_SERVER: LogSyntax.CSV,
    RecordKind.OAB_GENERATOR: LogSyntax.CSV,
    RecordKind.RPS_HTTP: LogSyntax.CSV,
    RecordKind.RPS_CMDLET: LogSyntax.CSV,
    RecordKind.IIS: LogSyntax.W3C,
}


@dataclass(slots=True)
class _Cursor:
    """Where the reader is in one file."""

    syntax: LogSyntax
    fields: tuple[str, ...] = ()
    line_no: int = 0            # lines before the current chunk
    first_done: bool = False
    last_data: bytes = b""
    last_fields: tuple[str, ...] = ()
    skipping_long: bool = False
    misaligned: int = 0


def open_log_stream(raw: BinaryIO, stats: ReadStats) -> ByteSource:
    """Undo gzip and UTF-16 so the reader sees UTF-8-compatible bytes."""
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(CountingRaw(raw))
    head = buffered.peek(4)[:4]
    if head[:2] == b"\x1f\x8b":
        return BoundedGzip(buffered)
    if sniff_encoding(head)[0].startswith("utf-16"):  # the readers' one sniffer
        stats.meta["encoding"] = "utf-16"
        return _Utf16ToUtf8(buffered)
    return buffered


def read_text_log(
    raw: BinaryIO,
    kind: RecordKind,
    stats: ReadStats,
    prefilter: LiteralFilter,
) -> Iterator[LogRecord]:
    """Records of the lines that pass `prefilter`; every line is counted in `stats`."""
    return (record for record, _ in read_matched_lines(raw, kind, stats, prefilter))


# Chunk buffers kept for the next file: a fresh 9 MB buffer per hourly log of a few hundred
# kB costs more in zeroed pages than reading the log does.
_SPARE_BUFFERS: list[bytearray] = []


# Asked with a raw line and its bits before the line is parsed: False skips it (counted).
LineWanted = Callable[[bytes, int], bool]


def read_matched_lines(
    raw: BinaryIO,
    kind: RecordKind,
    stats: ReadStats,
    prefilter: LiteralFilter,
    wanted: LineWanted | None = None,
) -> Iterator[tuple[LogRecord, int]]:
    """As read_text_log, each record with the bits (LiteralFilter.mask_of) of what it holds;
    lines `wanted` refuses are counted but never parsed."""
    cursor = _Cursor(syntax=SYNTAX_BY_KIND.get(kind, LogSyntax.FREE_TEXT),
                     fields=DEFAULT_FIELDS.get(kind, ()))
    stream = open_log_stream(raw, stats)
    # One buffer per file, refilled in place: fresh 8 MB objects per chunk cost page faults.
    buf = _SPARE_BUFFERS.pop() if _SPARE_BUFFERS else bytearray(CHUNK_BYTES + MAX_LINE_BYTES + 2)
    try:
        yield from _read_into(buf, stream, kind, cursor, stats, prefilter, wanted)
    finally:
        _SPARE_BUFFERS.append(buf)


def _read_into(
    buf: bytearray,
    stream: ByteSource,
    kind: RecordKind,
    cursor: _Cursor,
    stats: ReadStats,
    prefilter: LiteralFilter,
    wanted: LineWanted | None,
) -> Iterator[tuple[LogRecord, int]]:
    view = memoryview(buf)
    filled = 0
    try:
        while n := _fill(stream, view[filled : filled + CHUNK_BYTES]):
            lo, end = 0, filled + n
            if cursor.skipping_long:
                nl = buf.find(b"\n", 0, end)
                if nl < 0:
                    filled = 0
                    continue
                lo, cursor.skipping_long = nl + 1, False
                cursor.line_no += 1
            cut = max(buf.rfind(b"\n", lo, end) + 1, lo)
            if cut > lo:
                yield from _chunk_records(buf, lo, cut, kind, cursor, stats, prefilter, wanted)
            filled = end - cut
            if filled > MAX_LINE_BYTES:
                stats.bad_line(cursor.line_no + 1, f"line longer than {MAX_LINE_BYTES} bytes")
                cursor.skipping_long, filled = True, 0
            else:
                buf[0:filled] = buf[cut:end]
    except (OSError, EOFError, ValueError) as exc:
        stats.fail(f"read stopped after line {cursor.line_no}: {exc}")
    if filled and not cursor.skipping_long:
        # The last line had no newline: a file cut short, or simply unterminated.
        buf[filled] = 0x0A
        yield from _chunk_records(buf, 0, filled + 1, kind, cursor, stats, prefilter,
                                  wanted)
    view.release()
    _close_window(cursor, stats)
    if cursor.misaligned:
        stats.fail(f"{cursor.misaligned} lines did not have the {len(cursor.fields)} columns "
                   "that #Fields names; read by position")
    stats.summarize()


def _fill(stream: ByteSource, target: memoryview) -> int:
    """Read into `target` without a new object where the stream allows it."""
    if isinstance(stream, io.BufferedReader):
        return stream.readinto(target)
    data = stream.read(len(target))
    target[: len(data)] = data
    return len(data)


def _chunk_records(
    buf: bytearray,
    lo: int,
    hi: int,
    kind: RecordKind,
    cursor: _Cursor,
    stats: ReadStats,
    prefilter: LiteralFilter,
    wanted: LineWanted | None = None,
) -> Iterator[tuple[LogRecord, int]]:
    """Records of buf[lo:hi], whole lines each ending with a newline."""
    found = prefilter.scan(buf, lo, hi)
    if not cursor.first_done:
        _open_window(buf, lo, hi, found.headers, cursor, stats)
    header_set, junk_set = set(found.headers), set(found.junk)
    masks = dict(zip(found.matches, found.masks, strict=True))
    base, counted_to = cursor.line_no, lo
    for start in sorted({*found.headers, *found.matches, *found.junk}):
        base += buf.count(b"\n", counted_to, start)
        counted_to = start
        raw_line = bytes(buf[start : buf.find(b"\n", start, hi)]).rstrip(b"\r")
        if start in header_set:
            _take_header(raw_line, cursor, stats)
        elif start in junk_set:
            stats.bad_line(base + 1, "binary data (NUL bytes) in a text log")
        elif len(raw_line) > MAX_LINE_BYTES:
            stats.bad_line(base + 1, f"line longer than {MAX_LINE_BYTES} bytes")
        elif raw_line:
            mask = masks.get(start, 0)
            if wanted is not None and not wanted(raw_line, mask):
                continue
            record = _parse_line(raw_line, base + 1, kind, cursor, stats)
            if record is not None:
                yield record, mask
    lines = base - cursor.line_no + buf.count(b"\n", counted_to, hi)
    stats.records += lines - len(found.headers)
    _remember_last(buf, lo, hi, header_set, cursor)
    cursor.line_no += lines


def _take_header(line: bytes, cursor: _Cursor, stats: ReadStats) -> None:
    text = decode_line(line)
    if not text.startswith("#") or ":" not in text:
        return
    name, _, value = text[1:].partition(":")
    value = value.strip()
    if name == "Fields":
        cursor.fields = _field_names(value, "," if cursor.syntax is LogSyntax.CSV else " ")
    elif name in ("Version", "Software", "Log-type") and name not in stats.meta:
        stats.meta[name] = value[:200]


@lru_cache(maxsize=256)
def _field_names(value: str, sep: str) -> tuple[str, ...]:
    # Every hourly file repeats the same header: split it once.
    return tuple(part.strip() for part in value.split(sep) if part.strip())


def _parse_line(
    line: bytes, line_no: int, kind: RecordKind, cursor: _Cursor, stats: ReadStats
) -> LogRecord | None:
    text = decode_line(line)
    values = split_values(text, cursor)
    if values is None:
        stats.bad_line(line_no, "not a line of this log's format")
        return None
    if cursor.fields and len(values) != len(cursor.fields):
        # Another build's column set, or a line cut short: read by position, and say so.
        cursor.misaligned += 1
    columns = dict(zip(cursor.fields, values, strict=False)) if cursor.fields else {}
    if kind is RecordKind.ECP_SERVER and "EventData" in columns:
        _expand_ecp(columns)
    if not columns or kind in RAW_KINDS:
        columns["_raw"] = text[:MAX_RAW_CHARS]
    return LogRecord(
        kind=kind,
        artifact=stats.artifact,
        line=line_no,
        timestamp=record_time(columns, text, cursor.syntax),
        fields=columns,
    )


def _expand_ecp(columns: dict[str, str]) -> None:
    """ECP EventData items become columns; S:CMD becomes Cmdlet and Param.<Name>."""
    items = parse_event_data(columns["EventData"])
    for key, value in items.items():
        columns.setdefault(key, value)
    if "S:CMD" in items:
        cmdlet, params = parse_cmdlet(items["S:CMD"])
        columns["Cmdlet"] = cmdlet
        for name, value in params.items():
            columns[f"Param.{name}"] = value


def split_values(text: str, cursor: _Cursor) -> list[str] | None:
    """Columns of one data line, or None when the line does not fit the header."""
    if cursor.syntax is LogSyntax.FREE_TEXT or not cursor.fields:
        return [text] if cursor.fields else []
    if cursor.syntax is LogSyntax.W3C:
        values = text.split(" ")
    elif '"' not in text:
        values = text.split(",")  # no quoting: what the csv module would give, much faster
        values = _rejoin_event_data(values, cursor.fields)
    else:
        try:
            values = next(csv.reader([text]), [])
        except csv.Error:
            return None
        values = _rejoin_event_data(values, cursor.fields)
    # Fewer than half the columns is not a line of this log at all.
    return values if len(values) * 2 > len(cursor.fields) else None


def _rejoin_event_data(values: list[str], fields: tuple[str, ...]) -> list[str]:
    width = len(fields)
    if len(values) > width and fields[-1] == "EventData":
        # Free text in the last column (ECP EventData) may carry bare commas.
        return [*values[: width - 1], ",".join(values[width - 1 :])]
    return values


def record_time(columns: dict[str, str], text: str, syntax: LogSyntax) -> datetime | None:
    if syntax is LogSyntax.W3C:
        date, clock = columns.get("date"), columns.get("time")
        return parse_time(f"{date}T{clock}") if date and clock else None
    for name in ("DateTime", "TimeStamp", "date-time"):
        if name in columns:
            return parse_time(columns[name])
    match = _LEADING_TIME.match(text)
    return parse_time(match.group(1)) if match else None


@lru_cache(maxsize=4096)
def parse_time(value: str) -> datetime | None:
    """Log timestamps are UTC, with or without a trailing Z."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def decode_line(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        # Older servers and hand-made copies write Windows-1252/Latin-1.
        return line.decode("latin-1")


def _open_window(
    buf: bytearray, lo: int, hi: int, headers: list[int], cursor: _Cursor, stats: ReadStats
) -> None:
    """The first data line gives the start of the window this file covers."""
    header_set = set(headers)
    pos = lo
    while pos < hi:
        end = buf.find(b"\n", pos, hi)
        end = hi if end < 0 else end
        line = bytes(buf[pos : min(end, pos + 65536)]).rstrip(b"\r")
        if pos in header_set:
            _take_header(line, cursor, stats)
        elif line and b"\x00" not in line:
            stats.seen(_line_time(line, cursor))
            _note_host(line, cursor, stats)
            cursor.first_done = True
            break
        pos = end + 1


def _note_host(line: bytes, cursor: _Cursor, stats: ReadStats) -> None:
    """The server's own name, as the first data line of the log states it."""
    values = split_values(decode_line(line), cursor) if cursor.fields else None
    if not values:
        return
    columns = dict(zip(cursor.fields, values, strict=False))
    for name in HOST_COLUMNS:
        if columns.get(name) and name not in stats.meta:
            stats.meta[name] = columns[name][:255]


def _remember_last(
    buf: bytearray, lo: int, hi: int, header_set: set[int], cursor: _Cursor
) -> None:
    end = hi - 1
    for _ in range(64):
        start = max(buf.rfind(b"\n", lo, end) + 1, lo)
        line = bytes(buf[start : min(end, start + 4096)]).rstrip(b"\r")
        if start not in header_set and line and b"\x00" not in line:
            cursor.last_data = line
            cursor.last_fields = cursor.fields
            return
        if start <= lo:
            return
        end = start - 1


def _close_window(cursor: _Cursor, stats: ReadStats) -> None:
    if cursor.last_data:
        fields, cursor.fields = cursor.fields, cursor.last_fields
        stats.seen(_line_time(cursor.last_data, cursor))
        cursor.fields = fields


def _line_time(line: bytes, cursor: _Cursor) -> datetime | None:
    text = decode_line(line)
    if cursor.syntax is LogSyntax.W3C and cursor.fields:
        values = text.split(" ")
        columns = dict(zip(cursor.fields, values, strict=False))
        return record_time(columns, text, cursor.syntax)
    head = text.split(",", 1)[0].strip('"')
    return parse_time(head) or record_time({}, text, LogSyntax.FREE_TEXT)


class _Utf16ToUtf8(io.RawIOBase):
    """Windows tools that write UTF-16 logs: re-encode as UTF-8 while streaming."""

    def __init__(self, inner: io.BufferedReader) -> None:
        self._decoder = text_decoder(inner.peek(4)[:4])
        self._inner = inner

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while True:
            data = self._inner.read(size if size >= 0 else CHUNK_BYTES)
            text = self._decoder.decode(data, final=not data)
            if text or not data:
                return text.encode("utf-8")
