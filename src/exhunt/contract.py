"""The hunt-JSON contract (docs/contracts.md) read back: one model for everything that takes
an `exhunt hunt --format json` report in (ingest, the portal's upload and viewer, the exports).

The JSON comes from someone else's hands, so the reading is bounded and lenient: unknown keys
are ignored (the hunt adds keys over time), text is cut at a limit, a finding or error not in
exhunt's shape is left out and named; a report is refused, with a plain reason, only when it
is not one (no known verdict) or a field of the contract has the wrong type.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from exhunt.model import (
    VERDICT_LABELS,
    Finding,
    HostInfo,
    HuntReport,
    InputProblem,
    KindCoverage,
    Severity,
    Stage,
    Verdict,
)

MAX_DOCUMENT_BYTES = 512 << 20  # one file of reports (a fleet's, as a JSON array)
MAX_TEXT = 4096  # characters kept of one text field
MAX_ITEMS = 20_000  # findings, or errors, in one report
MAX_COVERAGE_KINDS = 64
MAX_PROBLEMS = 50  # items left out that are named one by one
_SEVERITIES = {s.label: s for s in Severity}
_STAGES = {s.value: s for s in Stage}
T = TypeVar("T")


class ContractError(ValueError):
    """The document is not a hunt report, or a field of the contract has the wrong type."""


def _cut(value: str, limit: int = MAX_TEXT) -> str:
    return value[:limit]


def _optional_text(doc: dict[str, Any], key: str, where: str, limit: int = MAX_TEXT) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ContractError(f"{where}{key} must be text or null, not {_kind(value)}")
    return _cut(value, limit)


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    return {dict: "an object", list: "a list", str: "text", int: "a number", float: "a number",
            type(None): "null"}.get(type(value), type(value).__name__)


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _field(doc: dict[str, Any], key: str, kind: type[T], default: T) -> T:
    value = doc.get(key)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise ContractError(f"{key} must be {_kind(default)}, not {_kind(value)}")
    return value


def _verdict(doc: dict[str, Any]) -> Verdict:
    label = doc.get("verdict")
    if label is None:
        raise ContractError("no verdict: not an exhunt hunt report")
    verdict = Verdict.from_label(label)
    if verdict is None:
        shown = repr(label[:40]) if isinstance(label, str) else _kind(label)
        raise ContractError(f"unknown verdict {shown}; one of {', '.join(VERDICT_LABELS)}")
    return verdict


def _finding(item: object) -> Finding | None:
    if not isinstance(item, dict):
        return None
    check, title = item.get("check"), item.get("title")
    severity = _SEVERITIES.get(item.get("severity"))  # type: ignore[arg-type]
    stage = _STAGES.get(item.get("stage"))  # type: ignore[arg-type]
    if not isinstance(check, str) or not isinstance(title, str) or severity is None or (
            stage is None):
        return None
    cves, line = item.get("cves"), item.get("line")
    client_ip, shell = item.get("client_ip"), item.get("webshell_path")
    artifact, evidence = item.get("artifact"), item.get("evidence")
    account = item.get("account")
    return Finding(
        check=_cut(check, 200), title=_cut(title, 500), severity=severity, stage=stage,
        cves=tuple(_cut(c, 40) for c in cves[:20] if isinstance(c, str))
        if isinstance(cves, list) else (),
        timestamp=_time(item.get("timestamp")),
        artifact=_cut(artifact) if isinstance(artifact, str) else "",
        line=line if isinstance(line, int) and not isinstance(line, bool) else None,
        evidence=_cut(evidence) if isinstance(evidence, str) else "",
        client_ip=_cut(client_ip, 100) if isinstance(client_ip, str) else None,
        webshell_path=_cut(shell, 1000) if isinstance(shell, str) else None,
        account=_cut(account, 256) if isinstance(account, str) else None,
    )


def _error(item: object) -> InputProblem | None:
    if not isinstance(item, dict):
        return None
    artifact, message = item.get("artifact"), item.get("message")
    if not isinstance(artifact, str) or not isinstance(message, str):
        return None
    return InputProblem(_cut(artifact), _cut(message))


def _items(
    items: list[Any], read: Callable[[object], T | None], what: str, name: str,
    problems: list[InputProblem],
) -> list[T]:
    if len(items) > MAX_ITEMS:
        raise ContractError(f"more than {MAX_ITEMS} {what}s")
    kept: list[T] = []
    left_out = 0
    for number, item in enumerate(items, 1):
        value = read(item)
        if value is not None:
            kept.append(value)
            continue
        left_out += 1
        if left_out <= MAX_PROBLEMS:
            problems.append(InputProblem(name, f"{what} {number} is not in exhunt's shape; "
                                               "left out"))
    if left_out > MAX_PROBLEMS:
        problems.append(InputProblem(name, f"{left_out - MAX_PROBLEMS} more {what}s left out"))
    return kept


def _coverage(doc: dict[str, Any]) -> dict[str, KindCoverage]:
    raw = _field(doc, "coverage", dict, {})
    if len(raw) > MAX_COVERAGE_KINDS:
        raise ContractError(f"coverage names more than {MAX_COVERAGE_KINDS} log kinds")
    return {_cut(kind, 64): KindCoverage(_count(cov.get("files")), _count(cov.get("records")),
                                         _time(cov.get("first")), _time(cov.get("last")))
            for kind, cov in raw.items() if isinstance(cov, dict)}


def report_from_json(data: object, name: str = "hunt report") -> tuple[HuntReport,
                                                                       list[InputProblem]]:
    """One parsed report, and what of it was left out (named after `name`).

    Raises ContractError when `data` is not an exhunt hunt report (not an object, no known
    verdict) or a field of the contract has the wrong type (`host` not an object, ...).
    """
    if not isinstance(data, dict):
        raise ContractError(f"a hunt report is a JSON object, not {_kind(data)}")
    verdict = _verdict(data)
    host = _field(data, "host", dict, {})
    source = _optional_text(data, "source", "")
    problems: list[InputProblem] = []
    report = HuntReport(
        source=source if source is not None else name,
        host=HostInfo(_optional_text(host, "name", "host.", 255),
                      _optional_text(host, "exchange_build", "host.", 64)),
        verdict=verdict,
        first_exploitation=_time(data.get("first_exploitation")),
        coverage=_coverage(data),
        exchange_found=data.get("exchange_found") is not False,
    )
    report.findings = _items(_field(data, "findings", list, []), _finding, "finding", name,
                             problems)
    report.errors = _items(_field(data, "errors", list, []), _error, "error", name, problems)
    # Activity not tied to Exchange (docs/verdict-ladder.md): its own section, its own findings.
    activity = _field(data, "host_activity", dict, {})
    report.host_activity = _items(_field(activity, "findings", list, []), _finding,
                                  "host activity finding", name, problems)
    return report, problems


def read_reports_json(data: bytes, name: str) -> tuple[list[HuntReport], list[InputProblem]]:
    """A file of hunt JSON: one report or a list of them. A document that is not JSON, or is
    too big, is one problem; each report that is not one is a problem; the rest are read."""
    if len(data) > MAX_DOCUMENT_BYTES:
        return [], [InputProblem(name, f"over {MAX_DOCUMENT_BYTES >> 20} MB: not read")]
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return [], [InputProblem(name, f"cannot read hunt report: not JSON: {exc}"[:300])]
    reports: list[HuntReport] = []
    problems: list[InputProblem] = []
    for item in document if isinstance(document, list) else [document]:
        try:
            report, found = report_from_json(item, name)
        except ContractError as exc:
            problems.append(InputProblem(name, f"not an exhunt hunt report: {exc}"))
            continue
        reports.append(report)
        problems.extend(found)
    return reports, problems


# For API users (the portal's OpenAPI description): the keys the contract reads.
_TEXT_OR_NULL: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One `exhunt hunt --format json` report (docs/contracts.md). Other keys are "
                   "ignored.",
    "required": ["verdict"],
    "properties": {
        "source": {"type": "string"},
        "host": {"type": "object", "properties": {"name": _TEXT_OR_NULL,
                                                   "exchange_build": _TEXT_OR_NULL}},
        "verdict": {"type": "string", "enum": list(VERDICT_LABELS)},
        "first_exploitation": _TEXT_OR_NULL,
        "coverage": {"type": "object", "maxProperties": MAX_COVERAGE_KINDS},
        "findings": {"type": "array", "maxItems": MAX_ITEMS, "items": {"type": "object"}},
        "errors": {"type": "array", "maxItems": MAX_ITEMS, "items": {"type": "object"}},
        "host_activity": {"anyOf": [{"type": "null"}, {"type": "object", "properties": {
            "findings": {"type": "array", "maxItems": MAX_ITEMS,
                         "items": {"type": "object"}}}}]},
    },
}
