"""Timesketch timelines (JSONL and CSV) and ECS events for a SIEM."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from exhunt.cli import app
from exhunt.model import Finding, HostInfo, HuntReport, KindCoverage, Severity, Stage
from exhunt.share.ecs import ecs_jsonl
from exhunt.share.timeline import timeline_csv, timeline_jsonl

DATA = Path(__file__).parent.parent / "data" / "share"

runner = CliRunner()
TIMESKETCH_REQUIRED = {"message", "datetime", "timestamp_desc"}


def ecs_reference() -> tuple[set[str], dict[str, set[str]]]:
    names: set[str] = set()
    allowed: dict[str, set[str]] = {}
    for line in (DATA / "ecs_fields.txt").read_text("utf-8").splitlines():
        if line.startswith("="):
            field, *vals = line[1:].split()
            allowed[field] = set(vals)
        elif line and not line.startswith("#"):
            names.add(line.strip())
    return names, allowed


def flat(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def test_timeline_has_coverage_on_top_and_every_finding(reentered: Any) -> None:
    _, _, report = reentered
    events = [json.loads(line) for line in timeline_jsonl([report]).splitlines()]
    assert all(set(e) >= TIMESKETCH_REQUIRED for e in events)
    kinds = [e["data_type"] for e in events]
    covered = kinds.count("exhunt:coverage")
    assert covered == 2 * sum(c.first is not None for c in report.coverage.values())
    assert set(kinds[:covered]) == {"exhunt:coverage"}, "coverage first"
    assert kinds.count("exhunt:finding") == len(report.findings)
    ssrf = [e for e in events if e["data_type"] == "exhunt:evidence"
            and e["check"] == "proxylogon.ssrf"]
    assert ssrf and all(e["timestamp_desc"] == "Event time" for e in ssrf)
    for event in events:
        parsed = datetime.fromisoformat(event["datetime"].replace("Z", "+00:00"))
        assert event["timestamp"] == int(parsed.timestamp() * 1_000_000)


def test_timeline_csv_same_rows_and_no_formulas(reentered: Any) -> None:
    _, _, report = reentered
    evil = Finding(check="x.y", title="=HYPERLINK(\"http://e\")", severity=Severity.HIGH,
                   stage=Stage.EXPLOIT, cves=(), timestamp=None, artifact="+cmd", line=None,
                   evidence="@SUM(1)\n-2")
    hostile = HuntReport(source="s", host=HostInfo(name="-h"), findings=[evil])
    rows = list(csv.DictReader(io.StringIO(timeline_csv([report, hostile]))))
    assert len(rows) == len(timeline_jsonl([report, hostile]).splitlines())
    assert set(rows[0]) >= TIMESKETCH_REQUIRED
    last = rows[-1]
    for name in ("message", "artifact", "evidence", "hostname"):
        assert last[name][0] not in "=+-@", last[name]
    assert last["timestamp_desc"] == "No time in evidence"


def test_ecs_field_names_and_values_from_the_reference(reentered: Any) -> None:
    _, _, report = reentered
    names, allowed = ecs_reference()
    events = [json.loads(line) for line in ecs_jsonl([report]).splitlines()]
    assert len(events) == len(report.findings)
    seen: set[str] = set()
    for event in events:
        fields = flat(event)
        ecs_fields = {f for f in fields if not f.startswith("exhunt.")}
        assert ecs_fields <= names, ecs_fields - names
        seen |= ecs_fields
        for field, values in allowed.items():
            got = fields.get(field)
            got = got if isinstance(got, list) else [got]
            assert set(got) <= values, (field, got)
    assert {"@timestamp", "event.kind", "event.category", "rule.id", "rule.name", "source.ip",
            "url.path", "user_agent.original", "file.path", "file.hash.sha256", "host.name",
            "vulnerability.id"} <= seen
    alerts = [e for e in events if e["event"]["kind"] == "alert"]
    assert alerts and all(e["exhunt"]["counts"] for e in alerts)


def test_ecs_reference_check_can_fail() -> None:
    names, _ = ecs_reference()
    assert "source.ip" in names and "source.ip_address" not in names


def test_ecs_leaves_out_values_that_break_their_type() -> None:
    finding = Finding(check="iis.attack-post", title="t", severity=Severity.MEDIUM,
                      stage=Stage.PROBE, cves=("CVE-2021-26855",),
                      timestamp=datetime(2021, 3, 3, tzinfo=UTC), artifact="a", line=1,
                      evidence="x", client_ip="not-an-ip")
    report = HuntReport(source="s", findings=[finding],
                        coverage={"iis": KindCoverage(1, 1, None, None)})
    [event] = [json.loads(line) for line in ecs_jsonl([report]).splitlines()]
    assert "source" not in event and event["vulnerability"]["id"] == "CVE-2021-26855"


def test_cli_timeline_and_ecs(reentered: Any, tmp_path: Path) -> None:
    path, _, _ = reentered
    for fmt in ("timeline", "timeline-csv", "ecs"):
        out = tmp_path / fmt
        result = runner.invoke(app, ["hunt", str(path), "-q", "-f", fmt, "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert out.read_text("utf-8").strip()
