"""Stacking on real hunts: a file only one server of a build holds stands out."""

from __future__ import annotations

from pathlib import Path

from exhunt.hunt.engine import hunt
from exhunt.hunt.fleet import fleet_summary
from exhunt.lab.triage import Scenario, TriageSpec, build_triage


def test_a_planted_file_is_rare_among_servers_of_the_same_build(tmp_path: Path) -> None:
    copies = []
    for seed in range(4):
        out = tmp_path / f"s{seed}"
        build_triage(out, TriageSpec(scenario=Scenario.CLEAN, size_bytes=400_000, seed=seed))
        copies.append(out)
    odd = copies[2] / "inetpub" / "wwwroot" / "aspnet_client" / "system_web" / "errorcheck.aspx"
    odd.parent.mkdir(parents=True, exist_ok=True)
    odd.write_text('<%@ Page Language="C#" %><% Response.Write("ok"); %>')
    reports = [hunt(str(c), workers=1) for c in copies]
    assert all(r.web_files for r in reports), "the engine keeps each server's web files"
    rare = fleet_summary(reports)["stacking"]["rare"]
    assert [Path(r["path"]).name for r in rare] == ["errorcheck.aspx"]
    assert rare[0]["source"] == str(copies[2])
