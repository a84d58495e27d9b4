"""Findings as Elastic Common Schema alerts: one JSON line per finding, for the SIEM.

Field names and the allowed values of `event.kind`, `event.category` and `event.type` are
those of the ECS field reference (https://www.elastic.co/guide/en/ecs/current/ecs-field-
reference.html; generated/csv/fields.csv of github.com/elastic/ecs, checked for 8.11 and
9.4). exhunt's own fields go under `exhunt.*`, a name ECS does not use. A field whose value
would break its ECS type is left out: `source.ip` only holds a valid address.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from exhunt.hunt.fleet import USER_AGENT, finding_indicators
from exhunt.hunt.verdict import counts
from exhunt.model import Finding, HuntReport, iso
from exhunt.share.facts import utc

ECS_VERSION = "8.11.0"
_SHA256 = re.compile(r"\bsha256 ([0-9a-fA-F]{64})\b")


def _latest(report: HuntReport) -> datetime | None:
    times = [c.last for c in report.coverage.values() if c.last is not None]
    times += [f.timestamp for f in report.findings if f.timestamp is not None]
    return max((utc(t) for t in times), default=None)


def _first_line(text: str) -> str:
    lines = text.splitlines()
    return lines[0] if lines else ""


def _categories(finding: Finding) -> list[str]:
    out = ["intrusion_detection"]
    path = finding.webshell_path or ""
    if finding.client_ip or path.startswith("/"):
        out.append("web")
    if path and not path.startswith("/"):
        out.append("file")
    if finding.check.startswith("webshell."):
        out.append("malware")
    return out


def ecs_event(report: HuntReport, finding: Finding, fallback: datetime | None
              ) -> dict[str, Any]:
    """One finding as an ECS alert (`@timestamp`: its time, else the end of the evidence)."""
    when = finding.timestamp or fallback
    event: dict[str, Any] = {
        "@timestamp": iso(when),
        "ecs": {"version": ECS_VERSION},
        "message": f"{finding.title}: {_first_line(finding.evidence)}",
        "event": {
            # Context (info) findings never move the verdict: events, not alerts.
            "kind": "alert" if counts(finding) else "event",
            "category": _categories(finding),
            "type": ["info"],
            "severity": int(finding.severity),
            "module": "exhunt",
            "dataset": "exhunt.hunt",
        },
        "rule": {"id": finding.check, "name": finding.title,
                 "category": finding.stage.value, "ruleset": "exhunt"},
        "observer": {"product": "exhunt", "vendor": "exhunt", "type": "forensic-hunt"},
        "host": {"name": report.host.name or report.source},
        "exhunt": {
            "source": report.source, "verdict": report.verdict.label,
            "severity": finding.severity.label, "stage": finding.stage.value,
            "counts": counts(finding), "artifact": finding.artifact, "line": finding.line,
            "evidence": finding.evidence, "time_known": finding.timestamp is not None,
            "exchange_build": report.host.exchange_build,
        },
    }
    if when is None:  # nothing in this hunt has a time: better no date than an invented one
        del event["@timestamp"]
    _add_details(event, finding)
    return event


def _add_details(event: dict[str, Any], finding: Finding) -> None:
    ip = (finding.client_ip or "").strip()
    try:
        event["source"] = {"ip": str(ipaddress.ip_address(ip))}
        event["related"] = {"ip": [str(ipaddress.ip_address(ip))]}
    except ValueError:
        pass
    path = (finding.webshell_path or "").strip()
    if path.startswith("/"):
        event["url"] = {"path": path}
    elif path:
        event["file"] = {"path": path, "name": re.split(r"[\\/]", path)[-1]}
    digests = sorted({d.lower() for d in _SHA256.findall(finding.evidence)})
    if digests and path and not path.startswith("/"):
        event["file"]["hash"] = {"sha256": digests[0]}
    agents = sorted(i.value for i in finding_indicators(finding) if i.kind == USER_AGENT)
    if agents:
        event["user_agent"] = {"original": agents[0]}
    if finding.cves:
        event["vulnerability"] = {"id": list(finding.cves) if len(finding.cves) > 1
                                  else finding.cves[0]}


def ecs_events(reports: Sequence[HuntReport]) -> Iterator[dict[str, Any]]:
    for report in reports:
        fallback = _latest(report)
        for finding in report.findings:
            yield ecs_event(report, finding, fallback)


def ecs_jsonl(reports: Sequence[HuntReport]) -> str:
    # ASCII JSON: no raw U+2028 or U+0085 for a line-splitting reader to cut an event at.
    return "".join(json.dumps(e, sort_keys=True) + "\n" for e in ecs_events(reports))
