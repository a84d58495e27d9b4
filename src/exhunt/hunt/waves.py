"""Which wave a compromise belongs to, and which indicator sets it matches.

`label_waves(report)` gives short labels a coordinator can group servers by:
`proxylogon:before-patch` (HAFNIUM's first wave, before 2021-03-03), `proxylogon:after-patch`,
`proxylogon:time-unknown`, `proxyshell`, `proxynotshell`, and `indicators:<set>` for each
indicator set the findings match (data: intel/data/waves.toml).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from exhunt.hunt.verdict import counts
from exhunt.intel import indicators
from exhunt.model import Finding, HuntReport, Stage

_EXPLOITATION = frozenset({Stage.EXPLOIT, Stage.BACKDOOR, Stage.REENTRY,
                           Stage.POST_EXPLOITATION})


def _waves() -> dict[str, Any]:
    return indicators("waves")


def _belongs(finding: Finding, wave: dict[str, Any]) -> bool:
    if any(finding.check.startswith(prefix) for prefix in wave["checks"]):
        return True
    return bool(set(finding.cves) & set(wave["cves"]))


def label_waves(report: HuntReport) -> list[str]:
    """Wave and indicator-set labels for one hunt (empty when nothing succeeded)."""
    data = _waves()
    judged = [f for f in report.findings if counts(f)]
    succeeded = [f for f in judged if f.stage in _EXPLOITATION]
    labels: list[str] = []
    proxylogon = [f for f in succeeded if _belongs(f, data["proxylogon"])]
    if proxylogon:
        labels.append(_proxylogon_label(proxylogon, data["proxylogon"]["patch_day"]))
    for name in ("proxyshell", "proxynotshell"):
        if any(_belongs(f, data[name]) for f in succeeded):
            labels.append(name)
    if succeeded and not labels:
        labels.append("unknown-entry")  # a shell or dump with no trail of how it came
    for name, markers in sorted(data["indicator_sets"].items()):
        if any(marker.lower() in (f.title + "\n" + f.evidence).lower()
               for f in judged for marker in markers):
            labels.append(f"indicators:{name}")
    return labels


def _proxylogon_label(findings: list[Finding], patch_day: str) -> str:
    cut = datetime.fromisoformat(patch_day.replace("Z", "+00:00"))
    times = [f.timestamp for f in findings if f.timestamp is not None and f.stage is Stage.EXPLOIT]
    times = times or [f.timestamp for f in findings if f.timestamp is not None]
    if not times:
        return "proxylogon:time-unknown"
    first = min(t if t.tzinfo else t.replace(tzinfo=cut.tzinfo) for t in times)
    return "proxylogon:before-patch" if first < cut else "proxylogon:after-patch"
