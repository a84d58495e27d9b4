"""From findings to the verdict ladder, the first exploitation, and who did it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from exhunt.checks.base import bound
from exhunt.intel import indicators
from exhunt.model import Finding, HuntReport, Severity, Stage, Verdict, iso

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
# Only evidence of Exchange itself being broken dates the first exploitation (never a dump,
# a task or an account, which may predate the intruders or belong to someone else).
FIRST_EXPLOITATION_STAGES = frozenset({Stage.EXPLOIT, Stage.BACKDOOR, Stage.REENTRY})
_LADDER = indicators("postexploit")["ladder"]
_WORKERS = tuple(name.lower() for name in _LADDER["workers"])
_UNTIED = frozenset(name.lower() for name in _LADDER["untied_accounts"])
_UNTIED_PREFIXES = tuple(name.lower() for name in _LADDER["untied_account_prefixes"])
WEB_SPAWN_CHECK = "postexploit.web-spawned-process"


def counts(finding: Finding) -> bool:
    """Info findings are context (an archive in ProgramData): they never move the verdict."""
    return finding.severity > Severity.INFO


def decide(report: HuntReport) -> None:
    """The ladder's rules (docs/verdict-ladder.md), in order:

    1. Exchange evidence (probe, exploit, back door, re-entry) sets the verdict.
    2. When the hunt proves a compromise (Exchange broken, or a high-severity finding of its
       own), context findings rise to high.
    3. Post-exploitation evidence makes the verdict `reentered` only when it is tied to the
       Exchange compromise: the same window, the same shell, the same worker process, or the
       same account.
       Anything else goes to `host_activity`, with its own severity, and claims no stage.
    4. `first_exploitation` comes from Exchange evidence only.
    """
    exchange = [f for f in report.findings if counts(f) and f.stage in _EXCHANGE_STAGES]
    verdict = max((STAGE_VERDICT[f.stage] for f in exchange), default=Verdict.CLEAN)
    proof = proven(verdict, report.findings)
    if proof:
        window = rise_window(report.findings)
        report.findings = [rise(f, proof) if _within(f, window) else f for f in report.findings]
    report.findings = quiet_context(report.findings)
    tie = Tie.of(exchange) if verdict >= Verdict.EXPLOITED else None
    report.host_activity = []
    for index, finding in enumerate(report.findings):
        if not counts(finding) or finding.stage is not Stage.POST_EXPLOITATION:
            continue
        why = tie.why(finding, raised=finding.context) if tie is not None else ""
        if why:
            verdict = Verdict.REENTERED
            report.findings[index] = replace(
                finding, evidence=bound(f"{finding.evidence}\n[tied to the Exchange "
                                        f"compromise: {why}]"))
        else:
            report.host_activity.append(finding)
    report.verdict = verdict
    times = [f.timestamp for f in exchange
             if f.stage in FIRST_EXPLOITATION_STAGES and f.timestamp]
    report.first_exploitation = min(times, key=_utc, default=None)


_EXCHANGE_STAGES = frozenset({Stage.PROBE, Stage.EXPLOIT, Stage.BACKDOOR, Stage.REENTRY})


def proven(verdict: Verdict, findings: list[Finding]) -> str:
    """Why this hunt proves a compromise ('' when it does not)."""
    if verdict >= Verdict.EXPLOITED:
        return f"Exchange {verdict.label}"
    for finding in findings:
        if not finding.context and finding.severity >= Severity.HIGH:
            return finding.title
    return ""


def rise_window(findings: list[Finding]) -> tuple[datetime, datetime] | None:
    """When context may rise: from some days before the first evidence of compromise to some
    weeks after the last (an account made the week before a dump is part of it; routine tasks
    of two years ago are not). None when the evidence has no time: then all context rises."""
    times = [_utc(f.timestamp) for f in findings if f.timestamp and not f.context and (
        f.stage in FIRST_EXPLOITATION_STAGES or (f.stage is Stage.POST_EXPLOITATION
                                                 and f.severity >= Severity.HIGH))]
    if not times:
        return None
    return (min(times) - timedelta(days=float(_LADDER["context_rise_before_days"])),
            max(times) + timedelta(days=float(_LADDER["window_after_days"])))


def _within(finding: Finding, window: tuple[datetime, datetime] | None) -> bool:
    if window is None or finding.timestamp is None:
        return True
    return window[0] <= _utc(finding.timestamp) <= window[1]


def rise(finding: Finding, proof: str) -> Finding:
    """A context finding on a server this hunt proves compromised is evidence: high."""
    if not finding.context or finding.severity > Severity.INFO:
        return finding
    title = finding.title.removesuffix(" (context)")
    return replace(finding, severity=Severity.HIGH, title=title, evidence=bound(
        f"{finding.evidence}\n[raised to high: this hunt proves a compromise ({proof})]"))


def quiet_context(findings: list[Finding]) -> list[Finding]:
    """On a server the hunt does not prove compromised, context is shown, not piled up: a few
    of each check (a Security log holds thousands of routine tasks), the rest counted."""
    limit = int(_LADDER["context_shown"])
    seen: dict[str, int] = {}
    kept: list[Finding] = []
    last: dict[str, int] = {}
    for finding in findings:
        if not finding.context or finding.severity > Severity.INFO:
            kept.append(finding)
            continue
        seen[finding.check] = seen.get(finding.check, 0) + 1
        if seen[finding.check] <= limit:
            last[finding.check] = len(kept)
            kept.append(finding)
    for check, at in last.items():
        if seen[check] > limit:
            more = seen[check] - limit
            kept[at] = replace(kept[at], evidence=bound(
                f"{kept[at].evidence}\n[{more} more like this, not shown: context only]"))
    return kept


def host_severity(report: HuntReport) -> Severity | None:
    """The severity of the activity not tied to Exchange, or None when there is none."""
    return max((f.severity for f in report.host_activity), default=None)


@dataclass(frozen=True, slots=True)
class Tie:
    """What ties a post-exploitation finding to the Exchange compromise."""

    start: datetime | None
    end: datetime | None
    shells: frozenset[str]
    context_end: datetime | None = None
    # Who acted in the Exchange evidence (bare names: `CORP\\eve` and `eve@corp` are `eve`).
    accounts: frozenset[str] = frozenset()

    @classmethod
    def of(cls, exchange: list[Finding]) -> Tie:
        times = [_utc(f.timestamp) for f in exchange
                 if f.timestamp and f.stage in FIRST_EXPLOITATION_STAGES]
        shells = {_basename(f.webshell_path) for f in exchange if f.webshell_path}
        shells |= {_basename(f.artifact) for f in exchange if f.stage is Stage.BACKDOOR
                   and f.line is None and f.artifact}
        before = timedelta(hours=float(_LADDER["window_before_hours"]))
        after = timedelta(days=float(_LADDER["window_after_days"]))
        context_after = timedelta(hours=float(_LADDER["context_window_after_hours"]))
        accounts = {bare_account(f.account) for f in exchange if f.account}
        return cls(min(times) - before if times else None,
                   max(times) + after if times else None,
                   frozenset(s for s in shells if s),
                   max(times) + context_after if times else None,
                   frozenset(a for a in accounts if a))

    def why(self, finding: Finding, *, raised: bool = False) -> str:
        """Which tie holds ('' for none). A raised context finding (what administrators also
        do) needs the shell, the worker, or the narrower window right after the break-in."""
        text = finding.evidence.lower()
        shell = next((s for s in sorted(self.shells) if s in text or (
            finding.webshell_path and _basename(finding.webshell_path) == s)), "")
        if shell:
            return f"the same shell ({shell})"
        if finding.check == WEB_SPAWN_CHECK or any(w in text for w in _WORKERS):
            return "an Exchange worker process"
        account = bare_account(finding.account or "")
        if account and account in self.accounts:
            return f"the same account ({finding.account})"
        end = self.context_end if raised else self.end
        if (finding.timestamp and self.start is not None and end is not None
                and self.start <= _utc(finding.timestamp) <= end):
            return f"within the window of the Exchange evidence ({iso(self.start)} to {iso(end)})"
        return ""


def bare_account(account: str) -> str:
    """The user name alone, lower case ('' for an account that ties nothing: SYSTEM, a
    machine account, a health mailbox; see `[ladder] untied_accounts`)."""
    name = account.strip().rsplit("\\", 1)[-1].split("@", 1)[0].strip().lower()
    if (not name or name == "-" or name.endswith("$") or name in _UNTIED
            or name.startswith(_UNTIED_PREFIXES)):
        return ""
    return name


def _basename(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1].strip().lower()


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


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
