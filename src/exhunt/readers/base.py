"""What every reader shares: counting what it read, and what it could not."""

from __future__ import annotations

import gzip
import io
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO

from exhunt.model import InputProblem

# A log line longer than this is not a log line: it is counted, named and skipped.
MAX_LINE_BYTES = 1 << 20
# A .gz that expands beyond this ratio (past the floor) is a decompression bomb, not a log.
MAX_GZIP_RATIO = 200
MAX_GZIP_FLOOR = 256 << 20
# How many bad lines of one file are named individually before only counting.
MAX_NAMED_BAD_LINES = 5


@dataclass(slots=True)
class ReadStats:
    """Per-artifact bookkeeping: records read, bad lines, the time window covered."""

    artifact: str
    records: int = 0
    bad_lines: int = 0
    first: datetime | None = None
    last: datetime | None = None
    problems: list[InputProblem] = field(default_factory=list)
    # Header facts a log states about itself ("Version" of an Exchange log is the build).
    meta: dict[str, str] = field(default_factory=dict)

    def seen(self, when: datetime | None) -> None:
        if when is None:
            return
        if self.first is None or when < self.first:
            self.first = when
        if self.last is None or when > self.last:
            self.last = when

    def bad_line(self, line: int | None, reason: str) -> None:
        """Count a line that could not be read; name the first few."""
        self.bad_lines += 1
        if self.bad_lines <= MAX_NAMED_BAD_LINES:
            where = f"line {line}: " if line is not None else ""
            self.problems.append(InputProblem(self.artifact, f"{where}{reason}; skipped"))

    def fail(self, message: str) -> None:
        """The artifact (or the rest of it) could not be read."""
        self.problems.append(InputProblem(self.artifact, message))

    def summarize(self) -> None:
        """Add one problem line for bad lines beyond those named."""
        hidden = self.bad_lines - MAX_NAMED_BAD_LINES
        if hidden > 0:
            self.problems.append(
                InputProblem(self.artifact, f"{hidden} more unreadable lines skipped")
            )


class CountingRaw(io.RawIOBase):
    """Adapts any binary file object so io.BufferedReader can peek at it; counts bytes."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        self.consumed += len(data)
        return len(data)


class BoundedGzip(io.RawIOBase):
    """A .gz decompressed as it is read, refusing to expand without bound: past
    MAX_GZIP_FLOOR by more than MAX_GZIP_RATIO, or past `limit` bytes when one is given
    (ValueError). A cut-short file raises EOFError; damaged data gzip.BadGzipFile (an
    OSError), as the gzip module does for a bad header."""

    def __init__(self, inner: io.BufferedReader, limit: int | None = None) -> None:
        self._counter = CountingRaw(inner)
        self._gzip = gzip.GzipFile(fileobj=io.BufferedReader(self._counter), mode="rb")
        self._out = 0
        self._limit = limit

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._gzip.read(size if size >= 0 else 8 << 20)
        except zlib.error as exc:  # damaged deflate data: the gzip module lets this through
            raise gzip.BadGzipFile(f"damaged gzip data: {exc}") from exc
        self._out += len(data)
        if self._limit is not None and self._out > self._limit:
            raise ValueError(f"expands to more than {self._limit} bytes")
        consumed = max(self._counter.consumed, 1)
        if self._out > MAX_GZIP_FLOOR and self._out > consumed * MAX_GZIP_RATIO:
            raise ValueError(
                f"gzip expands more than {MAX_GZIP_RATIO}x (a decompression bomb?)"
            )
        return data
