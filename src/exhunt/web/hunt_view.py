"""An uploaded hunt report (docs/contracts.md) turned back into a HuntReport, so the portal can
show it with the hunt's own one-file HTML (`exhunt.hunt.report.report_html`).

The JSON came from a victim's upload: every field is checked, anything malformed is dropped
or defaulted, and sizes are bounded. The HTML is served apart, under a sandboxing CSP.
"""

from __future__ import annotations

from typing import Any

from exhunt.model import HuntReport

MAX_SHOWN = 2000  # findings and problems shown; the stored report keeps them all


def report_from_json(doc: dict[str, Any]) -> HuntReport:
    """The HuntReport a JSON report describes (the hunt-JSON contract, exhunt/contract.py);
    what it left out is shown among the report's errors."""
    report, left_out = HuntReport.from_json(doc, "uploaded report")
    report.findings = report.findings[:MAX_SHOWN]
    report.host_activity = report.host_activity[:MAX_SHOWN]
    report.errors = (report.errors + left_out)[:MAX_SHOWN]
    return report


def uploaded_report_html(doc: object) -> str | None:
    """The hunt's own HTML for an uploaded report, or None when it cannot be rebuilt."""
    if not isinstance(doc, dict):
        return None
    from exhunt.hunt.report import report_html

    try:
        return report_html(report_from_json(doc))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
