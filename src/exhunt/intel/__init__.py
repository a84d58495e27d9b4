"""Knowledge as data: indicators, rules and build tables, loaded by every part."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any


@cache
def indicators(name: str) -> dict[str, Any]:
    """The indicator set `name` (a TOML file in exhunt/intel/data)."""
    text = resources.files("exhunt.intel").joinpath("data", f"{name}.toml").read_text("utf-8")
    return tomllib.loads(text)
