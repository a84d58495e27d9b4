"""JSONL output of scan results, and resuming from an earlier partial output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

# The contract's fields in their documented order (docs/contracts.md, `exhunt scan`); extra fields
# are additive and come after.
FIELDS = (
    "target", "ip", "port", "scheme", "time", "reachable", "exchange", "build",
    "build_source", "product", "release", "vulnerabilities", "error",
)  # fmt: skip


def encode(result: dict[str, Any]) -> bytes:
    ordered = {k: result.get(k) for k in FIELDS}
    ordered.update({k: v for k, v in result.items() if k not in ordered})
    return orjson.dumps(ordered) + b"\n"


def done_keys(path: Path) -> set[tuple[str, int]]:
    """(target, port) already in an earlier output; torn or foreign lines are ignored."""
    done: set[tuple[str, int]] = set()
    if not path.exists():
        return done
    with path.open("rb") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                target, port = rec.get("target"), rec.get("port")
                if isinstance(target, str) and isinstance(port, int):
                    done.add((target, port))
    return done


def repair_tail(path: Path) -> None:
    """Cut a torn last line (a crash mid-write) so appended results start on a new line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(-1, 2)
        if fh.read(1) == b"\n":
            return
        data = path.read_bytes()
        cut = data.rfind(b"\n") + 1
        fh.seek(cut)
        fh.truncate()


class JsonlSink:
    """Writes one line per result and flushes it, so a crash loses at most one line."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.count = 0

    def __call__(self, result: dict[str, Any]) -> None:
        self.stream.write(encode(result))
        self.stream.flush()
        self.count += 1


def read_results(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)
