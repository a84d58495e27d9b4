"""`exhunt artifacts PATH`: the listing a responder checks before hunting."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import typer
from typer.testing import CliRunner

from exhunt.cli.hunt import register
from helpers.collect_trees import EXCH, drive_files, write_tree


def _app() -> typer.Typer:
    app = typer.Typer()
    lab = typer.Typer()
    register(app, lab)

    @app.command("other")
    def other() -> None:  # a second command keeps typer from collapsing to one
        """Placeholder."""

    return app


def test_json_listing_names_artifacts_roots_and_problems(tmp_path: Path) -> None:
    write_tree(tmp_path / "copy", [("C/" + e.path, d) for e, d in drive_files()])
    result = CliRunner().invoke(_app(), ["artifacts", str(tmp_path / "copy"), "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["exchange_roots"] == ["C/" + EXCH]
    owa = [a for a in data["artifacts"] if a["protocol"] == "Owa"]
    assert owa[0]["kind"] == "httpproxy" and owa[0]["exchange_root"] == "C/" + EXCH
    assert data["errors"] == []


def test_kind_filter_and_text_output_escape_control_characters(tmp_path: Path) -> None:
    source = tmp_path / "s.zip"
    with zipfile.ZipFile(source, "w") as zf:
        zf.writestr("C/inetpub/wwwroot/\x1b[31mred.aspx", b"x")
        zf.writestr("C/inetpub/logs/LogFiles/W3SVC1/u_ex210301.log", b"#Fields: date\n")
        zf.writestr("../escape.aspx", b"x")
    result = CliRunner().invoke(_app(), ["artifacts", str(source), "--kind", "web-file"])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout
    assert "C/inetpub/wwwroot/\\x1b[31mred.aspx" in result.stdout
    assert "u_ex210301.log" not in result.stdout
    assert "problem: ../escape.aspx: member refused: path traversal ('..')" in result.stdout


def test_unreadable_path_exits_3_with_a_clear_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), ["artifacts", str(tmp_path / "missing")])
    assert result.exit_code == 3
    assert "no such file or folder" in result.output
