"""What every command shares: a hostile name prints as itself, a format a command cannot
write is refused, and a command whose extra is not installed says which extra to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exhunt.cli import app

runner = CliRunner()
MARKUP = "[red]x[/red][bold]"


def test_a_hostile_file_name_prints_literally(tmp_path: Path) -> None:
    """Rich markup in a name is the attacker's text: it must reach the terminal as written."""
    missing = tmp_path / f"{MARKUP}.zip"
    for args in (["artifacts", str(missing)], ["baseline", "build", str(missing), "-o",
                                               str(tmp_path / "b.csv")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 3, (args, result.output)
        assert MARKUP in result.output, (args, result.output)


def test_a_hostile_case_reference_prints_literally(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    result = runner.invoke(app, ["cases", "token", f"EXH-{MARKUP}", "--db", db])
    assert result.exit_code == 2
    assert f"no case 'EXH-{MARKUP}'" in result.output


def test_control_characters_in_a_name_are_escaped(tmp_path: Path) -> None:
    result = runner.invoke(app, ["artifacts", str(tmp_path / "a\x1b[2Jb")])
    assert result.exit_code == 3
    assert "\x1b" not in result.output and "\\x1b[2Jb" in result.output


@pytest.mark.parametrize("args", [
    ["hunt", "x", "--format", "jsonl"],
    ["artifacts", "x", "--format", "html"],
    ["builds", "15.1.2176.2", "--format", "html"],
    ["scan", "127.0.0.1", "--format", "json"],
    ["stats", "--format", "stix"],
    ["rejects", "--format", "html"],
    ["ingest", "x.csv", "--format", "jsonl"],
    ["cases", "--format", "timeline"],
])
def test_a_format_the_command_cannot_write_is_refused(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "this command writes" in " ".join(result.output.split())


def test_an_unknown_format_is_refused() -> None:
    result = runner.invoke(app, ["stats", "--format", "yaml"])
    assert result.exit_code == 2


BLOCKED = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None  # as if the extra were not installed
sys.argv = ["exhunt", *{args!r}]
from exhunt.cli import main
main()
"""


def run_without(blocked: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    code = BLOCKED.format(blocked=blocked, args=list(args))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.parametrize(("blocked", "args", "extra"), [
    (["sqlalchemy"], ["stats"], "coordinate"),
    (["sqlalchemy"], ["cases", "token", "EXH-1"], "coordinate"),
    (["pyarrow"], ["lab", "campaign", "OUT/c", "--servers", "10"], "coordinate"),
    (["fastapi", "uvicorn"], ["serve"], "web"),
    (["distributed"], ["scan", "127.0.0.1", "--dask", "tcp://127.0.0.1:1", "-q"], "fleet"),
    (["stix2"], ["hunt", "OUT", "--format", "stix", "-q"], "share"),
])
def test_a_missing_extra_is_named(tmp_path: Path, blocked: list[str], args: list[str],
                                  extra: str) -> None:
    (tmp_path / "out").mkdir()
    args = [a.replace("OUT", str(tmp_path / "out")) for a in args]
    db = ["--db", f"sqlite:///{tmp_path / 'x.db'}"] if args[0] in ("stats", "cases",
                                                                   "serve") else []
    out = run_without(blocked, *args, *db)
    assert out.returncode == 2, out.stderr
    assert f"pip install 'exhunt[{extra}]'" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_hunt_needs_no_extra(tmp_path: Path) -> None:
    """The admin's install: the coordinator, the web and Dask absent, the hunt still runs."""
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "note.txt").write_text("nothing of Exchange here")
    out = run_without(["sqlalchemy", "alembic", "fastapi", "uvicorn", "dask", "distributed",
                       "duckdb", "pyarrow", "stix2", "pymisp", "psycopg"],
                      "hunt", str(copy), "--format", "json", "-q")
    assert out.returncode == 0, out.stderr
    assert '"verdict": "clean"' in out.stdout
