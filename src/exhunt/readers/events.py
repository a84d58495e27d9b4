"""Windows event logs in the three forms a responder gets them: .evtx, wevtutil XML, JSON.

One output for all three: `LogRecord(kind=EVENT)` whose fields are Channel, Provider, EventID,
Level, Computer, RecordID, Message, and each EventData value as `Data[i]` (and `Data.<Name>`
when named). Formats only: nothing here judges an event.

Sources (format facts):
- .evtx is parsed by the `evtx` package (Rust); its XML rendering follows the event schema
  http://schemas.microsoft.com/win/2004/08/events/event (Microsoft Learn, "Event Schema").
- `wevtutil qe LOG /f:xml` prints `<Event xmlns=...>` elements one after another without a
  root element (`/e:Events` adds one); `/f:RenderedXml` adds `<RenderingInfo><Message>`
  (Microsoft Learn, "wevtutil").
- `Get-WinEvent | ConvertTo-Json`: EventLogRecord properties Id, ProviderName, LogName, Level,
  LevelDisplayName, TimeCreated, MachineName, RecordId, Message, Properties[].Value
  (Microsoft Learn, "EventLogRecord Class"); Windows PowerShell 5.1 writes DateTime as
  "\\/Date(ms since 1970 UTC)\\/", PowerShell 7 as ISO 8601 (PowerShell docs, ConvertTo-Json);
  PowerShell 5.1 `Out-File`/`>` writes UTF-16 LE with a BOM (about_Character_Encoding).
"""

from __future__ import annotations

import codecs
import io
import json
import os
import re
import shutil
import struct
import tempfile
import zlib
from bisect import bisect_left
from collections.abc import Container, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import accumulate, islice
from pathlib import Path
from typing import Any, BinaryIO
from xml.etree import ElementTree as ET
from xml.parsers import expat

import hyperscan
import orjson
from evtx import PyEvtxParser

from exhunt.model import LogRecord, RecordKind
from exhunt.readers.base import ReadStats
from exhunt.readers.sniff import EVTX_MAGIC, EventFormat, sniff_encoding, sniff_event_export

__all__ = ["EventFormat", "EventSelection", "read_events", "sniff_event_export"]

# EVTX layout (libevtx documentation, "Windows XML Event Log (EVTX) format").
_EVTX_MAGIC = EVTX_MAGIC
_EVTX_HEADER_SIZE = 4096
_EVTX_CHUNK_SIZE = 65536
_CHUNK_MAGIC = b"ElfChnk\x00"

# How much text is read at a time from an XML or JSON export.
_READ_SIZE = 1 << 20
# One event larger than this is not an event: it is named and skipped (or ends the file).
MAX_EVENT_CHARS = 16 << 20
# Deeper element nesting than this inside an export is refused (real events nest ~5 deep).
MAX_XML_DEPTH = 64
_LEVEL_NAMES = {"critical": 1, "error": 2, "warning": 3, "information": 4, "verbose": 5}
_PS_DATE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")
_ISO_TIME = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?\s*(Z|[+-]\d\d:?\d\d)?$"
)


class _Refused(Exception):
    """The input uses something the reader refuses to process (DTD, entities, depth)."""


# -- which events a hunt asks for -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventSelection:
    """The events a hunt's checks read, so the EVTX reader can skip the rest undecoded.

    An event is selected when its EventID is in `event_ids`, or its provider (Name or
    EventSourceName) in `providers`, or its channel in `channels`, or its data holds a value
    named in `data_names`; names compare case-insensitively. It is a superset test: the
    reader may return events outside it (XML and JSON exports are read whole), never fewer.
    No selection at all (None where one is asked for) means every event.
    """

    event_ids: frozenset[str] = frozenset()
    providers: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    data_names: frozenset[str] = frozenset()

    def __or__(self, other: EventSelection) -> EventSelection:
        return EventSelection(self.event_ids | other.event_ids, self.providers | other.providers,
                              self.channels | other.channels, self.data_names | other.data_names)

    @classmethod
    def union(cls, selections: Iterable[EventSelection | None]) -> EventSelection | None:
        """What a set of checks reads together: None (every event) if any of them says None."""
        total = cls()
        for selection in selections:
            if selection is None:
                return None
            total = total | selection
        return total

    def raw_patterns(self) -> list[bytes]:
        """Hyperscan expressions over the evtx parser's compact JSON of one record (its
        shapes: `"EventID":4624` or `"EventID":{"#attributes":{"Qualifiers":..},"#text":1000}`,
        `"Provider":{"#attributes":{"Name":"..",..}}`, `"Channel":".."`, named data as keys)."""
        patterns: list[bytes] = []
        ids = sorted(i for i in self.event_ids if i.isdigit())
        if ids:
            patterns.append(rb'"EventID":(\{"#attributes":\{[^{}\n]*\},"#text":)?"?('
                            + "|".join(ids).encode() + rb')"?[,}]')
        for provider in sorted(self.providers):
            patterns.append(rb'"Provider":\{"#attributes":\{([^{}\n]*,)?"(Name|EventSourceName)":'
                            + _json_pattern(provider))
        patterns += [rb'"Channel":' + _json_pattern(channel) for channel in sorted(self.channels)]
        patterns += [_json_pattern(name) + b":" for name in sorted(self.data_names)]
        return patterns


def _json_pattern(text: str) -> bytes:
    """A hyperscan expression for `text` as a JSON string literal, quotes included; letters
    beyond ASCII in either case (hyperscan's caseless flag knows only ASCII)."""
    parts: list[bytes] = []
    for char in json.dumps(text, ensure_ascii=False):
        if char.isascii():
            parts.append(char.encode() if char.isalnum() else b"\\x%02x" % ord(char))
            continue
        variants = sorted({char, char.lower(), char.upper()})
        parts.append(b"(" + b"|".join(_escaped(v) for v in variants) + b")")
    return b"".join(parts)


def _escaped(text: str) -> bytes:
    return b"".join(b"\\x%02x" % b for b in text.encode("utf-8", "surrogatepass"))


class _RawSelector:
    """Finds, in one hyperscan pass over a batch of records' JSON, the records selected."""

    def __init__(self, selection: EventSelection) -> None:
        patterns = selection.raw_patterns()
        self._db: hyperscan.Database | None = None
        if patterns:
            self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            self._db.compile(expressions=patterns, ids=list(range(len(patterns))),
                             elements=len(patterns),
                             flags=[hyperscan.HS_FLAG_CASELESS] * len(patterns))

    def selected(self, texts: list[str]) -> set[int]:
        """Indexes of the texts (one record's JSON each, no raw newline) that are selected."""
        if self._db is None or not texts:
            return set()
        joined = "\n".join(texts).encode("utf-8", "surrogatepass")
        chars = [len(t) + 1 for t in texts]
        if len(joined) + 1 != sum(chars):  # not ASCII: offsets in bytes differ from chars
            chars = [len(t.encode("utf-8", "surrogatepass")) + 1 for t in texts]
        ends = list(accumulate(chars))  # ends[i]: offset just past record i's newline
        found: set[int] = set()

        def on_match(_id: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            found.add(bisect_left(ends, end))

        self._db.scan(joined, match_event_handler=on_match)
        return found


@cache
def _selector(selection: EventSelection) -> _RawSelector:
    return _RawSelector(selection)


# -- sniffing -----------------------------------------------------------------------------


def _encoding_of(head: bytes) -> tuple[str, int]:
    """The text encoding of an export and the length of its byte-order mark."""
    return sniff_encoding(head)  # the one sniffer of every reader (readers/sniff.py)


# -- entry point --------------------------------------------------------------------------


def read_events(
    data: BinaryIO, artifact: str, stats: ReadStats, *, local_path: Path | None = None,
    select: EventSelection | None = None,
) -> Iterator[LogRecord]:
    """Records of an event-log export (.evtx, wevtutil XML or Get-WinEvent JSON).

    `data` is the open file (any binary stream); `local_path`, when given, is the same file
    on disk, which lets the EVTX parser read it directly. `select`: only these events are
    wanted; an .evtx record outside it is counted but not decoded (None: every event).
    Problems go to `stats`; nothing is raised for bad input.
    """
    try:
        head = _read_head(data)
    except OSError as exc:
        stats.fail(f"cannot read event log: {exc}")
        return
    if not head:
        stats.fail("empty file: no events")
        return
    kind = sniff_event_export(head)
    if kind is None:
        stats.fail("not an event log export (neither EVTX, XML nor JSON)")
        return
    stats.meta["format"] = kind
    stream = io.BufferedReader(_Rewound(head, data), _READ_SIZE)
    try:
        if kind == "evtx":
            yield from _read_evtx(stream, artifact, stats, local_path, select)
        elif kind == "xml":
            yield from _read_xml(stream, artifact, stats)
        else:
            yield from _read_json(stream, artifact, stats)
    except OSError as exc:
        stats.fail(f"read error after {stats.records} events: {exc}")
    except Exception as exc:  # a reader bug must not end the hunt: name it and go on
        stats.fail(f"event reader failed after {stats.records} events: {exc!r}")
    stats.summarize()


def _read_head(data: BinaryIO, size: int = 4096) -> bytes:
    """The first `size` bytes (fewer only at the end), even from a stream with short reads."""
    head = b""
    while len(head) < size:
        more = data.read(size - len(head))
        if not more:
            break
        head += more
    return head


class _Rewound(io.RawIOBase):
    """The stream again from its start, without needing it to seek: the sniffed head first."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        chunk = self._rest.read(len(view))
        view[: len(chunk)] = chunk
        return len(chunk)


def _make_record(
    artifact: str, number: int, when: datetime | None, fields: dict[str, str], stats: ReadStats
) -> LogRecord:
    stats.records += 1
    stats.seen(when)
    return LogRecord(RecordKind.EVENT, artifact, number, when, fields)


# -- fields shared by all forms -----------------------------------------------------------


def _base_fields(
    channel: str,
    provider: str,
    event_id: str,
    level: str,
    computer: str,
    record_id: str,
    message: str | None,
    data: list[tuple[str | None, str]],
) -> dict[str, str]:
    fields = {
        "Channel": channel,
        "Provider": provider,
        "EventID": event_id,
        "Level": level,
        "Computer": computer,
        "RecordID": record_id,
    }
    for i, (name, value) in enumerate(data):
        fields[f"Data[{i}]"] = value
        if name:
            fields.setdefault(f"Data.{name}", value)
    fields["Message"] = message if message is not None else "\n".join(v for _, v in data)
    return fields


def parse_event_time(text: str) -> datetime | None:
    """An event time as the exports write it, as aware UTC; None when unreadable."""
    text = text.strip()
    if len(text) == 27 and text[10] == "T" and text[26] == "Z":
        # Fast path: the evtx parser's own form, 2021-03-03T06:49:53.772000Z.
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    match = _PS_DATE.match(text)
    if match:
        try:
            return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(match[1]))
        except OverflowError:
            return None
    match = _ISO_TIME.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(match[i]) for i in range(1, 7))
    micro = int((match[7] or "0")[:6].ljust(6, "0"))
    try:
        when = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    except ValueError:
        return None
    zone = match[8]
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        try:
            when -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        except OverflowError:
            return None
    return when


# -- XML events (wevtutil qe /f:xml and /f:RenderedXml) -------------------------------------


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _fields_from_event_xml(event: ET.Element) -> tuple[datetime | None, dict[str, str]]:
    """Fields of one `<Event>` element (namespaced or not)."""
    system: dict[str, ET.Element] = {}
    data: list[tuple[str | None, str]] = []
    message: str | None = None
    for part in event:
        part_name = _local(part.tag)
        if part_name == "System":
            for item in part:
                system.setdefault(_local(item.tag), item)
        elif part_name == "EventData":
            for item in part:
                name = item.get("Name")
                data.append((name, item.text or ""))
        elif part_name == "UserData":
            # UserData carries one provider-defined element; its leaves are the values.
            for item in part.iter():
                if item is not part and len(item) == 0:
                    data.append((_local(item.tag), item.text or ""))
        elif part_name == "RenderingInfo":
            for item in part:
                if _local(item.tag) == "Message" and item.text is not None:
                    message = item.text

    def text(name: str) -> str:
        item = system.get(name)
        return (item.text or "").strip() if item is not None else ""

    provider = system.get("Provider")
    provider_name = ""
    if provider is not None:
        provider_name = provider.get("Name") or provider.get("EventSourceName") or ""
    created = system.get("TimeCreated")
    when = None
    if created is not None:
        when = parse_event_time(created.get("SystemTime", ""))
    fields = _base_fields(
        channel=text("Channel"),
        provider=provider_name,
        event_id=text("EventID"),
        level=text("Level"),
        computer=text("Computer"),
        record_id=text("EventRecordID"),
        message=message,
        data=data,
    )
    return when, fields


def _read_xml(stream: BinaryIO, artifact: str, stats: ReadStats) -> Iterator[LogRecord]:
    """Stream `<Event>` elements from a wevtutil export, with or without a root element."""
    collector = _XmlEventCollector()
    parser = expat.ParserCreate(encoding="utf-8")
    collector.attach(parser)
    number = 0
    problem: str | None = None
    try:
        # A synthetic root lets a rootless sequence of <Event> elements parse as one document.
        parser.Parse("<exhunt-events>", False)
        for piece in _xml_text(stream):
            parser.Parse(piece, False)
            for element in collector.take():
                number += 1
                record = _xml_record(element, artifact, number, stats)
                if record is not None:
                    yield record
        parser.Parse("</exhunt-events>", True)
    except _Refused as exc:
        problem = f"XML refused: {exc}"
    except expat.ExpatError as exc:
        problem = f"XML not well-formed: {expat.ErrorString(exc.code)}"
    for element in collector.take():
        number += 1
        record = _xml_record(element, artifact, number, stats)
        if record is not None:
            yield record
    if problem is not None:
        stats.fail(f"{problem} (after {number} events); rest of file skipped")
    elif number == 0:
        stats.fail("XML holds no <Event> elements: not a wevtutil event export")


def _xml_text(stream: BinaryIO) -> Iterator[str]:
    """The export's text in pieces, without its XML declaration; DTDs are refused here.

    The declaration must go because it cannot follow the synthetic root's start tag; the text
    is decoded here (BOM or NUL pattern), so its `encoding=` is not needed.
    """
    head = stream.read(4096)
    encoding, skip = _encoding_of(head)
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    text = decoder.decode(head[skip:]).lstrip("\ufeff \t\r\n")
    while text.startswith("<?xml") and "?>" not in text and len(text) < 65536:
        more = stream.read(4096)
        if not more:
            break
        text += decoder.decode(more)
    if text.startswith("<?xml") and "?>" in text:
        text = text.partition("?>")[2]
    while True:
        # Checked per piece; a marker split across pieces still fails in expat, since a DTD
        # cannot appear inside the synthetic root.
        cut = min(
            (i for i in (text.find("<!DOCTYPE"), text.find("<!ENTITY")) if i >= 0), default=-1
        )
        if cut >= 0:
            yield text[:cut]  # the events before it are still read
            raise _Refused("document type declaration (DTD) or entity is not allowed")
        if text:
            yield text
        chunk = stream.read(_READ_SIZE)
        if not chunk:
            break
        text = decoder.decode(chunk)
    tail = decoder.decode(b"", True)
    if tail:
        yield tail


def _xml_record(
    element: ET.Element | str, artifact: str, number: int, stats: ReadStats
) -> LogRecord | None:
    if isinstance(element, str):
        stats.bad_line(number, element)
        return None
    when, fields = _fields_from_event_xml(element)
    return _make_record(artifact, number, when, fields, stats)


class _XmlEventCollector:
    """Expat handlers that build each top-level `<Event>` as an Element, and refuse DTDs."""

    def __init__(self) -> None:
        self._builder: ET.TreeBuilder | None = None
        self._depth = 0  # 1 = synthetic root
        self._event_depth = 0
        self._chars = 0
        self._oversize = False
        self._done: list[ET.Element | str] = []

    def attach(self, parser: expat.XMLParserType) -> None:
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._data
        parser.StartDoctypeDeclHandler = self._refuse_doctype
        parser.EntityDeclHandler = self._refuse_entity
        parser.ExternalEntityRefHandler = self._refuse_external
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def take(self) -> list[ET.Element | str]:
        done, self._done = self._done, []
        return done

    def _refuse_doctype(self, *_: object) -> None:
        raise _Refused("document type declaration (DTD) is not allowed in an event export")

    def _refuse_entity(self, *_: object) -> None:
        raise _Refused("entity declarations are not allowed in an event export")

    def _refuse_external(self, *_: object) -> int:
        raise _Refused("external entity references are not allowed in an event export")

    def _start(self, tag: str, attrs: dict[str, str]) -> None:
        self._depth += 1
        if self._depth > MAX_XML_DEPTH:
            raise _Refused(f"elements nested deeper than {MAX_XML_DEPTH} levels")
        if self._builder is None:
            if _local(tag) == "Event":
                self._builder = ET.TreeBuilder()
                self._event_depth = self._depth
                self._chars = 0
                self._oversize = False
            else:
                return  # the synthetic root, an <Events> wrapper, or stray elements
        if not self._oversize:
            self._builder.start(tag, attrs)

    def _end(self, tag: str) -> None:
        self._depth -= 1
        if self._builder is None:
            return
        if not self._oversize:
            self._builder.end(tag)
        if self._depth + 1 == self._event_depth:
            if self._oversize:
                self._done.append(f"event larger than {MAX_EVENT_CHARS} characters")
            else:
                self._done.append(self._builder.close())
            self._builder = None

    def _data(self, text: str) -> None:
        if self._builder is None or self._oversize:
            return
        self._chars += len(text)
        if self._chars > MAX_EVENT_CHARS:
            self._oversize = True
            return
        self._builder.data(text)


# -- EVTX ---------------------------------------------------------------------------------


def _read_evtx(
    stream: BinaryIO, artifact: str, stats: ReadStats, local_path: Path | None,
    select: EventSelection | None,
) -> Iterator[LogRecord]:
    with _EvtxPath(stream, local_path) as path:
        size = os.path.getsize(path)
        if size < _EVTX_HEADER_SIZE:
            stats.fail(f"EVTX file of {size} bytes is shorter than its 4096-byte header")
            return
        _report_chunk_checksums(path, size, stats)
        number = 0
        try:
            parser = PyEvtxParser(str(path), number_of_threads=1, indent=False)
        except (OSError, RuntimeError, ValueError) as exc:
            stats.fail(f"EVTX file header unreadable: {_first_line(exc)}")
            return
        number = yield from _evtx_selected(_evtx_records(parser.records_json(), stats),
                                           artifact, number, stats, select)
        tail = (size - _EVTX_HEADER_SIZE) % _EVTX_CHUNK_SIZE
        if tail:
            cut_chunk = (size - _EVTX_HEADER_SIZE) // _EVTX_CHUNK_SIZE
            before = stats.records
            yield from _evtx_selected(_evtx_records(_tail_chunk_records(path, size, tail), stats),
                                      artifact, number, stats, select)
            stats.fail(
                f"EVTX file truncated: ends {tail} bytes into chunk {cut_chunk} "
                f"(file size {size}); {stats.records - before} records read from that chunk, "
                "the rest of it is lost"
            )


class _EvtxPath:
    """A path the EVTX parser can open: the local file, or a temporary copy of the stream."""

    def __init__(self, stream: BinaryIO, local_path: Path | None) -> None:
        self._stream = stream
        self._local = local_path
        self._temp: str | None = None

    def __enter__(self) -> str:
        if self._local is not None and self._local.is_file():
            return str(self._local)
        handle, name = tempfile.mkstemp(prefix="exhunt-", suffix=".evtx")
        self._temp = name
        with os.fdopen(handle, "wb") as out:
            shutil.copyfileobj(self._stream, out, _READ_SIZE)
        return name

    def __exit__(self, *_: object) -> None:
        if self._temp is not None:
            os.unlink(self._temp)


def _tail_chunk_records(path: str, size: int, tail: int) -> Iterator[object]:
    """Records of a chunk cut short: the header plus the partial chunk, padded with zeros."""
    with open(path, "rb") as handle:
        header = handle.read(_EVTX_HEADER_SIZE)
        handle.seek(size - tail)
        partial = handle.read(tail)
    if not partial.startswith(_CHUNK_MAGIC):
        return
    # Keep only whole records: a record cut short would be parsed with zeros for its end.
    padded = header + partial[: _whole_records_end(partial)].ljust(_EVTX_CHUNK_SIZE, b"\x00")
    try:
        parser = PyEvtxParser(io.BytesIO(padded), number_of_threads=1, indent=False)
    except (OSError, RuntimeError, ValueError):
        return
    yield from parser.records_json()


def _whole_records_end(partial: bytes) -> int:
    """Offset just past the last record that lies wholly inside a cut-short chunk."""
    offset = 512
    while offset + 8 <= len(partial) and partial[offset : offset + 4] == b"\x2a\x2a\x00\x00":
        size: int = struct.unpack_from("<I", partial, offset + 4)[0]
        if size < 28 or offset + size > len(partial):
            break
        offset += size
    return offset


# Records handed to one hyperscan pass of the selection.
_SELECT_BATCH = 512


def _evtx_selected(
    records: Iterator[object], artifact: str, number: int, stats: ReadStats,
    select: EventSelection | None,
) -> Generator[LogRecord, None, int]:
    """The parser's records as LogRecords, numbered on from `number`; records outside the
    selection are counted, and their times bound the log, but they are not decoded."""
    selector = None if select is None else _selector(select)
    while batch := list(islice(records, _SELECT_BATCH)):
        if selector is None:
            wanted: Container[int] = range(len(batch))
        else:
            texts = [_rendered(r) for r in batch]
            wanted = selector.selected(texts)
            _count_skipped(batch, len(batch) - len(wanted), stats)
        for index, record in enumerate(batch, number + 1):
            if index - number - 1 in wanted:
                parsed = _evtx_record(record, artifact, index, stats)
                if parsed is not None:
                    yield parsed
        number += len(batch)
    return number


def _rendered(record: object) -> str:
    data = record.get("data") if isinstance(record, dict) else None
    return data if isinstance(data, str) else ""


def _count_skipped(batch: list[object], skipped: int, stats: ReadStats) -> None:
    """Skipped records still count as read, and bound the log's time window by the time
    each record was written (the record header's, which the parser gives without decoding;
    TimeCreated for decoded ones); "2021-03-01T00:00:00.500Z UTC" sorts as text to the second."""
    if not skipped:
        return
    stats.records += skipped
    times = [t for r in batch if isinstance(r, dict) and isinstance(t := r.get("timestamp"), str)]
    if times:
        stats.seen(parse_event_time(min(times).removesuffix(" UTC")))
        stats.seen(parse_event_time(max(times).removesuffix(" UTC")))


def _evtx_records(records: Iterator[Any], stats: ReadStats) -> Iterator[object]:
    """The parser's records; a chunk or record it cannot parse is named and skipped."""
    failures = 0
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except (RuntimeError, OSError, ValueError) as exc:
            failures += 1
            stats.bad_line(None, f"EVTX: {_first_line(exc)}")
            if failures > 100_000:  # a stream of nothing but errors is not worth walking
                stats.fail("EVTX: too many unreadable chunks; rest of file skipped")
                return
            continue
        yield record


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _evtx_record(record: object, artifact: str, number: int, stats: ReadStats) -> LogRecord | None:
    if type(record) is not dict:
        stats.bad_line(number, "EVTX parser returned no record")
        return None
    rendered = record.get("data")
    record_id = record.get("event_record_id")
    try:
        event = orjson.loads(rendered) if type(rendered) is str else None
    except orjson.JSONDecodeError as exc:
        stats.bad_line(number, f"EVTX record {record_id}: {exc}")
        return None
    body = event.get("Event") if type(event) is dict else None
    if type(body) is not dict:
        stats.bad_line(number, f"EVTX record {record_id}: no <Event> element")
        return None
    when, fields = _fields_from_evtx_json(body)
    if when is None:
        when = parse_event_time(str(record.get("timestamp", "")).removesuffix(" UTC"))
    if not fields["RecordID"] and record_id is not None:
        fields["RecordID"] = str(record_id)
    return _make_record(artifact, number, when, fields, stats)


def _fields_from_evtx_json(event: dict[str, Any]) -> tuple[datetime | None, dict[str, str]]:
    """Fields of one event as the evtx parser renders it to JSON (the fields `_base_fields`
    builds, written out inline: this runs for every selected record of every .evtx).

    Its JSON shape (measured on evtx 0.14): an element with attributes is
    {"#attributes": {...}, "#text": value}; unnamed <Data> elements are
    {"Data": {"#text": value or [values]}}; named ones are {"Name": value}.
    """
    system = event.get("System")
    get = system.get if type(system) is dict else _EMPTY.get
    provider = _attributes(get("Provider"))
    created = _attributes(get("TimeCreated"))
    when = parse_event_time(_evtx_text(created.get("SystemTime")))
    fields = {
        "Channel": v if type(v := get("Channel")) is str else _evtx_text(v),
        "Provider": _evtx_text(provider.get("Name") or provider.get("EventSourceName")),
        "EventID": str(v) if type(v := get("EventID")) is int else _evtx_text(v),
        "Level": str(v) if type(v := get("Level")) is int else _evtx_text(v),
        "Computer": v if type(v := get("Computer")) is str else _evtx_text(v),
        "RecordID": str(v) if type(v := get("EventRecordID")) is int else _evtx_text(v),
    }
    values: list[str] = []
    event_data = event.get("EventData")
    if type(event_data) is dict:
        for key, value in event_data.items():
            if key == "#attributes":
                continue
            if key == "Data" and type(value) is dict:
                texts = value.get("#text")
                _add_unnamed(fields, values, texts if type(texts) is list else [texts])
            elif (key == "Data" and type(value) is not str) or key in ("Binary", "#text"):
                # A bare string under "Data" is a <Data Name="Data">; anything else is unnamed.
                _add_unnamed(fields, values, value if type(value) is list else [value])
            else:
                text = value if type(value) is str else _evtx_text(value)
                fields[_data_key(len(values))] = text
                values.append(text)
                fields.setdefault("Data." + key, text)
    user_data = event.get("UserData")
    if type(user_data) is dict:
        for name, text in _json_leaves(user_data):
            fields[_data_key(len(values))] = text
            values.append(text)
            if name:
                fields.setdefault("Data." + name, text)
    fields["Message"] = "\n".join(values)
    return when, fields


_EMPTY: dict[str, Any] = {}
# Field names of unnamed event data, made once.
_DATA_KEYS = tuple(f"Data[{i}]" for i in range(64))


def _data_key(index: int) -> str:
    return _DATA_KEYS[index] if index < len(_DATA_KEYS) else f"Data[{index}]"


def _add_unnamed(fields: dict[str, str], values: list[str], texts: list[Any]) -> None:
    start = len(values)
    values.extend(t if type(t) is str else _evtx_text(t) for t in texts)
    if len(values) <= len(_DATA_KEYS):
        fields.update(zip(_DATA_KEYS[start:], values[start:]))  # noqa: B905 (keys outnumber)
    else:
        fields.update((_data_key(i), values[i]) for i in range(start, len(values)))


def _attributes(value: Any) -> dict[str, Any]:
    if type(value) is dict:
        attributes = value.get("#attributes")
        if type(attributes) is dict:
            return attributes
    return _EMPTY


def _evtx_text(value: Any) -> str:
    """An element's text: {"#attributes":..., "#text": x} -> x; null -> ""."""
    if isinstance(value, str):
        return value
    if type(value) is int:  # not bool, which is rendered below
        return str(value)
    if isinstance(value, dict) and "#text" in value:
        value = value["#text"]
    if isinstance(value, bool):
        return "true" if value else "false"  # as the XML rendering writes it
    if isinstance(value, list):
        return "\n".join(_evtx_text(v) for v in value)
    return _json_text(value)


def _json_leaves(root: dict[str, Any]) -> list[tuple[str | None, str]]:
    """Leaf values of a UserData tree, in order, named by their element (no recursion)."""
    leaves: list[tuple[str | None, str]] = []
    stack: list[tuple[str, Any]] = list(reversed(root.items()))
    while stack:
        key, value = stack.pop()
        if key == "#attributes":
            continue
        if isinstance(value, dict) and not (set(value) <= {"#attributes", "#text"}):
            stack.extend(reversed(value.items()))
        else:
            leaves.append((None if key == "#text" else key, _evtx_text(value)))
    return leaves


def _report_chunk_checksums(path: str, size: int, stats: ReadStats) -> None:
    """Name chunks whose CRC32s do not match: the log was dirty when copied, or altered.

    Their records are still read: the newest events of a live log sit in such a chunk.
    """
    bad: list[int] = []
    with open(path, "rb") as handle:
        handle.seek(_EVTX_HEADER_SIZE)
        index = 0
        while True:
            chunk = handle.read(_EVTX_CHUNK_SIZE)
            if len(chunk) < _EVTX_CHUNK_SIZE:
                break
            if chunk.startswith(_CHUNK_MAGIC) and not _chunk_checksums_ok(chunk):
                bad.append(index)
            index += 1
    if bad:
        shown = ", ".join(str(i) for i in bad[:10]) + (", ..." if len(bad) > 10 else "")
        stats.fail(
            f"EVTX checksum mismatch in {len(bad)} chunk(s) ({shown}): "
            "log was dirty when copied or was altered; records read anyway"
        )


def _chunk_checksums_ok(chunk: bytes) -> bool:
    free_offset: int
    data_crc: int
    head_crc: int
    free_offset, data_crc = struct.unpack_from("<II", chunk, 48)
    (head_crc,) = struct.unpack_from("<I", chunk, 124)
    if zlib.crc32(chunk[128:512], zlib.crc32(chunk[:120])) != head_crc:
        return False
    if not 512 <= free_offset <= _EVTX_CHUNK_SIZE:
        return False
    return zlib.crc32(chunk[512:free_offset]) == data_crc


# -- JSON (Get-WinEvent | ConvertTo-Json) -------------------------------------------------


def _read_json(stream: BinaryIO, artifact: str, stats: ReadStats) -> Iterator[LogRecord]:
    """Events of a ConvertTo-Json export: an array of event objects, or objects."""
    text = _TextBuffer(stream)
    first = text.skip_space()
    if first == "{":
        values: Iterator[tuple[int, Any]] = _object_values(text, stats)
    elif first == "[":
        text.advance(1)
        values = _array_values(text, stats)
    else:
        stats.fail("JSON does not start with an array or object of events")
        return
    for number, value in values:
        record = _json_record(value, artifact, number, stats)
        if record is not None:
            yield record
    if stats.records == 0 and stats.bad_lines == 0 and not stats.problems:
        stats.fail("JSON holds no events")


class _TextBuffer:
    """Decoded text of a stream, read as needed; only the unparsed part is kept."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        head = stream.read(4096)
        encoding, skip = _encoding_of(head)
        self._decoder = codecs.getincrementaldecoder(encoding)("replace")
        self.buf = self._decoder.decode(head[skip:]).lstrip("\ufeff")
        self.pos = 0
        self.eof = not head

    def more(self, at_least: int = _READ_SIZE) -> bool:
        """Read at least `at_least` more bytes; False at the end of the stream."""
        if self.eof:
            return False
        if self.pos:
            self.buf = self.buf[self.pos :]
            self.pos = 0
        chunk = self._stream.read(max(at_least, _READ_SIZE))
        if not chunk:
            self.eof = True
            self.buf += self._decoder.decode(b"", True)
            return False
        self.buf += self._decoder.decode(chunk)
        return True

    def skip_space(self) -> str:
        """The next non-space character ('' at the end), without consuming it."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n\ufeff":
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def advance(self, n: int) -> None:
        self.pos += n


_DECODER = json.JSONDecoder()


def _decode_value(text: _TextBuffer) -> Any:
    """Decode one JSON value at the cursor, reading more text until it is complete."""
    while True:
        try:
            value, end = _DECODER.raw_decode(text.buf, text.pos)
        except json.JSONDecodeError as exc:
            pending = len(text.buf) - text.pos
            if pending > MAX_EVENT_CHARS:
                raise _Refused(
                    f"one JSON value is larger than {MAX_EVENT_CHARS} characters"
                ) from None
            # Maybe the value is just cut by the read: read as much again and retry, so a
            # long value costs linear time.
            if text.more(at_least=pending):
                continue
            raise _Refused(f"JSON not well-formed: {exc.msg}") from None
        except RecursionError:
            raise _Refused("JSON nested too deeply") from None
        text.pos = end
        return value


def _object_values(text: _TextBuffer, stats: ReadStats) -> Iterator[tuple[int, Any]]:
    """One object (one event piped to ConvertTo-Json), or several one after another
    (`ConvertTo-Json -Compress` per event: JSON Lines)."""
    number = 0
    while text.skip_space() != "":
        number += 1
        try:
            value = _decode_value(text)
        except _Refused as exc:
            stats.fail(f"element {number}: {exc}; rest of file skipped")
            return
        yield number, value


def _array_values(text: _TextBuffer, stats: ReadStats) -> Iterator[tuple[int, Any]]:
    number = 0
    while True:
        char = text.skip_space()
        if char == "]":
            return
        if char == "":
            stats.fail(f"JSON array ends early (file truncated?) after {number} elements")
            return
        if number and char == ",":
            text.advance(1)
            if text.skip_space() == "":
                stats.fail(f"JSON array ends early (file truncated?) after {number} elements")
                return
        elif number:
            stats.fail(f"JSON not well-formed after element {number}: expected ',' or ']'")
            return
        number += 1
        try:
            value = _decode_value(text)
        except _Refused as exc:
            stats.fail(f"element {number}: {exc}; rest of file skipped")
            return
        yield number, value


def _json_record(value: Any, artifact: str, number: int, stats: ReadStats) -> LogRecord | None:
    if not isinstance(value, dict):
        stats.bad_line(number, "JSON element is not an event object")
        return None
    if not any(key in value for key in ("Id", "ProviderName", "LogName", "TimeCreated")):
        stats.bad_line(number, "JSON object is not a Get-WinEvent event (no Id/ProviderName)")
        return None
    when = _json_time(value.get("TimeCreated"))
    data: list[tuple[str | None, str]] = [
        (None, _json_text(p.get("Value") if isinstance(p, dict) else p))
        for p in _as_list(value.get("Properties"))
    ]
    message = value.get("Message")
    fields = _base_fields(
        channel=_json_text(value.get("LogName")),
        provider=_json_text(value.get("ProviderName")),
        event_id=_json_text(value.get("Id")),
        level=_json_level(value),
        computer=_json_text(value.get("MachineName")),
        record_id=_json_text(value.get("RecordId")),
        message=message if isinstance(message, str) else None,
        data=data,
    )
    return _make_record(artifact, number, when, fields, stats)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _json_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"  # as PowerShell prints it
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _json_level(value: Mapping[str, Any]) -> str:
    level = value.get("Level")
    if isinstance(level, int) and not isinstance(level, bool):
        return str(level)
    shown = value.get("LevelDisplayName")
    if isinstance(shown, str) and shown.strip().lower() in _LEVEL_NAMES:
        return str(_LEVEL_NAMES[shown.strip().lower()])
    return _json_text(level)


def _json_time(value: Any) -> datetime | None:
    # Windows PowerShell 5.1 sometimes wraps a DateTime: {"value": "/Date(..)/", "DateTime": ..}
    if isinstance(value, dict):
        value = value.get("value", value.get("DateTime"))
    if isinstance(value, str):
        return parse_event_time(value)
    return None
