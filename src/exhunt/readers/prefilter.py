"""Many literals at once, before any line is split into columns.

Python's `re` runs at tens of MB/s over alternations; hyperscan scans a whole
chunk for every literal at about the speed the disk delivers it. Only lines that
hold a literal the checks care about are ever parsed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import hyperscan

# A pattern written "re:<expression>" is a hyperscan regular expression, for the few
# indicators that no single literal narrows enough (OWASSRF's /owa/<mailbox>@<domain>/powershell).
REGEX_PREFIX = "re:"


@dataclass(slots=True)
class ChunkScan:
    """Line starts found in one chunk by a single pass."""

    matches: list[int] = field(default_factory=list)   # lines holding a literal
    masks: list[int] = field(default_factory=list)     # for each, bit i: literals[i] is in it
    headers: list[int] = field(default_factory=list)   # lines starting with '#'
    junk: list[int] = field(default_factory=list)      # lines holding NUL bytes


_HEADER_ID, _JUNK_ID = -1, -2


class LiteralFilter:
    """Finds the lines of a buffer that hold any of a set of literals (case-insensitive).

    The same scan also finds the header lines (`#...`) and the lines with NUL bytes, so a
    chunk of log is read once by hyperscan instead of once per question.
    """

    def __init__(self, literals: Iterable[str], quiet: Iterable[str] = (),
                 quieted: Iterable[str] = ()) -> None:
        """`quiet`: patterns (as literals are written) of text in which a hit of one of the
        `quieted` literals does not count, such as a page the product serves all day; a hit
        is inside when the quiet pattern ends where it does or one byte after (".asp" in
        ".aspx"). A line whose every hit is quieted is not a match."""
        unique = sorted({lit for lit in literals if lit})
        self.literals = tuple(unique)
        quiet = tuple(quiet) if unique else ()
        self._any = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK) if unique else None
        if self._any is not None:
            self._any.compile(
                expressions=[_expression(lit) for lit in unique],
                ids=list(range(len(unique))),
                elements=len(unique),
                flags=hyperscan.HS_FLAG_CASELESS,
            )
        n, q = len(unique), len(quiet)
        self._chunk = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._chunk.compile(
            expressions=[*(_expression(lit) for lit in unique), b"^#", b"\\x00",
                         *(_expression(pattern) for pattern in quiet)],
            ids=[*range(n + 2 + q)],
            elements=n + 2 + q,
            flags=[*([hyperscan.HS_FLAG_CASELESS] * n), hyperscan.HS_FLAG_MULTILINE, 0,
                   *([hyperscan.HS_FLAG_CASELESS] * q)],
        )
        self._ids = (n, n + 1)
        self._quieted = self.mask_of(quieted) if quiet else 0

    def mask_of(self, literals: Iterable[str] | None) -> int:
        """The bits `scan` sets for lines holding any of `literals` (-1: every line)."""
        if literals is None or self._any is None:
            return -1
        wanted = set(literals)
        return sum(1 << i for i, lit in enumerate(self.literals) if lit in wanted)

    @property
    def passes_everything(self) -> bool:
        return self._any is None

    def matches(self, data: bytes) -> bool:
        """Whether `data` holds any literal (stops at the first)."""
        if self._any is None:
            return True

        def on_match(_id: int, _start: int, _end: int, _flags: int, _ctx: object) -> bool:
            return True  # stop: one is enough

        try:
            self._any.scan(data, match_event_handler=on_match)
        except hyperscan.ScanTerminated:
            return True
        return False

    def scan(self, buf: bytearray | bytes, lo: int, hi: int) -> ChunkScan:
        """Matches, headers and junk among the lines of buf[lo:hi] (offsets into buf)."""
        ends: list[tuple[int, int]] = []
        headers: list[int] = []
        junk_ends: list[tuple[int, int]] = []
        quiet_ends: set[int] = set()
        header_id, junk_id = self._ids

        def on_match(pattern: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            if pattern < header_id:
                ends.append((lo + end, 1 << pattern))
            elif pattern == header_id:
                headers.append(lo + end - 1)
            elif pattern == junk_id:
                junk_ends.append((lo + end, 0))
            else:
                quiet_ends.add(lo + end)

        self._chunk.scan(memoryview(buf)[lo:hi], match_event_handler=on_match)  # type: ignore[type-var]
        if quiet_ends:
            quieted = self._quieted
            ends = [(end, bit) for end, bit in ends if not (
                bit & quieted and (end in quiet_ends or end + 1 in quiet_ends))]
        found = ChunkScan(headers=headers, junk=_line_starts_of(buf, lo, hi, junk_ends)[0])
        if self._any is None:
            found.matches = _all_line_starts(buf, lo, hi)
            found.masks = [0] * len(found.matches)
        else:
            found.matches, found.masks = _line_starts_of(buf, lo, hi, ends)
        return found

    def line_starts(self, chunk: bytes) -> list[int]:
        """Start offsets of the lines of `chunk` holding a literal, ascending, each once."""
        return self.scan(chunk, 0, len(chunk)).matches


def _line_starts_of(
    buf: bytearray | bytes, lo: int, hi: int, ends: list[tuple[int, int]]
) -> tuple[list[int], list[int]]:
    """Starts of the lines holding the match ends, and the OR of the matches' bits per line."""
    starts: list[int] = []
    masks: list[int] = []
    last_line_end = -1
    for end, bit in sorted(ends):
        if end <= last_line_end:
            masks[-1] |= bit  # another hit on a line already taken
            continue
        starts.append(buf.rfind(b"\n", lo, end) + 1 or lo)
        masks.append(bit)
        nl = buf.find(b"\n", end, hi)
        last_line_end = hi if nl < 0 else nl
    return starts, masks


def _expression(pattern: str) -> bytes:
    if pattern.startswith(REGEX_PREFIX):
        return pattern[len(REGEX_PREFIX) :].encode("utf-8")
    # A literal, escaped byte by byte so the regex compiler takes it as written.
    return b"".join(
        bytes([b]) if chr(b).isalnum() else b"\\x%02x" % b for b in pattern.encode("utf-8")
    )


def _all_line_starts(buf: bytearray | bytes, lo: int, hi: int) -> list[int]:
    starts = [lo] if hi > lo else []
    pos = buf.find(b"\n", lo, hi)
    while pos >= 0 and pos + 1 < hi:
        starts.append(pos + 1)
        pos = buf.find(b"\n", pos + 1, hi)
    return starts
