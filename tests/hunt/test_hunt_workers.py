"""The report does not depend on how many processes read the logs, or how the work was cut."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exhunt.checks.base import HuntContext
from exhunt.checks.proxylogon import CHAIN_SHOWN, ProxyLogonSsrf
from exhunt.hunt import engine
from exhunt.hunt.engine import hunt
from exhunt.hunt.report import report_json
from exhunt.lab.triage import Scenario, TriageSpec, build_triage
from exhunt.model import LogRecord, RecordKind


def _report(copy: Path, workers: int) -> str:
    return json.dumps(report_json(hunt(str(copy), workers=workers)), sort_keys=True)


def test_reports_are_the_same_whatever_the_number_of_workers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "copy"
    build_triage(copy, TriageSpec(Scenario.REENTERED, size_bytes=2_000_000, seed=11, days=4))
    alone = _report(copy, 1)
    assert json.loads(alone)["verdict"] == "reentered"
    monkeypatch.setattr(engine, "PARALLEL_MIN_BYTES", 0)
    assert _report(copy, 2) == alone
    assert _report(copy, 3) == alone
    # Every artifact its own batch: each check's state is built apart and merged.
    monkeypatch.setattr(engine, "BATCH_ARTIFACTS", 1)
    assert _report(copy, 1) == alone
    assert _report(copy, 2) == alone


def _forged(n: int, when: datetime, path: str, status: str) -> LogRecord:
    return LogRecord(RecordKind.HTTPPROXY, "HttpProxy/Ecp/x.log", n, when, {
        "AnchorMailbox": f"ServerInfo~a]@exch01.corp.local:444{path}?#",
        "ClientIpAddress": "203.0.113.9", "HttpStatus": status})


def test_a_long_ssrf_chain_is_kept_bounded_and_merges_as_if_read_at_once() -> None:
    start = datetime(2021, 3, 3, 9, tzinfo=UTC)
    # Read out of time order (hourly files listed by name), with ties in time.
    records = [_forged(n, start + timedelta(seconds=(n * 37) % 500 // 2),
                       *(("/mapi/emsmdb", "200") if n == 333 else
                         ("/autodiscover/autodiscover.xml", "401"))) for n in range(500)]
    whole = ProxyLogonSsrf(HuntContext())
    for record in records:
        whole.feed(record)
    parts = [ProxyLogonSsrf(HuntContext()) for _ in range(3)]
    for i, record in enumerate(records):
        parts[i * 3 // len(records)].feed(record)
    merged = ProxyLogonSsrf(HuntContext())
    for part in parts:
        merged.merge(part)
    [found] = list(whole.finalize())
    assert list(merged.finalize()) == [found]
    # The step that got through is where exploitation began, however far in the chain.
    assert found.evidence.startswith("1 of 500 forged requests") and found.line == 333
    assert all(len(chain.earliest) <= 2 * CHAIN_SHOWN for chain in whole._by_client.values())


def test_every_log_check_that_judges_at_the_end_merges_its_state() -> None:
    # Such a check is fed in several workers; without merge, what they saw would be lost.
    from exhunt.checks.base import Check, registered_checks

    for cls in registered_checks():
        if cls.kinds & engine.LOG_KINDS and cls.finalize is not Check.finalize:
            assert cls.merge is not Check.merge, cls.id
