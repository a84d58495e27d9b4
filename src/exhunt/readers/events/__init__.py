"""Windows event logs in the three forms a responder gets them: .evtx, wevtutil XML, JSON.

One output for all three: `LogRecord(kind=EVENT)` whose fields are Channel, Provider, EventID,
Level, Computer, RecordID, Message, and each EventData value as `Data[i]` (and `Data.<Name>`
when named). Formats only: nothing here judges an event.

One module per form, each with the sources of its format facts: `evtx_file` (the `evtx`
package, Rust, with the `EventSelection` pre-filter of `selection`), `xml_export` (wevtutil
XML), `json_export` (Get-WinEvent JSON); `common` holds the field mapping and event times.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from exhunt.model import LogRecord
from exhunt.readers.base import ReadStats
from exhunt.readers.events.common import MAX_EVENT_CHARS, READ_SIZE, parse_event_time
from exhunt.readers.events.evtx_file import read_evtx
from exhunt.readers.events.json_export import read_json
from exhunt.readers.events.selection import EventSelection
from exhunt.readers.events.xml_export import read_xml
from exhunt.readers.sniff import EventFormat, sniff_event_export

__all__ = [
    "MAX_EVENT_CHARS",
    "EventFormat",
    "EventSelection",
    "parse_event_time",
    "read_events",
    "sniff_event_export",
]


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
    stream = io.BufferedReader(_Rewound(head, data), READ_SIZE)
    try:
        if kind == "evtx":
            yield from read_evtx(stream, artifact, stats, local_path, select)
        elif kind == "xml":
            yield from read_xml(stream, artifact, stats)
        else:
            yield from read_json(stream, artifact, stats)
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
