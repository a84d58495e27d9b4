"""Hunt reports back from their JSON (`exhunt hunt --format json`), for the coordinator's export.

Only what the exports use is read: host, verdict, coverage and findings. A report or a
finding that is not in the shape exhunt writes is named and left out; the rest is kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from exhunt.model import (
    Finding,
    HostInfo,
    HuntReport,
    InputProblem,
    KindCoverage,
    Severity,
    Stage,
    Verdict,
)

MAX_REPORT_BYTES = 512 << 20
MAX_TEXT = 4000
_SEVERITIES = {s.label: s for s in Severity}
_VERDICTS = {v.label: v for v in Verdict}
_STAGES = {s.value: s for s in Stage}


def _text(value: object, limit: int = MAX_TEXT) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _finding(data: object) -> Finding | None:
    if not isinstance(data, dict):
        return None
    check, title = _text(data.get("check"), 200), _text(data.get("title"), 500)
    severity = _SEVERITIES.get(str(data.get("severity")))
    stage = _STAGES.get(str(data.get("stage")))
    if check is None or title is None or severity is None or stage is None:
        return None
    cves = data.get("cves")
    line = data.get("line")
    return Finding(
        check=check, title=title, severity=severity, stage=stage,
        cves=tuple(c[:40] for c in cves[:20] if isinstance(c, str))
        if isinstance(cves, list) else (),
        timestamp=_time(data.get("timestamp")),
        artifact=_text(data.get("artifact")) or "",
        line=line if isinstance(line, int) and not isinstance(line, bool) else None,
        evidence=_text(data.get("evidence")) or "",
        client_ip=_text(data.get("client_ip"), 100),
        webshell_path=_text(data.get("webshell_path"), 1000),
    )


def report_from_json(data: object, name: str) -> tuple[HuntReport | None, list[InputProblem]]:
    """One report as `report_json` wrote it; None (and why) if it is not one."""
    if not isinstance(data, dict) or not isinstance(data.get("verdict"), str) or (
            data["verdict"] not in _VERDICTS):
        return None, [InputProblem(name, "not an exhunt hunt report (no known verdict)")]
    host = data.get("host") if isinstance(data.get("host"), dict) else {}
    assert isinstance(host, dict)
    report = HuntReport(
        source=_text(data.get("source"), 1000) or name,
        host=HostInfo(_text(host.get("name"), 255), _text(host.get("exchange_build"), 64)),
        verdict=_VERDICTS[str(data["verdict"])],
        first_exploitation=_time(data.get("first_exploitation")),
    )
    coverage = data.get("coverage")
    for kind, cov in (coverage.items() if isinstance(coverage, dict) else ()):
        if isinstance(cov, dict) and isinstance(kind, str):
            files, records = cov.get("files"), cov.get("records")
            report.coverage[kind[:40]] = KindCoverage(
                files if isinstance(files, int) else 0,
                records if isinstance(records, int) else 0,
                _time(cov.get("first")), _time(cov.get("last")))
    problems: list[InputProblem] = []
    findings = data.get("findings")
    for number, item in enumerate(findings if isinstance(findings, list) else [], 1):
        finding = _finding(item)
        if finding is None:
            problems.append(InputProblem(name, f"finding {number} is not in exhunt's shape; "
                                               "left out"))
        else:
            report.findings.append(finding)
    return report, problems[:50]


def read_reports(paths: list[Path]) -> tuple[list[HuntReport], list[InputProblem]]:
    """Hunt report JSON files (a report or a list of them); folders: their *.json files."""
    reports: list[HuntReport] = []
    problems: list[InputProblem] = []
    for path in _files(paths):
        try:
            if path.stat().st_size > MAX_REPORT_BYTES:
                problems.append(InputProblem(str(path), "over 512 MB: not read"))
                continue
            document: Any = json.loads(path.read_bytes())
        except (OSError, ValueError, RecursionError) as exc:
            problems.append(InputProblem(str(path), f"cannot read hunt report: {exc}"[:300]))
            continue
        for item in document if isinstance(document, list) else [document]:
            report, found = report_from_json(item, str(path))
            problems.extend(found)
            if report is not None:
                reports.append(report)
    return reports, problems


def _files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.json") if p.is_file())
        else:
            yield path
