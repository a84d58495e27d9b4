"""The hunt report in three forms with the same content: text, JSON, one-file HTML."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import jinja2

from exhunt.hunt.verdict import actors, counts, host_severity
from exhunt.hunt.waves import label_waves  # issue 3 (waves helper): additive "waves" key
from exhunt.intel.guidance import host_activity_steps, hunt_steps
from exhunt.model import HuntReport, Severity, Verdict, iso

HEADLINES: dict[Verdict, str] = {
    Verdict.CLEAN: "No sign of compromise was found in the logs that were read.",
    Verdict.PROBED: "Attackers tried to break in and, as far as these logs show, failed.",
    Verdict.EXPLOITED: "An attacker broke in through an Exchange flaw. No back door was seen "
                       "in what was read, but that does not mean there is none.",
    Verdict.BACKDOORED: "An attacker broke in and planted a back door (a web shell) on this "
                        "server.",
    Verdict.REENTERED: "An attacker planted a back door on this server and came back to use it.",
}

# The steps are data (intel/data/guidance.toml), worded once for the report and the notice.
NEXT_STEPS: dict[Verdict, tuple[str, ...]] = {v: hunt_steps(v) for v in Verdict}


# Said instead of the clean headline when the host shows attack activity of its own.
HOST_HEADLINE_CLEAN = ("No sign that Exchange was broken into was found in the logs that were "
                       "read, but this host shows attack activity (below).")
HOST_STEPS: tuple[str, ...] = host_activity_steps()


def headline(report: HuntReport) -> str:
    if report.verdict is Verdict.CLEAN and host_severity(report) is not None:
        return HOST_HEADLINE_CLEAN
    return HEADLINES[report.verdict]


def next_steps(report: HuntReport) -> list[str]:
    """The verdict's steps; host activity of medium or above puts its own first."""
    severity = host_severity(report)
    host = list(HOST_STEPS) if severity is not None and severity >= Severity.MEDIUM else []
    return host + list(NEXT_STEPS[report.verdict])


def report_json(report: HuntReport) -> dict[str, Any]:
    """The hunt contract (docs/contracts.md), plus (additively) who did what and what to do next."""
    data = report.to_json()
    data["attackers"] = [actor.to_json() for actor in actors(report)]
    data["next_steps"] = next_steps(report)
    data["exchange_found"] = report.exchange_found
    data["waves"] = label_waves(report)  # issue 3 (waves helper): additive
    data["host_activity"] = host_activity_json(report)  # issue 15: additive
    return data


HOST_HEADLINE = ("Attack activity on this host that this hunt does not tie to an Exchange "
                 "compromise (no Exchange stage is claimed for it):")


def host_activity_json(report: HuntReport) -> dict[str, Any] | None:
    """Post-exploitation not tied to Exchange: its own severity and findings, or None."""
    severity = host_severity(report)
    if severity is None:
        return None
    return {"severity": severity.label, "exchange_found": report.exchange_found,
            "findings": [f.to_json() for f in report.host_activity]}


def report_text(report: HuntReport) -> str:
    out: list[str] = []
    out.append(f"exhunt hunt: {report.source}")
    host = report.host
    out.append(f"Server: {host.name or 'unknown name'}, Exchange build "
               f"{host.exchange_build or 'unknown'}")
    out.append("")
    out.append(f"VERDICT: {report.verdict.label.upper()}")
    out.append(headline(report))
    if report.first_exploitation:
        out.append(f"First successful exploitation seen: {_when(report.first_exploitation)}")
    out.append("")
    out.extend(_host_lines(report))
    out.extend(_coverage_lines(report))
    out.append("")
    out.append("What to do next:")
    out.extend(f"  {i}. {step}" for i, step in enumerate(next_steps(report), 1))
    people = actors(report)
    if people:
        out.append("")
        out.append("Who (source addresses, in order of first action):")
        for actor in people:
            out.append(f"  {actor.client_ip}: {actor.worst.label}, {_when(actor.first)} to "
                       f"{_when(actor.last)}, {len(actor.findings)} findings")
    shells = sorted({f.webshell_path for f in report.findings if f.webshell_path})
    if shells:
        out.append("")
        out.append("Web shells named by the evidence:")
        out.extend(f"  {_printable(path)}" for path in shells)
    out.append("")
    out.extend(_finding_lines(report))
    if report.errors:
        out.append("")
        out.append(f"Could not read ({len(report.errors)}):")
        out.extend(f"  {_printable(e.artifact) or '-'}: {_printable(e.message)}"
                   for e in report.errors)
    return "\n".join(out) + "\n"


def _host_lines(report: HuntReport) -> list[str]:
    """Shown right under the verdict: a clean Exchange verdict must not hide a dumped LSASS."""
    severity = host_severity(report)
    if severity is None:
        return []
    lines = [f"HOST ACTIVITY: {severity.label.upper()}", HOST_HEADLINE]
    for finding in report.host_activity:
        lines.append(f"  [{finding.severity.label.upper()}] {_when(finding.timestamp)} "
                     f"{_printable(finding.title)} ({finding.check})")
    return [*lines, ""]


def _coverage_lines(report: HuntReport) -> list[str]:
    if not report.coverage:
        return ["Coverage: no logs were read. This is NOT a clean bill of health."]
    lines = ["Coverage (the verdict only speaks for these windows):"]
    for kind, cov in sorted(report.coverage.items()):
        lines.append(f"  {kind:<14} {cov.files:>5} files {cov.records:>12,} records  "
                     f"{_when(cov.first)} to {_when(cov.last)}")
    return lines


def _finding_lines(report: HuntReport) -> list[str]:
    if not report.findings:
        return ["Evidence: none."]
    lines = ["Evidence (oldest first):"]
    for finding in report.findings:
        weight = finding.severity.label.upper() if counts(finding) else "context"
        where = finding.artifact + (f":{finding.line}" if finding.line else "")
        lines.append(f"- [{weight}] {_when(finding.timestamp)} {finding.title}")
        lines.append(f"    check {finding.check} {' '.join(finding.cves)}")
        lines.append(f"    in {_printable(where)}"
                     + (f" by {_printable(finding.account)}" if finding.account else ""))
        for text in finding.evidence.splitlines()[:12]:
            lines.append(f"    | {_printable(text)}")
    return lines


def _when(value: datetime | None) -> str:
    return (iso(value) or "-").replace("T", " ")


def _printable(text: str) -> str:
    """Hostile text must not drive the terminal: control characters are shown, not sent."""
    return "".join(ch if ch.isprintable() or ch == " " else f"\\x{ord(ch):02x}" for ch in text)


_HTML = jinja2.Environment(
    loader=jinja2.PackageLoader("exhunt.hunt", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def report_html(report: HuntReport) -> str:
    """One self-contained file: no scripts, no outside resources, every field escaped."""
    return _HTML.get_template("report.html.j2").render(
        r=report,
        data=report_json(report),
        headline=headline(report),
        steps=next_steps(report),
        people=actors(report),
        host=host_severity(report),
        host_headline=HOST_HEADLINE,
        counts=counts,
        when=_when,
    )
