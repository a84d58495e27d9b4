"""The repository stands alone: no tracked file cites the team's private reference notes,
only the public sources (Microsoft, CSS-Exchange, Volexity, Shadowserver, ...) they name."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from helpers.private_notes import private_notes_named

ROOT = Path(__file__).resolve().parents[1]
SCOPE = ("src", "docs", "bench", "tests", "README.md", "Makefile")



def _tracked_files() -> list[str]:
    try:
        listed = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "-z", "--", *SCOPE],
            capture_output=True, check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    return [name for name in listed.decode().split("\0") if name]


def _citing(name: str) -> list[str]:
    path = ROOT / name
    if not path.is_file():
        return []
    return private_notes_named(path.read_bytes().decode("utf-8", "replace"))


def test_no_tracked_file_cites_the_private_notes() -> None:
    tracked = _tracked_files()
    assert "src/exhunt/intel/data/exchange_builds.csv" in tracked
    citing = {name: notes for name in tracked if (notes := _citing(name))}
    assert citing == {}
