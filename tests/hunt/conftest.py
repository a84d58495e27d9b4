from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from exhunt.checks.base import HuntContext, registered_checks
from exhunt.model import Finding, RecordKind
from exhunt.readers.base import ReadStats
from exhunt.readers.prefilter import LiteralFilter
from exhunt.readers.textlog import read_text_log

DATA = Path(__file__).parent.parent / "data" / "hunt"

Judge = Callable[[RecordKind, Path], list[Finding]]


@pytest.fixture
def data() -> Path:
    return DATA


@pytest.fixture
def judge() -> Judge:
    """Read one log through the prefilter of every check of its kind, then judge it."""

    def run(kind: RecordKind, path: Path) -> list[Finding]:
        checks = [cls(HuntContext()) for cls in registered_checks() if kind in cls.kinds]
        literals = [lit for c in checks for lit in (c.literals or ())]
        stats = ReadStats(str(path))
        with path.open("rb") as stream:
            records = list(read_text_log(stream, kind, stats, LiteralFilter(literals)))
        found: list[Finding] = []
        for check in checks:
            for record in records:
                found.extend(check.feed(record))
            found.extend(check.finalize())
        return found

    return run
