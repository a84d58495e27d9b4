"""The formats the coordinator's feeds come in, read as text and values: bounded lines, CSV
records (a broken record kept as written), JSON lines, addresses, times, ports and AS numbers.
What a row then says about a host is the coordinator's rule (cases/feeds.py); nothing here
decides it.

Formats: docs/contracts.md; Shadowserver columns from
The-Shadowserver-Foundation/report_schema reports.json (2026-03-24) and the 2021 IntelMQ
fixture (certtools/intelmq `intelmq/tests/bots/parsers/shadowserver/testdata/scan_exchange.csv`,
PR #1970, removed in 473f6a64c).
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson

from exhunt.readers.base import MAX_LINE_BYTES

MAX_FIELD_CHARS = 2000  # feed text kept per field; the rest is cut, marked, and still stored
MAX_RAW_CHARS = 4000


def clean_text(value: object, limit: int = MAX_FIELD_CHARS) -> str:
    """Feed text as storable data: NUL (which PostgreSQL refuses) made visible, length bounded."""
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if len(text) > limit:
        text = text[:limit] + f"...[{len(text) - limit} more chars cut]"
    return text


def optional_text(value: object) -> str | None:
    if value is None:
        return None
    text = clean_text(value).strip()
    return text or None


def parse_ip(value: object) -> str:
    """The canonical text of an IPv4/IPv6 address; ValueError names what was given."""
    if not isinstance(value, str):
        raise ValueError(f"address is not text: {clean_text(repr(value), 80)}")
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError(f"not an IP address: {clean_text(repr(value), 80)}") from None


def parse_time(value: object) -> datetime:
    """ISO-8601 or Shadowserver's 'YYYY-MM-DD HH:MM:SS' (UTC) to naive UTC."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("no timestamp")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"bad timestamp: {clean_text(repr(value), 80)}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def parse_port(value: object) -> int | None:
    try:
        port = int(str(value).strip())
    except ValueError:
        return None
    return port if 0 < port < 65536 else None


def parse_asn(value: object) -> int | None:
    text = str(value).strip().upper().removeprefix("AS")
    if not text.isdigit() or len(text) > 10:
        return None
    number = int(text)
    return number if 0 < number < 2**32 else None


def target_name(target: object) -> str | None:
    """The scan target when it is a name (an address or CIDR target names nothing)."""
    text = optional_text(target)
    if text is None:
        return None
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    return None


def bounded_lines(data: bytes) -> Iterator[str]:
    """Decoded lines, each cut at MAX_LINE_BYTES so one huge line cannot exhaust memory twice."""
    for raw in io.BytesIO(data):
        piece = raw[:MAX_LINE_BYTES] if len(raw) > MAX_LINE_BYTES else raw
        yield piece.decode("utf-8", errors="replace").replace("\x00", "\\x00")


# --- CSV ------------------------------------------------------------------------------------


def normalise_header(name: str) -> str:
    """A header cell as the readers match it (a UTF-8 byte-order mark is not part of it)."""
    return name.replace("\ufeff", "").strip().strip('"').lower()


def csv_header(data: bytes) -> list[str]:
    """The normalised header of a CSV ([] when its first line is not one)."""
    first = next(bounded_lines(data[:MAX_LINE_BYTES]), "")
    try:
        return [normalise_header(h) for h in next(csv.reader([first.rstrip("\r\n")]), [])]
    except csv.Error:
        return []


def csv_records(data: bytes) -> tuple[list[str], Iterator[tuple[int, list[str]]]] | None:
    """The header as written and the data records, each with the line it ends on (None when
    the file has no header). A record with quotes out of place gives its cells as written (a
    lenient reader would eat them); nothing stops the file."""
    csv.field_size_limit(MAX_LINE_BYTES)
    lines = _RecordedLines(bounded_lines(data))
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        return None
    return header, _records(reader, lines)


def _records(reader: Iterator[list[str]], lines: _RecordedLines) -> Iterator[tuple[int, list[str]]]:
    while True:
        lines.taken.clear()
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error:
            values = literal_fields("".join(lines.taken))
        yield reader.line_num, values  # type: ignore[attr-defined]


class _RecordedLines:
    """Lines handed to the csv reader, kept since the last record began."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines
        self.taken: list[str] = []

    def __iter__(self) -> _RecordedLines:
        return self

    def __next__(self) -> str:
        line = next(self.lines)
        self.taken.append(line)
        return line


_QUOTED = re.compile(r'"((?:[^"]|"")*)"(?=,|$)')


def literal_fields(record: str) -> list[str]:
    """A CSV record split at commas, a cell unquoted only when it is properly quoted: text
    such as `""unsafe""` is kept as written."""
    record = record.rstrip("\r\n")
    fields: list[str] = []
    pos = 0
    while True:
        quoted = _QUOTED.match(record, pos) if record.startswith('"', pos) else None
        if quoted:
            fields.append(quoted.group(1).replace('""', '"'))
            pos = quoted.end()
        else:
            end = record.find(",", pos)
            end = len(record) if end < 0 else end
            fields.append(record[pos:end])
            pos = end
        if pos >= len(record):
            return fields
        pos += 1


# --- JSON -----------------------------------------------------------------------------------


def json_lines(data: bytes) -> Iterator[tuple[int, str, object, str | None]]:
    """Each non-blank line: its number, its text (bounded, for the record), the value, and
    why it is not JSON (None when it is)."""
    for number, line in enumerate(bounded_lines(data), start=1):
        if not line.strip():
            continue
        raw = clean_text(line.strip(), MAX_RAW_CHARS)
        try:
            yield number, raw, orjson.loads(line), None
        except orjson.JSONDecodeError as exc:
            yield number, raw, None, f"not JSON: {exc}"


def sniff_kind(data: bytes, name: str) -> str:
    """shadowserver | scan | hunt, from the content first and the name second."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"["):
        return "hunt"
    if head.startswith(b"{"):
        first_line = head.split(b"\n", 1)[0]
        if b'"verdict"' in head and (b'"target"' not in first_line):
            return "hunt"
        return "scan"
    lowered = name.lower()
    if lowered.endswith(".jsonl"):
        return "scan"
    if lowered.endswith(".json"):
        return "hunt"
    return "shadowserver"
