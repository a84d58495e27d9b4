"""Events of a wevtutil XML export.

Source (format facts): `wevtutil qe LOG /f:xml` prints `<Event xmlns=...>` elements one after
another without a root element (`/e:Events` adds one); `/f:RenderedXml` adds
`<RenderingInfo><Message>` (Microsoft Learn, "wevtutil"). DTDs and entities are refused.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO
from xml.etree import ElementTree as ET
from xml.parsers import expat

from exhunt.model import LogRecord
from exhunt.readers.base import ReadStats
from exhunt.readers.events.common import (
    MAX_EVENT_CHARS,
    READ_SIZE,
    Refused,
    base_fields,
    encoding_of,
    make_record,
    parse_event_time,
)

# Deeper element nesting than this inside an export is refused (real events nest ~5 deep).
MAX_XML_DEPTH = 64


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
    fields = base_fields(
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


def read_xml(stream: BinaryIO, artifact: str, stats: ReadStats) -> Iterator[LogRecord]:
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
    except Refused as exc:
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
    encoding, skip = encoding_of(head)
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
            raise Refused("document type declaration (DTD) or entity is not allowed")
        if text:
            yield text
        chunk = stream.read(READ_SIZE)
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
    return make_record(artifact, number, when, fields, stats)


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
        raise Refused("document type declaration (DTD) is not allowed in an event export")

    def _refuse_entity(self, *_: object) -> None:
        raise Refused("entity declarations are not allowed in an event export")

    def _refuse_external(self, *_: object) -> int:
        raise Refused("external entity references are not allowed in an event export")

    def _start(self, tag: str, attrs: dict[str, str]) -> None:
        self._depth += 1
        if self._depth > MAX_XML_DEPTH:
            raise Refused(f"elements nested deeper than {MAX_XML_DEPTH} levels")
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

