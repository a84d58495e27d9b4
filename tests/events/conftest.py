"""Fixtures for the event-log reader and EVTX writer tests (helpers are handed out as fixtures
so no test imports this module by name)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from exhunt.model import LogRecord
from exhunt.readers.base import ReadStats
from exhunt.readers.events import read_events

ReadAll = Callable[..., tuple[list[LogRecord], ReadStats]]


def _read_all(
    source: bytes | Path, artifact: str = "input", *, local: bool = True
) -> tuple[list[LogRecord], ReadStats]:
    """Every record of `source` (bytes, or a file; read through its path when `local`)."""
    stats = ReadStats(artifact)
    if isinstance(source, Path):
        with source.open("rb") as handle:
            local_path = source if local else None
            records = list(read_events(handle, artifact, stats, local_path=local_path))
    else:
        records = list(read_events(io.BytesIO(source), artifact, stats))
    return records, stats


@pytest.fixture
def read_all() -> ReadAll:
    return _read_all


@pytest.fixture
def events_data() -> Path:
    return Path(__file__).resolve().parent.parent / "data" / "events"


@pytest.fixture
def problems() -> Callable[[ReadStats], str]:
    def text(stats: ReadStats) -> str:
        return "\n".join(p.message for p in stats.problems)

    return text
