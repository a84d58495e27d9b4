"""Fixtures for the lab tests: build each triage copy once per session."""

from __future__ import annotations

import pytest

from exhunt.lab.triage import Layout, Scenario, TriageSpec, build_triage
from helpers.lab_triage import Builder, Built


@pytest.fixture(scope="session")
def triage_copy(tmp_path_factory: pytest.TempPathFactory) -> Builder:
    """Build (once per session and argument set) a copy and return it with its truth."""
    cache: dict[tuple[object, ...], Built] = {}

    def build(scenario: Scenario, size: int = 700_000, seed: int = 1,
              layout: Layout = "plain", days: int = 14) -> Built:
        key = (scenario, size, seed, layout, days)
        if key not in cache:
            base = tmp_path_factory.mktemp(f"{scenario}-{seed}-{layout}")
            out = base / "copy"
            spec = TriageSpec(scenario=scenario, size_bytes=size, seed=seed, layout=layout,
                              days=days)
            cache[key] = Built(out, build_triage(out, spec))
        return cache[key]

    return build
