"""`exhunt builds`, `exhunt scan` and `exhunt lab fleet` through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from exhunt.cli import register_areas
from exhunt.intel.builds import TRACKED_CVES
from exhunt.scan.output import FIELDS
from helpers.scan_lab import fleet_in_thread

CONTRACT_BUILD_SOURCES = {"x-owa-version", "exporttool", "logon-page", "other", None}


def make_app() -> typer.Typer:
    return register_areas("scan", "builds", "lab")


runner = CliRunner()
FAST = ["--timeout", "6", "--read-timeout", "4", "--connect-timeout", "10", "--quiet"]


def test_builds_text_and_json() -> None:
    app = make_app()
    out = runner.invoke(app, ["builds", "15.1.2176.9"])
    assert out.exit_code == 0, out.output
    assert "Exchange Server 2016" in out.output and "CU19" in out.output
    assert "Mar21SU" in out.output and "vulnerable" in out.output
    out = runner.invoke(app, ["builds", "15.1.2176.9", "--format", "json"])
    data = json.loads(out.stdout)
    assert data["vulnerabilities"]["CVE-2021-26855"] == "patched"
    assert data["vulnerabilities"]["CVE-2021-34473"] == "vulnerable"
    assert set(data["vulnerabilities"]) == set(TRACKED_CVES)
    assert data["install"]
    bad = runner.invoke(app, ["builds", "<b>15</b>"])
    assert bad.exit_code == 2


def test_scan_jsonl_contract_and_resume(tmp_path: Path) -> None:
    app = make_app()
    with fleet_in_thread(count=8, modes=("header", "logon", "exporttool", "not-exchange")) as (
        fleet,
        hosts,
    ):
        tokens = [f"{h.host}:{h.port}" for h in hosts]
        out = tmp_path / "scan.jsonl"
        first = runner.invoke(app, ["scan", *tokens[:3], "-o", str(out), *FAST])
        assert first.exit_code == 0, first.output
        hits_after_first = dict(fleet.hits)
        # Simulate a crash mid-write: a torn last line.
        with out.open("ab") as fh:
            fh.write(b'{"target": "torn')
        second = runner.invoke(app, ["scan", *tokens, "-o", str(out), *FAST])
        assert second.exit_code == 0, second.output
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert sorted((r["target"], r["port"]) for r in lines) == sorted(
            (h.host, h.port) for h in hosts
        )
        # The resumed run did not contact what was already done.
        for h in hosts[:3]:
            assert fleet.hits[(h.host, h.port)] == hits_after_first[(h.host, h.port)]
        for r in lines:
            assert list(r)[: len(FIELDS)] == list(FIELDS)
            assert r["scheme"] in ("https", "http")
            assert r["build_source"] in CONTRACT_BUILD_SOURCES
            assert isinstance(r["reachable"], bool) and isinstance(r["exchange"], bool)
            if r["build"]:
                assert set(r["vulnerabilities"]) == set(TRACKED_CVES)


def test_scan_stdin_to_stdout_is_quiet_when_piped() -> None:
    app = make_app()
    with fleet_in_thread(count=2, modes=("header",)) as (_fleet, hosts):
        stdin = "".join(f"{h.host}:{h.port}\n" for h in hosts)
        out = runner.invoke(app, ["scan", "--timeout", "6"], input=stdin)
        assert out.exit_code == 0, out.output
        lines = [json.loads(x) for x in out.stdout.splitlines()]
        assert {r["build"] for r in lines} == {h.build for h in hosts}
        assert "scan" not in out.stderr  # no progress bar when not on a terminal


def test_scan_without_targets_is_a_usage_error() -> None:
    out = runner.invoke(make_app(), ["scan"], input="")
    assert out.exit_code == 2


def test_lab_fleet_command_writes_a_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "fleet.jsonl"
    out = runner.invoke(
        make_app(),
        ["lab", "fleet", "--count", "4", "--manifest", str(manifest), "--duration", "0.1"],
    )
    assert out.exit_code == 0, out.output
    hosts = [json.loads(x) for x in manifest.read_text().splitlines()]
    assert len(hosts) == 4
    assert all(h["host"].startswith("127.") for h in hosts)
    bad = runner.invoke(make_app(), ["lab", "fleet", "--modes", "exploit"])
    assert bad.exit_code == 2
