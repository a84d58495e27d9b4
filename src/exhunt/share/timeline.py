"""A timeline of a hunt in Timesketch's import format (JSONL), and the same rows as CSV.

Timesketch needs three fields per event: `message`, `datetime` (ISO 8601) and
`timestamp_desc` (what the time means); anything else becomes a searchable attribute.
Source: Timesketch docs, "Import from JSON or CSV"
(https://timesketch.org/guides/user/import-from-json-csv/).

Order of the file: the coverage windows first (a start and an end event per log family, so a
gap shows as a stretch with no events), then one event per finding and one per timed line of
its evidence (the forged requests of an SSRF finding, each with its own time). A finding
without a time is kept, dated 1970-01-01 with `timestamp_desc` "No time in evidence", so
nothing is dropped; the coverage events tell how far the logs reached.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from exhunt.hunt.verdict import counts
from exhunt.model import Finding, HuntReport, iso

NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)
# Evidence lines that start with their own time: `2021-03-04 10:01:52  /ecp/y.js -> HTTP 200`.
_TIMED_LINE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)\s+(.*)$")
MAX_EVIDENCE_EVENTS = 50  # per finding: the report itself keeps the rest
COLUMNS = ("message", "datetime", "timestamp", "timestamp_desc", "hostname", "source",
           "data_type", "check", "severity", "stage", "cves", "client_ip", "webshell_path",
           "artifact", "line", "verdict", "evidence")
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _event(when: datetime | None, desc: str, message: str, report: HuntReport,
           data_type: str, **extra: Any) -> dict[str, Any]:
    known = when if when is not None else NO_TIME
    if known.tzinfo is None:
        known = known.replace(tzinfo=UTC)
    event: dict[str, Any] = {
        "message": message,
        "datetime": iso(known),
        "timestamp": int(known.timestamp() * 1_000_000),  # microseconds, as Timesketch keeps
        "timestamp_desc": desc if when is not None else "No time in evidence",
        "hostname": report.host.name or "",
        "source": report.source,
        "data_type": data_type,
        "verdict": report.verdict.label,
    }
    event.update(extra)
    return event


def timeline_events(report: HuntReport) -> Iterator[dict[str, Any]]:
    """Coverage windows first, then findings in the report's (time) order with their lines."""
    for kind, cov in sorted(report.coverage.items()):
        what = f"{kind} logs: {cov.files} files, {cov.records} records"
        if cov.first is not None:
            yield _event(cov.first, "Coverage start", f"Coverage starts: {what}", report,
                         "exhunt:coverage", artifact=kind)
        if cov.last is not None:
            yield _event(cov.last, "Coverage end", f"Coverage ends: {what}", report,
                         "exhunt:coverage", artifact=kind)
    for finding in report.findings:
        yield from _finding_events(report, finding)


def _finding_events(report: HuntReport, finding: Finding) -> Iterator[dict[str, Any]]:
    fields = {
        "check": finding.check, "severity": finding.severity.label,
        "stage": finding.stage.value, "cves": ",".join(finding.cves),
        "client_ip": finding.client_ip or "", "webshell_path": finding.webshell_path or "",
        "artifact": finding.artifact, "line": finding.line if finding.line is not None else "",
    }
    weight = "" if counts(finding) else " (context)"
    yield _event(finding.timestamp, "First seen", f"{finding.title}{weight}", report,
                 "exhunt:finding", evidence=finding.evidence, **fields)
    timed = 0
    for text in finding.evidence.splitlines():
        match = _TIMED_LINE.match(text)
        if match is None:
            continue
        when = _parse(match.group(1))
        if when is None:
            continue
        timed += 1
        if timed > MAX_EVIDENCE_EVENTS:
            break
        yield _event(when, "Event time", f"{finding.check}: {match.group(2).strip()}", report,
                     "exhunt:evidence", evidence=text.strip(), **fields)


def _parse(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace(" ", "T")).replace(tzinfo=UTC)
    except ValueError:
        return None


def timeline_jsonl(reports: Sequence[HuntReport]) -> str:
    lines = [json.dumps(event, sort_keys=True)  # ASCII: no U+2028 to split a line
             for report in reports for event in timeline_events(report)]
    return "".join(line + "\n" for line in lines)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def timeline_csv(reports: Sequence[HuntReport]) -> str:
    """The same events as CSV, every cell made inert for spreadsheets (no formulas)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore",
                            quoting=csv.QUOTE_ALL)  # a CR inside a cell stays inside it
    writer.writeheader()
    for report in reports:
        for event in timeline_events(report):
            writer.writerow({name: _cell(event.get(name, "")) for name in COLUMNS})
    return out.getvalue()
