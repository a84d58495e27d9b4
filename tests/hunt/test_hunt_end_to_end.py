"""exhunt hunt on lab triage copies: every scenario, every layout, and hostile collections."""

from __future__ import annotations

import json
import os
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exhunt.cli import app
from exhunt.hunt import engine
from exhunt.hunt.engine import hunt
from exhunt.hunt.report import report_html, report_json
from exhunt.lab.triage import Scenario, TriageSpec, build_triage, zip_triage
from exhunt.model import Severity, Verdict

SMALL = 1_500_000
runner = CliRunner()


def make_copy(root: Path, scenario: Scenario, seed: int = 1, layout: str = "plain") -> tuple[Path, dict]:  # type: ignore[type-arg]
    out = root / f"{scenario.value}-{seed}-{layout}"
    build_triage(out, TriageSpec(scenario=scenario, size_bytes=SMALL, seed=seed, layout=layout))  # type: ignore[arg-type]
    truth = json.loads((root / f"{out.name}.truth.json").read_text("utf-8"))
    return out, truth


@pytest.mark.parametrize("scenario", list(Scenario))
@pytest.mark.parametrize("seed", [1, 2])
def test_verdict_matches_the_scenario(tmp_path: Path, scenario: Scenario, seed: int) -> None:
    copy, truth = make_copy(tmp_path, scenario, seed)
    report = hunt(str(copy))
    assert report.verdict.label == scenario.value, report_json(report)["findings"]
    assert report.exchange_found and report.coverage["httpproxy"].records > 100
    attackers = {a["client_ip"] for a in report_json(report)["attackers"]}
    assert attackers <= set(truth["attacker_ips"]), "a benign client was called an attacker"
    if report.verdict >= Verdict.EXPLOITED:
        assert report.first_exploitation is not None
        expected = truth["first_exploitation"]
        assert expected is not None
        assert abs(report.first_exploitation.timestamp() - _ts(expected)) < timedelta(hours=1).total_seconds()
    else:
        assert report.first_exploitation is None
    if report.verdict >= Verdict.BACKDOORED:
        named = {f.webshell_path for f in report.findings if f.webshell_path}
        shells = {Path(p).name.lower() for p in truth["shell_paths"]}
        assert shells & {Path(n.replace("\\", "/")).name.lower() for n in named}
    if report.verdict is Verdict.CLEAN:
        assert not [f for f in report.findings if f.severity > Severity.INFO]


@pytest.mark.parametrize("layout", ["kape", "velociraptor", "live"])
def test_layouts_give_the_same_verdict(tmp_path: Path, layout: str) -> None:
    copy, _ = make_copy(tmp_path, Scenario.BACKDOORED, 3, layout)
    assert hunt(str(copy)).verdict is Verdict.BACKDOORED


def test_zip_of_a_copy_is_read_in_place(tmp_path: Path) -> None:
    copy, _ = make_copy(tmp_path, Scenario.REENTERED, 4)
    archive = tmp_path / "copy.zip"
    zip_triage(copy, archive)
    before = set(os.listdir(tmp_path))
    report = hunt(str(archive))
    assert report.verdict is Verdict.REENTERED
    assert set(os.listdir(tmp_path)) == before, "nothing extracted"


def test_parallel_reading_gives_the_same_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy, _ = make_copy(tmp_path, Scenario.EXPLOITED, 5)
    serial = report_json(hunt(str(copy), workers=1))
    monkeypatch.setattr(engine, "PARALLEL_MIN_BYTES", 0)
    parallel = report_json(hunt(str(copy), workers=2))
    assert parallel == serial


def test_cli_json_contract_and_exit_status(tmp_path: Path) -> None:
    copy, _ = make_copy(tmp_path, Scenario.PROBED, 6)
    result = runner.invoke(app, ["hunt", str(copy), "--format", "json", "--quiet"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"source", "host", "verdict", "first_exploitation", "coverage", "findings", "errors"} <= set(data)
    assert data["verdict"] == "probed" and data["source"] == str(copy)
    assert data["host"]["exchange_build"] and data["host"]["name"]
    for cov in data["coverage"].values():
        assert set(cov) == {"files", "records", "first", "last"}
    both = runner.invoke(app, ["hunt", str(copy), str(tmp_path / "missing"), "--format", "json", "-q"])
    assert both.exit_code == 3, "an input that cannot be read at all"
    pair = json.loads(both.stdout)
    assert [r["verdict"] for r in pair] == ["probed", "clean"]
    assert "missing" in pair[1]["errors"][0]["artifact"] + pair[1]["errors"][0]["message"]
    assert runner.invoke(app, ["hunt"]).exit_code == 2


def test_text_report_speaks_plainly(tmp_path: Path) -> None:
    copy, _ = make_copy(tmp_path, Scenario.BACKDOORED, 7)
    result = runner.invoke(app, ["hunt", str(copy), "-q"])
    text = result.stdout
    assert text.index("VERDICT: BACKDOORED") < text.index("What to do next") < text.index("Evidence")
    assert "Preserve evidence" in text and "Coverage" in text


def test_hostile_text_is_escaped_in_html(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    logs = copy / "Program Files/Microsoft/Exchange Server/V15/Logging/HttpProxy/Ecp"
    logs.mkdir(parents=True)
    evil = '<script>alert("x")</script>'
    line = ("2021-03-03T06:49:46.210Z,r,15,1,2176,2,,Ecp,h,/ecp/y.js,,,false,,,"
            "ServerInfo~a]@x:444/ecp/proxyLogon.ecp?#" + evil + "," + evil.replace(",", "") +
            ",203.0.113.9,EXCH01,241")
    (logs / "HttpProxy_2021030306-1.LOG").write_text(
        "#Fields: DateTime,RequestId,MajorVersion,MinorVersion,BuildVersion,RevisionVersion,"
        "ClientRequestId,Protocol,UrlHost,UrlStem,ProtocolAction,AuthenticationType,IsAuthenticated,"
        "AuthenticatedUser,Organization,AnchorMailbox,UserAgent,ClientIpAddress,ServerHostName,HttpStatus\n"
        + line + "\n")
    report = hunt(str(copy))
    assert report.verdict is Verdict.EXPLOITED
    html = report_html(report)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Content-Security-Policy" in html


def test_empty_copy_and_copy_without_exchange(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "other" / "Windows" / "Temp").mkdir(parents=True)
    for source in (empty, tmp_path / "other"):
        result = runner.invoke(app, ["hunt", str(source), "--format", "json", "-q"])
        assert result.exit_code == 0
        data = json.loads(result.stdout)
        assert data["verdict"] == "clean" and data["coverage"] == {}
        assert any("no Exchange" in e["message"] for e in data["errors"])


def test_hostile_zips_are_named_and_the_hunt_goes_on(tmp_path: Path) -> None:
    copy, _ = make_copy(tmp_path, Scenario.EXPLOITED, 8)
    archive = tmp_path / "hostile.zip"
    zip_triage(copy, archive)
    with zipfile.ZipFile(archive, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("../../escape.aspx", "<%@ Page %>")
        zf.writestr("Program Files/Microsoft/Exchange Server/V15/Logging/HttpProxy/Owa/bomb.LOG",
                    b"0" * (300 << 20))
    report = hunt(str(archive))
    assert report.verdict is Verdict.EXPLOITED
    messages = " ".join(f"{e.artifact} {e.message}" for e in report.errors)
    assert "escape.aspx" in messages and "bomb.LOG" in messages
    assert not (tmp_path.parent / "escape.aspx").exists()


def test_symlink_loop_and_deep_folders(tmp_path: Path) -> None:
    copy, _ = make_copy(tmp_path, Scenario.PROBED, 9)
    (copy / "ProgramData" / "loop").mkdir(parents=True, exist_ok=True)
    os.symlink(copy / "ProgramData", copy / "ProgramData" / "loop" / "back")
    top = copy / "inetpub" / "wwwroot" / "deep"
    top.mkdir(parents=True)
    depth = 10_000  # far beyond PATH_MAX as one path: made and removed one level at a time
    _chain(top, depth, make=True)
    try:
        report = hunt(str(copy))
    finally:
        _chain(top, depth, make=False)
    assert report.verdict is Verdict.PROBED
    messages = " ".join(e.message for e in report.errors).lower()
    assert "link" in messages or "loop" in messages
    assert "deep" in messages or "depth" in messages


def _chain(top: Path, depth: int, *, make: bool) -> None:
    """Walk a chain of `depth` folders named d under `top` by relative steps (no long paths)."""
    home = os.getcwd()
    try:
        os.chdir(top)
        for _ in range(depth):
            if make:
                os.mkdir("d")
            os.chdir("d")
        if not make:
            for _ in range(depth):
                os.chdir("..")
                os.rmdir("d")
    finally:
        os.chdir(home)


def _ts(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_false_positive_traps_reported_against_test_proxylogon_stay_clean(tmp_path: Path) -> None:
    """CSS-Exchange #145 (vss_manifests.zip), #311 (McAfee zips), #328 (AppRecovery zip),
    #386 (OAB downloads inside ClientAccess\\OAB, Set-*VirtualDirectory with a normal URL):
    all are in every lab copy, and a clean server must stay clean with them."""
    copy, _ = make_copy(tmp_path, Scenario.CLEAN, 11)
    present = {p.name for p in copy.rglob("*")}
    assert {"vss_manifests.zip", "FrameworkConfig.zip", "configuration.zip"} <= present
    logs = "".join(p.read_text("latin-1") for p in copy.rglob("*.LOG"))
    assert "ClientAccess\\OAB" in logs and "Download failed and temporary file" in logs
    assert "Set-OabVirtualDirectory" in logs
    report = hunt(str(copy))
    assert report.verdict is Verdict.CLEAN
    assert [f.check for f in report.findings if f.severity > Severity.INFO] == []
