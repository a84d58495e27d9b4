"""Write real Windows XML Event Log (.evtx) files for the lab.

No Python library writes EVTX, and the lab needs files that the readers exhunt uses (the Rust
`evtx` package) and python-evtx both accept. This writer follows the documented layout:
a 4096-byte file header, 64 KiB chunks with a 512-byte header (string and template hash
tables), and event records holding Binary XML (BinXML). Each record is a template instance:
the first record of a given shape in a chunk carries the template definition, later ones point
to it; element names are stored once per chunk and referenced by offset. CRC32s cover the file
header, the chunk header and the chunk's record data.

Source (format facts): Joachim Metz, libevtx documentation, "Windows XML Event Log (EVTX)
format" (file header, chunk header, event record, BinXML tokens, value types, name hash).
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import BinaryIO

_Children = Callable[[], None]

__all__ = ["CHUNK_SIZE", "FILE_HEADER_SIZE", "MAX_RECORD_SIZE", "EventSpec", "write_evtx"]

FILE_HEADER_SIZE = 4096
CHUNK_SIZE = 65536
CHUNK_HEADER_SIZE = 512
# The largest record a chunk can hold; a bigger event cannot be written.
MAX_RECORD_SIZE = CHUNK_SIZE - CHUNK_HEADER_SIZE

_FILE_MAGIC = b"ElfFile\x00"
_CHUNK_MAGIC = b"ElfChnk\x00"
_RECORD_MAGIC = b"\x2a\x2a\x00\x00"
_EVENT_NAMESPACE = "http://schemas.microsoft.com/win/2004/08/events/event"
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)

# BinXML tokens (libevtx documentation, "Binary XML" tokens).
_TOK_END_OF_STREAM = 0x00
_TOK_OPEN_START = 0x01
_TOK_OPEN_START_ATTRS = 0x41
_TOK_CLOSE_START = 0x02
_TOK_CLOSE_EMPTY = 0x03
_TOK_END_ELEMENT = 0x04
_TOK_VALUE_TEXT = 0x05
_TOK_ATTRIBUTE_LAST = 0x06
_TOK_ATTRIBUTE_MORE = 0x46
_TOK_TEMPLATE_INSTANCE = 0x0C
_TOK_NORMAL_SUBSTITUTION = 0x0D
_TOK_FRAGMENT_HEADER = 0x0F
_FRAGMENT_HEADER = bytes((_TOK_FRAGMENT_HEADER, 1, 1, 0))
_NO_DEPENDENCY = 0xFFFF

# Value types (libevtx documentation, "Value types").
_T_STRING = 0x01
_T_UINT8 = 0x04
_T_UINT16 = 0x06
_T_UINT64 = 0x0A
_T_FILETIME = 0x11

# Substitution slots of the System part, in template order.
_SUB_PROVIDER, _SUB_EVENT_ID, _SUB_LEVEL, _SUB_TIME, _SUB_RECORD_ID = 0, 1, 2, 3, 4
_SUB_CHANNEL, _SUB_COMPUTER = 5, 6
_SYSTEM_SUBS = 7


@dataclass(frozen=True)
class EventSpec:
    """One event to write: what Get-WinEvent would show for it."""

    channel: str
    provider: str
    event_id: int
    level: int
    time_created: datetime
    computer: str
    data: Sequence[str] | Mapping[str, str] = ()
    record_id: int | None = None


def write_evtx(path: str | os.PathLike[str], events: Iterable[EventSpec]) -> int:
    """Write `events` to a new .evtx file at `path`; return how many records were written.

    Record ids must increase (None: the previous id + 1, starting at 1). Streams: one chunk
    (64 KiB) is held in memory at a time, whatever the number of events. Raises ValueError for
    an event that cannot be represented (larger than a chunk, a record id that goes back, an
    event id beyond 16 bits). Text is stored as UTF-16; U+0000 ends a value for most readers.
    """
    with open(path, "wb") as out:
        return _EvtxStream(out).write_all(events)


class _EvtxStream:
    """Chunks are appended to `out` as they fill; the file header is written last."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._chunks = 0
        self._records = 0
        self._next_record_id = 1
        self._chunk = _Chunk()

    def write_all(self, events: Iterable[EventSpec]) -> int:
        self._out.write(bytes(FILE_HEADER_SIZE))  # placeholder, rewritten at the end
        for event in events:
            self._write_event(event)
        if self._chunk.record_count:
            self._flush_chunk()
        self._out.seek(0)
        self._out.write(self._file_header())
        return self._records

    def _write_event(self, event: EventSpec) -> None:
        record_id = self._next_record_id if event.record_id is None else event.record_id
        if not 0 < record_id < 1 << 63:
            raise ValueError(f"record_id {record_id} out of range")
        # Readers find a chunk's records by its first and last ids: they must go up.
        if self._records and record_id < self._next_record_id:
            raise ValueError(f"record_id {record_id} does not follow {self._next_record_id - 1}")
        if not self._chunk.try_add(event, record_id):
            if self._chunk.record_count == 0:
                raise ValueError(f"event record {record_id} does not fit in one 64 KiB chunk")
            self._flush_chunk()
            if not self._chunk.try_add(event, record_id):
                raise ValueError(f"event record {record_id} does not fit in one 64 KiB chunk")
        self._records += 1
        self._next_record_id = record_id + 1

    def _flush_chunk(self) -> None:
        self._out.write(self._chunk.finish())
        self._chunks += 1
        self._chunk = _Chunk()

    def _file_header(self) -> bytes:
        # The header's chunk count is 16 bits; a longer file says 0xFFFF (readers walk to EOF).
        count = min(self._chunks, 0xFFFF)
        head = struct.pack(
            "<8sQQQIHHHH",
            _FILE_MAGIC,
            0,  # first chunk number
            max(self._chunks - 1, 0),  # last chunk number
            self._next_record_id,  # next record identifier
            128,  # header size
            1,  # minor version
            3,  # major version
            FILE_HEADER_SIZE,
            count,
        )
        head = head.ljust(120, b"\x00")
        head += struct.pack("<II", 0, zlib.crc32(head))  # file flags (clean), header CRC32
        return head.ljust(FILE_HEADER_SIZE, b"\x00")


class _Chunk:
    """One 64 KiB chunk being filled: names and templates are local to it."""

    def __init__(self) -> None:
        self.body = bytearray()  # everything after the 512-byte header
        self.record_count = 0
        self.first_id = 0
        self.last_id = 0
        self.last_record_offset = 0
        self.names: dict[str, int] = {}
        self.templates: dict[tuple[bool, int], tuple[int, int]] = {}  # shape -> (id, offset)
        self.string_buckets = [0] * 64
        self.template_buckets = [0] * 32

    def try_add(self, event: EventSpec, record_id: int) -> bool:
        """Append the event's record if it fits; leave the chunk unchanged otherwise."""
        saved = (
            dict(self.names),
            dict(self.templates),
            list(self.string_buckets),
            list(self.template_buckets),
        )
        offset = CHUNK_HEADER_SIZE + len(self.body)
        record = _encode_record(self, event, record_id, offset)
        if offset + len(record) > CHUNK_SIZE:
            self.names, self.templates, self.string_buckets, self.template_buckets = saved
            return False
        self.body += record
        if self.record_count == 0:
            self.first_id = record_id
        self.last_id = record_id
        self.last_record_offset = offset
        self.record_count += 1
        return True

    def finish(self) -> bytes:
        free_offset = CHUNK_HEADER_SIZE + len(self.body)
        head = struct.pack(
            "<8sQQQQIIII",
            _CHUNK_MAGIC,
            self.first_id,  # first event record number
            self.last_id,  # last event record number
            self.first_id,  # first event record identifier
            self.last_id,  # last event record identifier
            128,  # header size
            self.last_record_offset,
            free_offset,
            zlib.crc32(self.body),  # event records checksum
        )
        head = head.ljust(120, b"\x00")
        tables = struct.pack("<64I", *self.string_buckets) + struct.pack(
            "<32I", *self.template_buckets
        )
        # The header CRC covers bytes 0-120 and 128-512: it skips the flags and itself.
        head_crc = zlib.crc32(tables, zlib.crc32(head))
        chunk = head + struct.pack("<II", 0, head_crc) + tables + self.body
        return chunk.ljust(CHUNK_SIZE, b"\x00")

    # -- names ---------------------------------------------------------------------------

    def name_ref(self, name: str, at: int) -> bytes:
        """The name-offset field at chunk offset `at`, plus the name itself when first used."""
        known = self.names.get(name)
        if known is not None:
            return struct.pack("<I", known)
        where = at + 4
        value_hash = _name_hash(name)
        bucket = value_hash % 64
        encoded = name.encode("utf-16-le")
        inline = (
            struct.pack("<IHH", self.string_buckets[bucket], value_hash, len(encoded) // 2)
            + encoded
            + b"\x00\x00"
        )
        self.string_buckets[bucket] = where
        self.names[name] = where
        return struct.pack("<I", where) + inline


def _name_hash(name: str) -> int:
    """The 16-bit name hash libevtx documents (multiply by 65599, add each UTF-16 unit)."""
    value = 0
    data = name.encode("utf-16-le")
    for (unit,) in struct.iter_unpack("<H", data):
        value = (value * 65599 + unit) & 0xFFFFFFFF
    return value & 0xFFFF


# -- records ------------------------------------------------------------------------------


def _encode_record(chunk: _Chunk, event: EventSpec, record_id: int, offset: int) -> bytes:
    named, names, values = _event_data(event)
    written = _filetime(event.time_created)
    subs = _substitutions(event, record_id, written, names, values)
    shape = (named, len(values))
    binxml_at = offset + 24
    instance_at = binxml_at + len(_FRAGMENT_HEADER)
    known = chunk.templates.get(shape)
    if known is not None:
        template_id, template_offset = known
        definition = b""
    else:
        template_id = _template_id(shape)
        template_offset = instance_at + 10
        definition = _template_definition(chunk, shape, template_id, template_offset)
        chunk.templates[shape] = (template_id, template_offset)
        chunk.template_buckets[template_id % 32] = template_offset
    instance = struct.pack("<BBII", _TOK_TEMPLATE_INSTANCE, 1, template_id, template_offset)
    binxml = _FRAGMENT_HEADER + instance + definition + _substitution_array(subs)
    size = 24 + len(binxml) + 4
    head = _RECORD_MAGIC + struct.pack("<IQQ", size, record_id, written)
    return head + binxml + struct.pack("<I", size)


def _event_data(event: EventSpec) -> tuple[bool, list[str], list[str]]:
    data = event.data
    if isinstance(data, Mapping):
        return True, [str(k) for k in data], [str(v) for v in data.values()]
    if isinstance(data, str):  # one value, not one value per character
        return False, [], [data]
    return False, [], [str(v) for v in data]


def _substitutions(
    event: EventSpec, record_id: int, written: int, names: list[str], values: list[str]
) -> list[tuple[int, bytes]]:
    if not 0 <= event.event_id <= 0xFFFF:
        raise ValueError(f"event_id {event.event_id} is not a 16-bit Windows event id")
    if not 0 <= event.level <= 0xFF:
        raise ValueError(f"level {event.level} out of range 0..255")
    subs: list[tuple[int, bytes]] = [
        (_T_STRING, _utf16(event.provider)),
        (_T_UINT16, struct.pack("<H", event.event_id)),
        (_T_UINT8, struct.pack("<B", event.level)),
        (_T_FILETIME, struct.pack("<Q", written)),
        (_T_UINT64, struct.pack("<Q", record_id)),
        (_T_STRING, _utf16(event.channel)),
        (_T_STRING, _utf16(event.computer)),
    ]
    if names:
        for name, value in zip(names, values, strict=True):
            subs.append((_T_STRING, _utf16(name)))
            subs.append((_T_STRING, _utf16(value)))
    else:
        subs.extend((_T_STRING, _utf16(value)) for value in values)
    return subs


def _utf16(text: str) -> bytes:
    encoded = text.encode("utf-16-le", "surrogatepass")
    if len(encoded) > 0xFFFF:
        raise ValueError(f"value of {len(text)} characters is too long for one EVTX value")
    return encoded


def _substitution_array(subs: list[tuple[int, bytes]]) -> bytes:
    parts = [struct.pack("<I", len(subs))]
    parts.extend(struct.pack("<HBB", len(value), kind, 0) for kind, value in subs)
    parts.extend(value for _, value in subs)
    return b"".join(parts)


def _filetime(when: datetime) -> int:
    """100-ns ticks since 1601-01-01 UTC; a naive time is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta: timedelta = when - _FILETIME_EPOCH
    return (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


# -- templates ----------------------------------------------------------------------------


def _template_id(shape: tuple[bool, int]) -> int:
    return int.from_bytes(_template_guid(shape)[:4], "little")


def _template_guid(shape: tuple[bool, int]) -> bytes:
    return hashlib.md5(f"exhunt-lab-event:{shape}".encode(), usedforsecurity=False).digest()


def _template_definition(
    chunk: _Chunk, shape: tuple[bool, int], template_id: int, offset: int
) -> bytes:
    """Template header (next offset, GUID, size) then its BinXML body, at chunk `offset`."""
    body_at = offset + 24
    builder = _BodyBuilder(chunk, body_at)
    builder.raw(_FRAGMENT_HEADER)
    builder.event(shape)
    builder.raw(bytes((_TOK_END_OF_STREAM,)))
    body = builder.payload()
    guid = _template_guid(shape)
    next_offset = chunk.template_buckets[template_id % 32]
    return struct.pack("<I", next_offset) + guid + struct.pack("<I", len(body)) + body


class _BodyBuilder:
    """Builds a template body; tracks the chunk offset so names can be stored inline."""

    def __init__(self, chunk: _Chunk, at: int) -> None:
        self._chunk = chunk
        self._buf = bytearray()
        self._at = at

    def payload(self) -> bytes:
        return bytes(self._buf)

    def raw(self, data: bytes) -> None:
        self._buf += data

    def _here(self) -> int:
        return self._at + len(self._buf)

    def event(self, shape: tuple[bool, int]) -> None:
        self.element("Event", [("xmlns", None, _EVENT_NAMESPACE)], self._system_and_data(shape))

    def _system_and_data(self, shape: tuple[bool, int]) -> _Children:
        def children() -> None:
            self.element("System", [], self._system)
            self.element("EventData", [], lambda: self._data(shape))

        return children

    def _system(self) -> None:
        self.element("Provider", [("Name", _SUB_PROVIDER, "")], None)
        self.element("EventID", [], lambda: self.substitution(_SUB_EVENT_ID, _T_UINT16))
        self.element("Level", [], lambda: self.substitution(_SUB_LEVEL, _T_UINT8))
        self.element("TimeCreated", [("SystemTime", _SUB_TIME, "")], None)
        self.element("EventRecordID", [], lambda: self.substitution(_SUB_RECORD_ID, _T_UINT64))
        self.element("Channel", [], lambda: self.substitution(_SUB_CHANNEL, _T_STRING))
        self.element("Computer", [], lambda: self.substitution(_SUB_COMPUTER, _T_STRING))

    def _data(self, shape: tuple[bool, int]) -> None:
        named, count = shape
        for i in range(count):
            if named:
                name_sub = _SYSTEM_SUBS + 2 * i
                value = partial(self.substitution, name_sub + 1, _T_STRING)
                self.element("Data", [("Name", name_sub, "")], value)
            else:
                value = partial(self.substitution, _SYSTEM_SUBS + i, _T_STRING)
                self.element("Data", [], value)

    def substitution(self, index: int, value_type: int) -> None:
        self._buf += struct.pack("<BHB", _TOK_NORMAL_SUBSTITUTION, index, value_type)

    def element(
        self,
        name: str,
        attributes: list[tuple[str, int | None, str]],
        children: _Children | None,
    ) -> None:
        """An element; each attribute is (name, substitution index or None, literal text)."""
        token = _TOK_OPEN_START_ATTRS if attributes else _TOK_OPEN_START
        self._buf += struct.pack("<BHI", token, _NO_DEPENDENCY, 0)
        size_field = len(self._buf) - 4
        self._buf += self._chunk.name_ref(name, self._here())
        if attributes:
            list_field = len(self._buf)
            self._buf += b"\x00\x00\x00\x00"
            for i, (attr, sub, literal) in enumerate(attributes):
                last = i == len(attributes) - 1
                self._buf.append(_TOK_ATTRIBUTE_LAST if last else _TOK_ATTRIBUTE_MORE)
                self._buf += self._chunk.name_ref(attr, self._here())
                if sub is None:
                    text = literal.encode("utf-16-le")
                    self._buf += struct.pack("<BBH", _TOK_VALUE_TEXT, _T_STRING, len(text) // 2)
                    self._buf += text
                else:
                    kind = _T_FILETIME if sub == _SUB_TIME else _T_STRING
                    self.substitution(sub, kind)
            struct.pack_into("<I", self._buf, list_field, len(self._buf) - list_field - 4)
        if children is None:
            self._buf.append(_TOK_CLOSE_EMPTY)
        else:
            self._buf.append(_TOK_CLOSE_START)
            children()
            self._buf.append(_TOK_END_ELEMENT)
        struct.pack_into("<I", self._buf, size_field, len(self._buf) - size_field - 4)
