"""The extras in pyproject.toml and the extra each command names when a library is missing
agree, and the plain install carries no coordinator, web or cluster library."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from exhunt.cli.common import EXTRA_OF

PROJECT = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml")
                        .read_text("utf-8"))["project"]


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=! ;]", r, maxsplit=1)[0].lower().replace("_", "-")
            for r in requirements}


def test_the_extra_named_for_each_library_brings_it() -> None:
    extras = PROJECT["optional-dependencies"]
    distributions = packages_distributions()
    for module, extra in EXTRA_OF.items():
        assert extra in extras, (module, extra)
        brought = names(extras[extra])
        # an extra may bring another one (web brings coordinate): follow exhunt[...] entries
        for requirement in extras[extra]:
            if requirement.startswith("exhunt["):
                for inner in requirement[7:-1].split(","):
                    brought |= names(extras[inner])
        dists = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        assert dists & brought, f"{module} ({dists}) is not brought by exhunt[{extra}]"


def test_the_plain_install_has_no_library_of_an_extra() -> None:
    core = names(PROJECT["dependencies"])
    distributions = packages_distributions()
    for module in EXTRA_OF:
        dists = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        assert not dists & core, f"{module} is a core dependency"
    assert "all" in PROJECT["optional-dependencies"]
