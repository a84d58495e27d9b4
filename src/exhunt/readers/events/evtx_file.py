"""Events of an .evtx file, through the `evtx` package (Rust), with the selection pre-filter.

Sources (format facts): the XML rendering of the `evtx` parser follows the event schema
http://schemas.microsoft.com/win/2004/08/events/event (Microsoft Learn, "Event Schema"); the
file's layout follows the libevtx documentation, "Windows XML Event Log (EVTX) format".
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import Container, Generator, Iterator
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from evtx import PyEvtxParser

from exhunt.model import LogRecord
from exhunt.readers.base import ReadStats
from exhunt.readers.events.common import READ_SIZE, json_text, make_record, parse_event_time
from exhunt.readers.events.selection import EventSelection, raw_selector

# EVTX layout (libevtx documentation, "Windows XML Event Log (EVTX) format").
_EVTX_HEADER_SIZE = 4096
_EVTX_CHUNK_SIZE = 65536
_CHUNK_MAGIC = b"ElfChnk\x00"


def read_evtx(
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
            shutil.copyfileobj(self._stream, out, READ_SIZE)
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
    selector = None if select is None else raw_selector(select)
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
    return make_record(artifact, number, when, fields, stats)


def _fields_from_evtx_json(event: dict[str, Any]) -> tuple[datetime | None, dict[str, str]]:
    """Fields of one event as the evtx parser renders it to JSON (the fields `base_fields`
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
    return json_text(value)


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

