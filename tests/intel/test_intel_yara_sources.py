"""Every YARA rule exhunt ships names the public source of what it matches."""

from __future__ import annotations

import re
from importlib import resources

from helpers.private_notes import private_notes_named

RULES = resources.files("exhunt.intel").joinpath("yara/exhunt_webshells.yar").read_text("utf-8")


def test_every_rule_cites_a_public_source() -> None:
    bodies = re.split(r"^rule ", RULES, flags=re.M)[1:]
    assert bodies
    for body in bodies:
        name = body.split()[0]
        source = re.search(r'^\s*source = "(.+)"$', body, re.M)
        assert source, f"{name} has no source"
        assert not private_notes_named(source.group(1)), name
