"""What every reader shares: counting what it read, and what it could not."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from exhunt.model import InputProblem

# A log line longer than this is not a log line: it is counted, named and skipped.
MAX_LINE_BYTES = 1 << 20
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
