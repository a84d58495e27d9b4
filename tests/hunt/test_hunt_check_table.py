"""The README's check table names every check and every Sigma rule exhunt ships."""

from __future__ import annotations

from pathlib import Path

from exhunt.checks.base import registered_checks
from exhunt.checks.sigma import load_sigma

README = (Path(__file__).parent.parent.parent / "README.md").read_text("utf-8")


def test_every_registered_check_is_in_the_readme() -> None:
    missing = [c.id for c in registered_checks() if f"| `{c.id}` |" not in README]
    assert not missing


def test_every_sigma_rule_is_in_the_readme() -> None:
    names = {rule.name for rule in load_sigma().rules}
    assert names and not [n for n in sorted(names) if f"| `{n}` |" not in README]
