"""Events of a Get-WinEvent JSON export.

Sources (format facts): `Get-WinEvent | ConvertTo-Json`: EventLogRecord properties Id,
ProviderName, LogName, Level, LevelDisplayName, TimeCreated, MachineName, RecordId, Message,
Properties[].Value (Microsoft Learn, "EventLogRecord Class"); Windows PowerShell 5.1 writes
DateTime as "\\/Date(ms since 1970 UTC)\\/", PowerShell 7 as ISO 8601 (PowerShell docs,
ConvertTo-Json); PowerShell 5.1 `Out-File`/`>` writes UTF-16 LE with a BOM
(about_Character_Encoding).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, BinaryIO

from exhunt.model import LogRecord
from exhunt.readers.base import ReadStats
from exhunt.readers.events.common import (
    MAX_EVENT_CHARS,
    READ_SIZE,
    Refused,
    base_fields,
    encoding_of,
    json_text,
    make_record,
    parse_event_time,
)

_LEVEL_NAMES = {"critical": 1, "error": 2, "warning": 3, "information": 4, "verbose": 5}


def read_json(stream: BinaryIO, artifact: str, stats: ReadStats) -> Iterator[LogRecord]:
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
        encoding, skip = encoding_of(head)
        self._decoder = codecs.getincrementaldecoder(encoding)("replace")
        self.buf = self._decoder.decode(head[skip:]).lstrip("\ufeff")
        self.pos = 0
        self.eof = not head

    def more(self, at_least: int = READ_SIZE) -> bool:
        """Read at least `at_least` more bytes; False at the end of the stream."""
        if self.eof:
            return False
        if self.pos:
            self.buf = self.buf[self.pos :]
            self.pos = 0
        chunk = self._stream.read(max(at_least, READ_SIZE))
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
                raise Refused(
                    f"one JSON value is larger than {MAX_EVENT_CHARS} characters"
                ) from None
            # Maybe the value is just cut by the read: read as much again and retry, so a
            # long value costs linear time.
            if text.more(at_least=pending):
                continue
            raise Refused(f"JSON not well-formed: {exc.msg}") from None
        except RecursionError:
            raise Refused("JSON nested too deeply") from None
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
        except Refused as exc:
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
        except Refused as exc:
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
        (None, json_text(p.get("Value") if isinstance(p, dict) else p))
        for p in _as_list(value.get("Properties"))
    ]
    message = value.get("Message")
    fields = base_fields(
        channel=json_text(value.get("LogName")),
        provider=json_text(value.get("ProviderName")),
        event_id=json_text(value.get("Id")),
        level=_json_level(value),
        computer=json_text(value.get("MachineName")),
        record_id=json_text(value.get("RecordId")),
        message=message if isinstance(message, str) else None,
        data=data,
    )
    return make_record(artifact, number, when, fields, stats)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]



def _json_level(value: Mapping[str, Any]) -> str:
    level = value.get("Level")
    if isinstance(level, int) and not isinstance(level, bool):
        return str(level)
    shown = value.get("LevelDisplayName")
    if isinstance(shown, str) and shown.strip().lower() in _LEVEL_NAMES:
        return str(_LEVEL_NAMES[shown.strip().lower()])
    return json_text(level)


def _json_time(value: Any) -> datetime | None:
    # Windows PowerShell 5.1 sometimes wraps a DateTime: {"value": "/Date(..)/", "DateTime": ..}
    if isinstance(value, dict):
        value = value.get("value", value.get("DateTime"))
    if isinstance(value, str):
        return parse_event_time(value)
    return None
