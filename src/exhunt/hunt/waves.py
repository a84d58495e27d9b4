"""Which wave a compromise belongs to, and which indicator sets it matches.

`label_waves(report)` gives short labels a coordinator can group servers by:
`proxylogon:before-patch` (HAFNIUM's first wave, before 2021-03-03), `proxylogon:after-patch`,
`proxylogon:time-unknown`, `proxyshell`, `proxynotshell`, and `indicators:<set>` for each
indicator set the findings match (data: intel/data/waves.toml).

`disclosure_wave(report)` is the fleet's coarser cut, by the hunt's first exploitation alone:
`pre-disclosure`, `post-disclosure` or `not-exploited`. Both cut at the same instant, the
ProxyLogon patch day of the data file (`PATCH_DAY`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from exhunt.hunt.verdict import counts
from exhunt.intel import indicators
from exhunt.model import Finding, HuntReport, Stage

_EXPLOITATION = frozenset({Stage.EXPLOIT, Stage.BACKDOOR, Stage.REENTRY,
                           Stage.POST_EXPLOITATION})


PRE_DISCLOSURE = "pre-disclosure"
POST_DISCLOSURE = "post-disclosure"
NOT_EXPLOITED = "not-exploited"
DISCLOSURE_WAVES = (PRE_DISCLOSURE, POST_DISCLOSURE, NOT_EXPLOITED)


def _waves() -> dict[str, Any]:
    return indicators("waves")


@cache
def patch_day() -> datetime:
    """The end of HAFNIUM's first wave: exploitation before it came before the patch."""
    return _instant(_waves()["proxylogon"]["patch_day"])


def _instant(text: str) -> datetime:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def disclosure_wave(report: HuntReport) -> str:
    """Before the disclosure (HAFNIUM's first wave) or after, by the first exploitation."""
    if report.first_exploitation is None:
        return NOT_EXPLOITED
    when = report.first_exploitation
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return PRE_DISCLOSURE if when < patch_day() else POST_DISCLOSURE


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
        labels.append(_proxylogon_label(proxylogon))
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


def _proxylogon_label(findings: list[Finding]) -> str:
    cut = patch_day()
    times = [f.timestamp for f in findings if f.timestamp is not None and f.stage is Stage.EXPLOIT]
    times = times or [f.timestamp for f in findings if f.timestamp is not None]
    if not times:
        return "proxylogon:time-unknown"
    first = min(t if t.tzinfo else t.replace(tzinfo=cut.tzinfo) for t in times)
    return "proxylogon:before-patch" if first < cut else "proxylogon:after-patch"
