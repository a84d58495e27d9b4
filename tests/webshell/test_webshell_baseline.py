"""Known-good baselines: build from a clean copy, then a hunt reports files matching none."""

from __future__ import annotations

from pathlib import Path

import typer
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from exhunt.cli.hunt import register
from exhunt.hunt.baseline import Baseline, build_baseline, parse_baseline, web_relative
from exhunt.hunt.engine import hunt
from exhunt.hunt.files import FileStageSettings
from exhunt.model import Severity, Verdict
from helpers.webshell_samples import OWA_AUTH, SHELLS, Builder

runner = CliRunner()


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app, typer.Typer())
    return app


def test_build_reads_the_build_from_httpproxy_and_hashes_web_files(server: Builder) -> None:
    rows, build, problems = build_baseline(str(server()))
    assert problems == []
    assert build == "15.1.2176.2"
    paths = {r.path for r in rows}
    assert "FrontEnd/HttpProxy/owa/auth/logon.aspx" in {p.replace("\\", "/") for p in paths}
    assert all(len(r.sha256) == 64 for r in rows)


def test_cli_builds_and_a_hunt_uses_it(server: Builder, tmp_path: Path) -> None:
    clean = server(name="clean")
    out = tmp_path / "baseline.csv"
    result = runner.invoke(cli(), ["baseline", "build", str(clean), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "15.1.2176.2" in result.output
    # The same server later: one product page replaced, one page added.
    changed = server({f"{OWA_AUTH}/errorFE.aspx": '<%@ Page Language="C#" %><html>changed'
                      '</html>', f"{OWA_AUTH}/Current/extra.aspx": SHELLS["unknown_cmd"]},
                     name="later")
    report = hunt(str(changed), files=FileStageSettings(baselines=(str(out),)))
    flagged = {f.artifact.rsplit("/", 1)[-1]: f for f in report.findings
               if f.check == "webshell.file"}
    assert "in no known-good baseline" in flagged["errorFE.aspx"].evidence
    assert flagged["errorFE.aspx"].severity is Severity.INFO  # weak alone: context
    assert flagged["extra.aspx"].severity >= Severity.MEDIUM
    assert "logon.aspx" not in flagged
    assert report.verdict is Verdict.BACKDOORED


def test_cli_without_a_build_says_so(tmp_path: Path) -> None:
    copy = tmp_path / "copy" / "inetpub" / "wwwroot"
    copy.mkdir(parents=True)
    (copy / "iisstart.htm").write_text("<html></html>")
    result = runner.invoke(cli(), ["baseline", "build", str(tmp_path / "copy"), "-o",
                                   str(tmp_path / "b.csv")])
    assert result.exit_code == 3 and "--build" in result.output
    result = runner.invoke(cli(), ["baseline", "build", str(tmp_path / "copy"), "-o",
                                   str(tmp_path / "b.csv"), "--build", "15.2.858.5"])
    assert result.exit_code == 0 and (tmp_path / "b.csv").read_text().count("15.2.858.5") == 1


def test_unusable_baseline_is_a_named_error_not_a_crash(server: Builder, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("this,is,not\nabaseline\n")
    report = hunt(str(server()), files=FileStageSettings(baselines=(str(bad),)))
    assert any("no usable baseline" in e.message for e in report.errors)
    assert report.verdict is Verdict.CLEAN


@given(st.text(max_size=400))
def test_baseline_parser_never_raises(text: str) -> None:
    baseline = Baseline()
    problems = parse_baseline(text, "x.csv", baseline)
    assert len(problems) <= 6


@given(st.lists(st.tuples(st.binary(min_size=32, max_size=32),
                          st.from_regex(r"15\.[0-2]\.[0-9]{1,4}\.[0-9]{1,3}", fullmatch=True)),
                max_size=20))
def test_baseline_rows_round_trip(rows: list[tuple[bytes, str]]) -> None:
    text = "# header\n" + "".join(f"{h.hex()},{b},FrontEnd/HttpProxy/x\n" for h, b in rows)
    baseline = Baseline()
    assert parse_baseline(text, "x.csv", baseline) == []
    assert all(baseline.knows(h.hex()) for h, _ in rows)
    assert len(baseline) == len({h for h, _ in rows})


@given(st.lists(st.text(alphabet="abcXYZ._- \\/", min_size=1, max_size=8), max_size=8))
def test_web_relative_never_raises_and_starts_at_an_anchor(parts: list[str]) -> None:
    path = "/".join(parts)
    relative = web_relative(path)
    if relative is not None:
        assert relative.split("/")[0].lower() in ("frontend", "clientaccess", "inetpub")


def test_web_relative_examples() -> None:
    assert web_relative("C/Program Files/Microsoft/Exchange Server/V15/FrontEnd/HttpProxy/owa/"
                        "auth/x.aspx") == "FrontEnd/HttpProxy/owa/auth/x.aspx"
    assert web_relative("C%3A/inetpub/wwwroot/aspnet_client/a.aspx") == (
        "inetpub/wwwroot/aspnet_client/a.aspx")
    assert web_relative("C/Windows/Microsoft.NET/Framework64/v4.0.30319/Temporary ASP.NET Files/"
                        "owa/App_Web_x.dll") is None
