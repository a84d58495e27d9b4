"""Lab triage copies, broken copies and hand-made reports for the fleet tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from exhunt.lab.triage import Scenario, TriageSpec, build_triage

SMALL = 200_000


# A lab triage copy and the truth the lab wrote beside it.
LabCopy = tuple[Path, dict[str, Any]]


def build_copy(root: Path, scenario: Scenario, seed: int) -> LabCopy:
    out = root / f"{scenario.value}-{seed}"
    build_triage(out, TriageSpec(scenario=scenario, size_bytes=SMALL, seed=seed))
    truth = json.loads((root / f"{out.name}.truth.json").read_text("utf-8"))
    return out, truth


@pytest.fixture(scope="session")
def lab_copies(tmp_path_factory: pytest.TempPathFactory) -> list[LabCopy]:
    """One copy per scenario, each with its own attacker (its own seed)."""
    root = tmp_path_factory.mktemp("fleet-lab")
    return [build_copy(root, scenario, seed) for seed, scenario in enumerate(Scenario, 11)]


@pytest.fixture(scope="session")
def second_server_same_hands(
    lab_copies: list[LabCopy], tmp_path_factory: pytest.TempPathFactory
) -> LabCopy:
    """Another server hit by the same intrusion as the re-entered copy: its logs, copied."""
    path, truth = next(c for c in lab_copies if c[1]["scenario"] == "reentered")
    out = tmp_path_factory.mktemp("fleet-twin") / "twin"
    shutil.copytree(path, out)
    return out, truth


@pytest.fixture(scope="session")
def broken_copies(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Things in a fleet folder that are not copies at all."""
    root = tmp_path_factory.mktemp("fleet-broken")
    a_file = root / "notes.txt"
    a_file.write_text("not a triage copy\n")
    garbage = root / "garbage.zip"
    garbage.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 8)
    empty = root / "empty"
    empty.mkdir()
    return [a_file, garbage, empty, root / "missing"]
