"""`exhunt lab triage` as a user runs it."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from exhunt.cli.lab import register
from exhunt.errors import UsageError
from exhunt.lab.units import parse_size


def app() -> typer.Typer:
    root = typer.Typer()
    lab = typer.Typer()
    root.add_typer(lab, name="lab")
    register(root, lab)
    return root


@pytest.mark.parametrize("text,expected", [
    ("500MB", 500_000_000), ("2GB", 2_000_000_000), ("10k", 10_000), ("1.5MB", 1_500_000),
    ("2GiB", 2 * 2**30), ("12345", 12_345), (" 3 mb ", 3_000_000),
])
def test_sizes_read_like_people_write_them(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "MB", "12XB", "-5MB", "0", "1e9"])
def test_bad_sizes_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_size(text)


def test_cli_writes_copy_truth_and_zip(tmp_path: Path) -> None:
    out = tmp_path / "exch01"
    result = CliRunner().invoke(app(), [
        "lab", "triage", str(out), "--scenario", "backdoored", "--size", "600k", "--seed", "9",
        "--layout", "kape", "--zip", "--quiet"])
    assert result.exit_code == 0, result.output
    assert (out / "C" / "inetpub").is_dir()
    truth = json.loads((tmp_path / "exch01.truth.json").read_text())
    assert truth["scenario"] == "backdoored" and truth["layout"] == "kape"
    with zipfile.ZipFile(tmp_path / "exch01.zip") as zf:
        assert truth["shell_paths"][0] in zf.namelist()
    assert "exch01.truth.json" in result.output


@pytest.mark.parametrize("args,message", [
    (["--scenario", "pwned"], "unknown scenario"),
    (["--layout", "ftk"], "unknown layout"),
    (["--size", "lots"], "size"),
    (["--start", "20/02/2021"], "YYYY-MM-DD"),
    (["--days", "0"], "days"),
])
def test_cli_rejects_bad_options_with_exit_2(tmp_path: Path, args: list[str],
                                             message: str) -> None:
    result = CliRunner().invoke(app(), ["lab", "triage", str(tmp_path / "x"), *args])
    assert result.exit_code == 2
    assert message in result.output


def test_cli_refuses_to_write_into_a_used_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(app(), ["lab", "triage", str(tmp_path), "--quiet"])
    assert result.exit_code == 2
    assert (tmp_path / "keep.txt").read_text() == "mine"
