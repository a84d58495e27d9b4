"""Reading lab copies back in tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from exhunt.lab.triage import TriageTruth

V15 = "Program Files/Microsoft/Exchange Server/V15"


@dataclass(frozen=True)
class Built:
    out: Path
    truth: TriageTruth


Builder = Callable[..., Built]


@dataclass
class LogFile:
    path: Path
    kind: str  # httpproxy, rps, ecp, oab, iis
    header: list[str]
    fields: list[str]
    lines: list[str]


def classify(rel: str) -> str | None:
    if "/Logging/HttpProxy/" in rel:
        return "httpproxy"
    if "/Powershell-Proxy/Http/" in rel:
        return "rps"
    if "/ECP/Server/" in rel:
        return "ecp"
    if "/OABGeneratorLog/" in rel:
        return "oab"
    if "/LogFiles/W3SVC" in rel:
        return "iis"
    return None


def log_files(root: Path) -> Iterator[LogFile]:
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        kind = classify(path.as_posix())
        if kind is None:
            continue
        text = path.read_bytes().decode("utf-8")
        assert text.endswith("\r\n"), path
        rows = text[:-2].split("\r\n")
        header = [r for r in rows if r.startswith("#")]
        fields_line = next(r for r in header if r.startswith("#Fields: "))
        sep = " " if kind == "iis" else ","
        fields = fields_line[len("#Fields: "):].split(sep)
        lines = [r for r in rows if not r.startswith("#")]
        yield LogFile(path, kind, header, fields, lines)


def csv_rows(lf: LogFile) -> list[list[str]]:
    return list(csv.reader(io.StringIO("\n".join(lf.lines))))


def line_time(lf: LogFile, line: str) -> str:
    if lf.kind == "iis":
        d, t = line.split(" ", 2)[:2]
        return f"{d}T{t}"
    return line.split(",", 1)[0]


def all_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
