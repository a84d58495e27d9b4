"""What a file is, from its first bytes: its text encoding, and whether it is an event export.

One sniffer for every reader and for `collect`. Windows tools write text as UTF-8 (with or
without a byte-order mark) or UTF-16: PowerShell 5.1's `Out-File` and `>` write UTF-16 LE with
a BOM (Microsoft's about_Character_Encoding), and some tools write it without one, which shows
as a NUL byte beside each ASCII character.
"""

from __future__ import annotations

import codecs
import re
from typing import Literal

SNIFF_BYTES = 4096  # the head a file is judged by
EventFormat = Literal["evtx", "xml", "json"]
EVTX_MAGIC = b"ElfFile\x00"
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# With a BOM, a decoder fed from the first byte that reads and drops it.
_BOM_DECODERS = {"utf-8": "utf-8-sig", "utf-16-le": "utf-16", "utf-16-be": "utf-16"}


def sniff_encoding(head: bytes) -> tuple[str, int]:
    """The text encoding of a file's head (`utf-8`, `utf-16-le`, `utf-16-be`) and the length
    of its byte-order mark (0 without one)."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name, len(bom)
    # No BOM: ASCII text in UTF-16 has a NUL byte beside every character.
    if len(head) >= 2 and head[0] != 0 and head[1] == 0 and (len(head) < 4 or head[3] == 0):
        return "utf-16-le", 0
    if len(head) >= 2 and head[0] == 0 and head[1] != 0 and (len(head) < 4 or head[2] == 0):
        return "utf-16-be", 0
    return "utf-8", 0


def text_decoder(head: bytes, errors: str = "replace") -> codecs.IncrementalDecoder:
    """An incremental decoder for the file whose head this is, fed from its first byte (a
    byte-order mark is read and dropped)."""
    encoding, bom = sniff_encoding(head)
    return codecs.getincrementaldecoder(_BOM_DECODERS[encoding] if bom else encoding)(errors)


def decode_head(head: bytes) -> str:
    """A file's head as text (undecodable bytes replaced, a cut last character dropped)."""
    return text_decoder(head).decode(head).lstrip("\ufeff")


# --- event exports ---------------------------------------------------------------------------

_EVENT_NAMESPACE = "schemas.microsoft.com/win/2004/08/events/event"
_EVENT_ROOT = re.compile(
    r"<Event\s+xmlns=[\"']http://schemas\.microsoft\.com/win/2004/08/events/event[\"']")
_JSON_EVENT_KEYS = (
    "ProviderName", "LogName", "TimeCreated", "RecordId", "MachineName", "LevelDisplayName",
)
# ConvertTo-Json writes "Message" first; a long message can fill the whole head.
_MESSAGE_FIRST = re.compile(r'\[?\s*\{\s*"Message"\s*:\s*"(?:[^"\\]|\\.)*$', re.DOTALL)


def sniff_event_export(head: bytes) -> EventFormat | None:
    """Which event export the first bytes of a file look like (by its syntax), or None."""
    if head.startswith(EVTX_MAGIC):
        return "evtx"
    text = decode_head(head).lstrip()
    if text.startswith("<"):
        return "xml"
    if text.startswith(("[", "{")):
        return "json"
    return None


def is_event_export(head: bytes) -> bool:
    """Whether a file's first bytes are a wevtutil XML or a Get-WinEvent JSON export: its
    syntax, and the event schema's namespace or at least two of the event's own keys."""
    text = decode_head(head).lstrip()
    if _EVENT_NAMESPACE in text:
        return _EVENT_ROOT.search(text) is not None
    if not text.startswith(("[", "{")):
        return False
    if sum(f'"{key}"' in text for key in _JSON_EVENT_KEYS) >= 2:
        return True
    return len(head) >= SNIFF_BYTES and _MESSAGE_FIRST.match(text) is not None
