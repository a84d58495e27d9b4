"""Hunt reports back from their JSON (`exhunt hunt --format json`), for the coordinator's export.

Only what the exports use is read: host, verdict, coverage and findings. A report or a
finding that is not in the shape exhunt writes is named and left out; the rest is kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from exhunt.contract import MAX_DOCUMENT_BYTES, ContractError, read_reports_json
from exhunt.model import HuntReport, InputProblem

MAX_REPORT_BYTES = MAX_DOCUMENT_BYTES


def report_from_json(data: object, name: str) -> tuple[HuntReport | None, list[InputProblem]]:
    """One report as `report_json` wrote it; None (and why) if it is not one."""
    try:
        return HuntReport.from_json(data, name)
    except ContractError as exc:
        return None, [InputProblem(name, f"not an exhunt hunt report: {exc}")]


def read_reports(paths: list[Path]) -> tuple[list[HuntReport], list[InputProblem]]:
    """Hunt report JSON files (a report or a list of them); folders: their *.json files."""
    reports: list[HuntReport] = []
    problems: list[InputProblem] = []
    for path in _files(paths):
        try:
            if path.stat().st_size > MAX_REPORT_BYTES:
                problems.append(InputProblem(str(path), "over 512 MB: not read"))
                continue
            data = path.read_bytes()
        except OSError as exc:
            problems.append(InputProblem(str(path), f"cannot read hunt report: {exc}"[:300]))
            continue
        found, trouble = read_reports_json(data, str(path))
        reports.extend(found)
        problems.extend(trouble)
    return reports, problems


def _files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.json") if p.is_file())
        else:
            yield path
