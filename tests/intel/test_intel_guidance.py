"""Guidance is data worded once: the hunt report and the notice give the same step the same
words, and every step a list names exists."""

from __future__ import annotations

from exhunt.cases.notify import Renderer
from exhunt.hunt.report import next_steps
from exhunt.intel.guidance import hunt_steps, notice_guidance
from exhunt.model import HostState, HuntReport, Verdict


def test_every_verdict_has_steps_and_every_group_a_title() -> None:
    for verdict in Verdict:
        assert hunt_steps(verdict), verdict
    for group in notice_guidance().values():
        assert group["title"] and group["steps"]


def test_a_backdoored_report_and_a_backdoor_notice_preserve_evidence_in_the_same_words() -> None:
    report_steps = next_steps(HuntReport(source="copy", verdict=Verdict.BACKDOORED))
    notice = Renderer("cert@example.org").guidance_for({HostState.BACKDOOR})
    assert report_steps[0] == notice[0].steps[0]
    assert report_steps[0].startswith("Preserve evidence first")
