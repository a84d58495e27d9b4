"""What to do next, as data (intel/data/guidance.toml): the hunt report's steps per verdict and
a notice's steps per group of hosts, each step worded once for both."""

from __future__ import annotations

from functools import cache
from typing import Any

from exhunt.intel import indicators
from exhunt.model import Verdict

NOTICE_GROUPS = ("compromised", "vulnerable", "exposed")


def _steps(ids: list[str]) -> tuple[str, ...]:
    wording: dict[str, str] = indicators("guidance")["steps"]
    return tuple(wording[step] for step in ids)


@cache
def hunt_steps(verdict: Verdict) -> tuple[str, ...]:
    """The hunt report's next steps for a verdict."""
    return _steps(indicators("guidance")["hunt"][verdict.label])


@cache
def host_activity_steps() -> tuple[str, ...]:
    """Put first when the host shows attack activity of its own."""
    return _steps(indicators("guidance")["hunt"]["host-activity"])


def notice_guidance() -> dict[str, dict[str, Any]]:
    """Per host group (compromised, vulnerable, exposed): {"title": ..., "steps": [...]}."""
    notice = indicators("guidance")["notice"]
    return {group: {"title": notice[group]["title"], "steps": list(_steps(notice[group]["steps"]))}
            for group in NOTICE_GROUPS}
