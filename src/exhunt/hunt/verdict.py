"""From findings to the verdict ladder, the first exploitation, and who did it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from exhunt.model import Finding, HuntReport, Severity, Stage, Verdict

STAGE_VERDICT: dict[Stage, Verdict] = {
    Stage.PROBE: Verdict.PROBED,
    Stage.EXPLOIT: Verdict.EXPLOITED,
    Stage.BACKDOOR: Verdict.BACKDOORED,
    Stage.REENTRY: Verdict.REENTERED,
    Stage.POST_EXPLOITATION: Verdict.REENTERED,
}
EXPLOITATION_STAGES = frozenset(
    {Stage.EXPLOIT, Stage.BACKDOOR, Stage.REENTRY, Stage.POST_EXPLOITATION}
)


def counts(finding: Finding) -> bool:
    """Info findings are context (an archive in ProgramData): they never move the verdict."""
    return finding.severity > Severity.INFO


def decide(report: HuntReport) -> None:
    judged = [f for f in report.findings if counts(f)]
    report.verdict = max((STAGE_VERDICT[f.stage] for f in judged), default=Verdict.CLEAN)
    times = [f.timestamp for f in judged if f.stage in EXPLOITATION_STAGES and f.timestamp]
    report.first_exploitation = min(times, default=None)


@dataclass(slots=True)
class Actor:
    """One source address and what it did, for the timeline grouped by source."""

    client_ip: str
    first: datetime | None = None
    last: datetime | None = None
    worst: Verdict = Verdict.CLEAN
    findings: list[Finding] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        from exhunt.model import iso

        return {
            "client_ip": self.client_ip,
            "first": iso(self.first),
            "last": iso(self.last),
            "worst": self.worst.label,
            "checks": sorted({f.check for f in self.findings}),
        }


def actors(report: HuntReport) -> list[Actor]:
    """Source addresses ordered by their first action; findings in time order within each."""
    by_ip: dict[str, Actor] = {}
    for finding in report.findings:
        if not counts(finding) or not finding.client_ip:
            continue
        actor = by_ip.setdefault(finding.client_ip, Actor(finding.client_ip))
        actor.findings.append(finding)
        actor.worst = max(actor.worst, STAGE_VERDICT[finding.stage])
        when = finding.timestamp
        if when is not None:
            actor.first = when if actor.first is None else min(actor.first, when)
            actor.last = when if actor.last is None else max(actor.last, when)
    return sorted(by_ip.values(), key=lambda a: (a.first is None, a.first or 0, a.client_ip))
