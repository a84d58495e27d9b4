"""Lab campaign, Parquet observations with DuckDB, and `exhunt stats`, end to end."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from exhunt.cli import app
from exhunt.lab.campaign import UPTAKE_ANCHORS, remaining, write_campaign
from exhunt.store.lake import ObservationLake


def test_remaining_share_passes_through_the_2021_anchors() -> None:
    for day, share in UPTAKE_ANCHORS:
        assert abs(remaining(day) - share) < 1e-9
    assert remaining(3) > remaining(4) > remaining(10) > remaining(25)


def test_campaign_uptake_follows_march_2021(tmp_path: Path) -> None:
    summary = write_campaign(tmp_path, servers=4000, days=30, seed=7)
    assert summary.servers == 4000 and summary.observations == 4000 * 30
    assert len(list(tmp_path.glob("2021-03-*-scan_exchange.csv"))) == 30
    total, curve = ObservationLake(tmp_path / "observations").uptake()
    assert total == 4000
    by_day = {p.day: p.share for p in curve}
    # Microsoft/RiskIQ: ~100k of ~400k left on Mar 9, ~30k on Mar 22 (sampling noise allowed)
    assert 0.70 < by_day["2021-03-09"] < 0.80
    assert 0.89 < by_day["2021-03-22"] < 0.95
    shares = [p.share for p in curve]
    assert shares == sorted(shares)


def test_campaign_through_ingest_cases_and_stats(db_url: str, tmp_path: Path) -> None:
    camp = tmp_path / "camp"
    write_campaign(camp, servers=300, days=4, seed=3)
    runner = CliRunner()
    assert runner.invoke(app, ["contacts", "import", str(camp / "contacts.csv"),
                               "--db", db_url]).exit_code == 0
    days = sorted(str(p) for p in camp.glob("*-scan_exchange.csv"))
    out = runner.invoke(app, ["ingest", *days, "--db", db_url, "--format", "json",
                              "--parquet", str(tmp_path / "lake")])
    assert out.exit_code == 0, out.output
    rows = sum(r["rows"] for r in orjson.loads(out.stdout))
    assert ObservationLake(tmp_path / "lake").count() == rows > 0
    again = runner.invoke(app, ["ingest", *days, "--db", db_url, "--parquet",
                                str(tmp_path / "lake")])
    assert again.exit_code == 0 and ObservationLake(tmp_path / "lake").count() == rows
    cases = orjson.loads(runner.invoke(app, ["cases", "--db", db_url, "--format",
                                             "json"]).stdout)
    assert sum(len(c["hosts"]) for c in cases) == 300  # every lab server is someone's
    assert all(c["hosts"] for c in cases)
    queue = orjson.loads(runner.invoke(app, ["cases", "--unattributed", "--db", db_url,
                                             "--format", "json"]).stdout)
    assert queue == []
    stats = orjson.loads(runner.invoke(app, ["stats", "--db", db_url, "--format", "json",
                                             "--parquet", str(camp / "observations")]).stdout)
    assert stats["hosts"] == 300 and sum(stats["by_state"].values()) == 300
    assert "credit union" in stats["by_sector"] or "local and general government" in stats[
        "by_sector"]
    assert stats["uptake_hosts_first_vulnerable"] == 300 and len(stats["uptake"]) == 4
    table = runner.invoke(app, ["stats", "--db", db_url])
    assert table.exit_code == 0 and "by state" in table.stdout


def test_lab_campaign_command(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["lab", "campaign", str(tmp_path / "c"), "--servers", "50",
                                   "--days", "3", "--quiet"])
    assert out.exit_code == 0, out.output
    assert "50 servers" in out.stdout
    assert len(list((tmp_path / "c").glob("*-scan_exchange.csv"))) == 3
    assert ObservationLake(tmp_path / "c" / "observations").count() == 150
