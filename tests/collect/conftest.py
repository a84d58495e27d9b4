"""Fixtures for the collection tests."""

from __future__ import annotations

import pytest

from helpers.collect_trees import Expect, drive_files


@pytest.fixture
def server_files() -> list[tuple[Expect, bytes]]:
    return drive_files()
