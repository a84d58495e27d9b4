"""An uploaded hunt report (docs/contracts.md) turned back into a HuntReport, so the portal can
show it with the hunt's own one-file HTML (`exhunt.hunt.report.report_html`).

The JSON came from a victim's upload: every field is checked, anything malformed is dropped
or defaulted, and sizes are bounded. The HTML is served apart, under a sandboxing CSP.
"""

from __future__ import annotations

from datetime import UTC, datetime
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

MAX_SHOWN = 2000  # findings and problems shown; the stored report keeps them all
MAX_TEXT = 4096


def _text(value: object, limit: int = MAX_TEXT) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _optional(value: object) -> str | None:
    return value[:MAX_TEXT] if isinstance(value, str) else None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _finding(item: dict[str, Any]) -> Finding:
    severity = _text(item.get("severity")).upper()
    stage = _text(item.get("stage"))
    cves = item.get("cves")
    line = item.get("line")
    return Finding(
        check=_text(item.get("check")),
        title=_text(item.get("title")),
        severity=Severity[severity] if severity in Severity.__members__ else Severity.INFO,
        stage=Stage(stage) if stage in {s.value for s in Stage} else Stage.PROBE,
        cves=tuple(_text(c, 32) for c in cves[:20] if isinstance(c, str))
        if isinstance(cves, list) else (),
        timestamp=_time(item.get("timestamp")),
        artifact=_text(item.get("artifact")),
        line=line if isinstance(line, int) and not isinstance(line, bool) else None,
        evidence=_text(item.get("evidence")),
        client_ip=_optional(item.get("client_ip")),
        webshell_path=_optional(item.get("webshell_path")),
        account=_optional(item.get("account")),
    )


def report_from_json(doc: dict[str, Any]) -> HuntReport:
    """The HuntReport a JSON report describes (as far as it is well formed)."""
    host = doc.get("host") if isinstance(doc.get("host"), dict) else {}
    assert isinstance(host, dict)
    label = _text(doc.get("verdict")).upper()
    coverage: dict[str, KindCoverage] = {}
    raw_coverage = doc.get("coverage")
    for kind, cov in (raw_coverage.items() if isinstance(raw_coverage, dict) else []):
        if isinstance(cov, dict) and len(coverage) < 64:
            coverage[_text(kind, 64)] = KindCoverage(
                files=_int(cov.get("files")), records=_int(cov.get("records")),
                first=_time(cov.get("first")), last=_time(cov.get("last")))
    findings = doc.get("findings")
    errors = doc.get("errors")
    return HuntReport(
        source=_text(doc.get("source")),
        host=HostInfo(name=_optional(host.get("name")),
                      exchange_build=_optional(host.get("exchange_build"))),
        verdict=Verdict[label] if label in Verdict.__members__ else Verdict.CLEAN,
        first_exploitation=_time(doc.get("first_exploitation")),
        coverage=coverage,
        findings=[_finding(f) for f in (findings if isinstance(findings, list) else [])
                  [:MAX_SHOWN] if isinstance(f, dict)],
        errors=[InputProblem(_text(e.get("artifact")), _text(e.get("message")))
                for e in (errors if isinstance(errors, list) else [])[:MAX_SHOWN]
                if isinstance(e, dict)],
        exchange_found=doc.get("exchange_found") is not False,
        host_activity=_host_activity(doc.get("host_activity")),
    )


def _host_activity(section: object) -> list[Finding]:
    """Activity the hunt did not tie to Exchange (its own section and severity in the view)."""
    findings = section.get("findings") if isinstance(section, dict) else None
    return [_finding(f) for f in (findings if isinstance(findings, list) else [])[:MAX_SHOWN]
            if isinstance(f, dict)]


def uploaded_report_html(doc: object) -> str | None:
    """The hunt's own HTML for an uploaded report, or None when it cannot be rebuilt."""
    if not isinstance(doc, dict):
        return None
    from exhunt.hunt.report import report_html

    try:
        return report_html(report_from_json(doc))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
