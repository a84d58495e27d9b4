"""What every form of event export shares: the one record shape, times, text of values.

Every reader of this package gives `LogRecord(kind=EVENT)` with the fields Channel, Provider,
EventID, Level, Computer, RecordID, Message, and each EventData value as `Data[i]` (and
`Data.<Name>` when named); `base_fields` is that mapping.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from exhunt.model import LogRecord, RecordKind
from exhunt.readers.base import ReadStats
from exhunt.readers.sniff import sniff_encoding

# How much text is read at a time from an XML or JSON export.
READ_SIZE = 1 << 20
# One event larger than this is not an event: it is named and skipped (or ends the file).
MAX_EVENT_CHARS = 16 << 20
_PS_DATE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")
_ISO_TIME = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?\s*(Z|[+-]\d\d:?\d\d)?$"
)


class Refused(Exception):
    """The input uses something the reader refuses to process (DTD, entities, depth)."""



def encoding_of(head: bytes) -> tuple[str, int]:
    """The text encoding of an export and the length of its byte-order mark."""
    return sniff_encoding(head)  # the one sniffer of every reader (readers/sniff.py)


def make_record(
    artifact: str, number: int, when: datetime | None, fields: dict[str, str], stats: ReadStats
) -> LogRecord:
    stats.records += 1
    stats.seen(when)
    return LogRecord(RecordKind.EVENT, artifact, number, when, fields)


# -- fields shared by all forms -----------------------------------------------------------


def base_fields(
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



def json_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"  # as PowerShell prints it
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)

