"""Wave labels: before or after the ProxyLogon patch, later flaws, indicator sets."""

from __future__ import annotations

from datetime import UTC, datetime

from exhunt.hunt.waves import label_waves
from exhunt.model import Finding, HuntReport, Severity, Stage


def finding(check: str, when: datetime | None, stage: Stage = Stage.EXPLOIT,
            severity: Severity = Severity.CRITICAL, text: str = "",
            cves: tuple[str, ...] = ()) -> Finding:
    return Finding(check, check, severity, stage, cves, when, "a", None, text)


def test_first_wave_before_the_patch_and_after() -> None:
    early = HuntReport("x", findings=[
        finding("proxylogon.ssrf", datetime(2021, 3, 1, 22, 0, tzinfo=UTC)),
        finding("webshell.file", datetime(2021, 3, 2, tzinfo=UTC), Stage.BACKDOOR,
                text="rule exhunt_chopper_jscript_eval (China Chopper, 100)"),
    ])
    assert label_waves(early) == ["proxylogon:before-patch", "indicators:china-chopper"]
    late = HuntReport("x", findings=[finding("proxylogon.ssrf",
                                             datetime(2021, 3, 6, tzinfo=UTC))])
    assert label_waves(late) == ["proxylogon:after-patch"]


def test_probes_and_context_label_nothing() -> None:
    report = HuntReport("x", findings=[
        finding("proxylogon.ssrf", datetime(2021, 3, 1, tzinfo=UTC), Stage.PROBE,
                Severity.MEDIUM),
        finding("postexploit.staged-archive", None, Stage.POST_EXPLOITATION, Severity.INFO,
                text="LSASS"),
    ])
    assert label_waves(report) == []


def test_later_flaws_and_shells_without_a_trail() -> None:
    report = HuntReport("x", findings=[
        finding("proxyshell.autodiscover", datetime(2021, 8, 23, tzinfo=UTC),
                cves=("CVE-2021-34473",)),
        finding("proxyshell.owassrf", datetime(2022, 12, 1, tzinfo=UTC),
                cves=("CVE-2022-41080",)),
    ])
    assert label_waves(report) == ["proxyshell", "proxynotshell"]
    alone = HuntReport("x", findings=[finding("webshell.file", None, Stage.BACKDOOR,
                                              text="SPORTSBALL")])
    assert label_waves(alone) == ["unknown-entry", "indicators:volexity-shell-families"]
