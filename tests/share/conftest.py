"""Lab triage copies, hunted once per session, for the exchange-format tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from exhunt.hunt.engine import hunt
from exhunt.lab.triage import Scenario, TriageSpec, build_triage
from exhunt.model import HuntReport

SMALL = 200_000
DATA = Path(__file__).parent.parent / "data" / "share"


def _copy(root: Path, scenario: Scenario, seed: int) -> tuple[Path, dict[str, Any]]:
    out = root / f"{scenario.value}-{seed}"
    build_triage(out, TriageSpec(scenario=scenario, size_bytes=SMALL, seed=seed))
    return out, json.loads((root / f"{out.name}.truth.json").read_text("utf-8"))


@pytest.fixture(scope="session")
def lab_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("share-lab")


@pytest.fixture(scope="session")
def reentered(lab_root: Path) -> tuple[Path, dict[str, Any], HuntReport]:
    """A re-entered server: addresses, a shell (hash, name, URL), user agents, CVEs."""
    path, truth = _copy(lab_root, Scenario.REENTERED, 13)
    return path, truth, hunt(str(path), workers=1)


@pytest.fixture(scope="session")
def fleet(lab_root: Path, reentered: tuple[Path, dict[str, Any], HuntReport]
          ) -> tuple[list[HuntReport], list[dict[str, Any]]]:
    """Two waves of shared hands (each copied onto a second server) and a lone exploited one.

    Returns the reports and, per report, the truth of the intrusion behind it.
    """
    first, first_truth, first_report = reentered
    second, second_truth = _copy(lab_root, Scenario.BACKDOORED, 31)
    lone, lone_truth = _copy(lab_root, Scenario.EXPLOITED, 47)
    twins = []
    for path in (first, second):
        twin = lab_root / f"{path.name}-twin"
        shutil.copytree(path, twin)
        twins.append(twin)
    paths = [second, twins[0], twins[1], lone]
    reports = [first_report] + [hunt(str(p), workers=1) for p in paths]
    truths = [first_truth, second_truth, first_truth, second_truth, lone_truth]
    return reports, truths
