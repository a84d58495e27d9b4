"""The report does not depend on how many processes read the logs, or how the work was cut."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exhunt.checks.base import HuntContext
from exhunt.checks.proxylogon import CHAIN_SHOWN, ProxyLogonSsrf
from exhunt.checks.proxyshell import AutodiscoverSsrf, autodiscover_attempt, full_url
from exhunt.hunt import engine
from exhunt.hunt.engine import hunt
from exhunt.hunt.report import report_json
from exhunt.lab.triage import Scenario, TriageSpec, build_triage
from exhunt.model import LogRecord, RecordKind
from exhunt.readers.prefilter import LiteralFilter


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
    # Batches sent a few at a time: many windows, each read biggest first.
    monkeypatch.setattr(engine, "WINDOW_PER_WORKER", 1)
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


_URL_PIECES = ["/autodiscover/autodiscover.json", "?", "&", "@", "%40", "%2540", "/", "%2f",
               "%252F", "%3F", "powershell", "Email=", "mapi", "nspi", "ews", "EWS", "x-rps-cat",
               "owa", "ecp", "admin", "a.b", "Protocol=ActiveSync", "%", "%7", "%70"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_URL_PIECES), max_size=12),
       st.lists(st.sampled_from(_URL_PIECES), max_size=12))
def test_autodiscover_gate_never_drops_a_line_the_check_would_judge(
        stem: list[str], query: list[str]) -> None:
    # The gate runs on the raw line before it is parsed: a wrong "no" would hide an attack.
    stem_text = "/autodiscover/autodiscover.json" + "".join(stem)
    query_text = "".join(query) or "-"
    record = LogRecord(RecordKind.IIS, "u_ex.log", 1, None, {
        "cs-uri-stem": stem_text, "cs-uri-query": query_text})
    line = f"2021-03-03 10:00:00 10.0.0.1 GET {stem_text} {query_text} 443 - 1.2.3.4 x 200"
    if autodiscover_attempt(full_url(record)):
        assert AutodiscoverSsrf.wants_line(line.encode())
        # ...and the prefilter's own pattern, which runs first, lets it through too.
        assert LiteralFilter(AutodiscoverSsrf.literals or ()).matches(line.encode())


def test_autodiscover_gate_lets_outlook_mobile_go_unparsed() -> None:
    line = (b"2021-03-03 10:00:00 10.0.0.1 GET /autodiscover/autodiscover.json "
            b"Email=dana.evans%40example.net&Protocol=Ews&RedirectCount=1 443 - 1.2.3.4 "
            b"Outlook-iOS/2.0 - 200 0 0 12")
    assert not AutodiscoverSsrf.wants_line(line)
    assert AutodiscoverSsrf.wants_line(line.replace(b"Protocol=Ews", b"x=%252Fpowershell"))
