"""Many literals at once, before any line is split into columns.

Python's `re` runs at tens of MB/s over alternations; hyperscan scans a whole
chunk for every literal at about the speed the disk delivers it. Only lines that
hold a literal the checks care about are ever parsed.
"""

from __future__ import annotations

from collections.abc import Iterable

import hyperscan

# A pattern written "re:<expression>" is a hyperscan regular expression, for the few
# indicators that no single literal narrows enough (OWASSRF's /owa/<mailbox>@<domain>/powershell).
REGEX_PREFIX = "re:"


class LiteralFilter:
    """Finds the lines of a buffer that hold any of a set of literals (case-insensitive)."""

    def __init__(self, literals: Iterable[str]) -> None:
        unique = sorted({lit for lit in literals if lit})
        self.literals = tuple(unique)
        self._db: hyperscan.Database | None = None
        if unique:
            db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            db.compile(
                expressions=[_expression(lit) for lit in unique],
                ids=list(range(len(unique))),
                elements=len(unique),
                flags=hyperscan.HS_FLAG_CASELESS,
            )
            self._db = db

    @property
    def passes_everything(self) -> bool:
        return self._db is None

    def matches(self, data: bytes) -> bool:
        """Whether `data` holds any literal (stops at the first)."""
        if self._db is None:
            return True

        def on_match(_id: int, _start: int, _end: int, _flags: int, _ctx: object) -> bool:
            return True  # stop: one is enough

        try:
            self._db.scan(data, match_event_handler=on_match)
        except hyperscan.ScanTerminated:
            return True
        return False

    def line_starts(self, chunk: bytes) -> list[int]:
        """Start offsets of the lines of `chunk` holding a literal, ascending, each once."""
        if self._db is None:
            return _all_line_starts(chunk)
        ends: list[int] = []

        def on_match(_id: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            ends.append(end)

        self._db.scan(chunk, match_event_handler=on_match)
        starts: list[int] = []
        last_line_end = -1
        for end in sorted(ends):
            if end <= last_line_end:
                continue  # another literal on a line already taken
            start = chunk.rfind(b"\n", 0, end) + 1
            starts.append(start)
            nl = chunk.find(b"\n", end)
            last_line_end = len(chunk) if nl < 0 else nl
        return starts


def _expression(pattern: str) -> bytes:
    if pattern.startswith(REGEX_PREFIX):
        return pattern[len(REGEX_PREFIX) :].encode("utf-8")
    # A literal, escaped byte by byte so the regex compiler takes it as written.
    return b"".join(
        bytes([b]) if chr(b).isalnum() else b"\\x%02x" % b for b in pattern.encode("utf-8")
    )


def _all_line_starts(chunk: bytes) -> list[int]:
    starts = [0] if chunk else []
    pos = chunk.find(b"\n")
    while pos >= 0 and pos + 1 < len(chunk):
        starts.append(pos + 1)
        pos = chunk.find(b"\n", pos + 1)
    return starts
