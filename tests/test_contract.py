"""The hunt-JSON contract read back (exhunt/contract.py): what the hunt writes comes back the
same; anything else is read leniently within bounds or refused with a reason, never a crash."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exhunt.contract import MAX_ITEMS, MAX_TEXT, ContractError, read_reports_json
from exhunt.model import (
    Finding,
    HostInfo,
    HuntReport,
    InputProblem,
    KindCoverage,
    Severity,
    Stage,
    Verdict,
)

TEXT = st.text(max_size=60)
MOMENT = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                      timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0))
FINDING = st.builds(
    Finding, check=st.text(min_size=1, max_size=40), title=TEXT,
    severity=st.sampled_from(Severity), stage=st.sampled_from(Stage),
    cves=st.lists(st.text(max_size=20), max_size=3).map(tuple),
    timestamp=st.none() | MOMENT, artifact=TEXT, line=st.none() | st.integers(0, 2**40),
    evidence=TEXT, client_ip=st.none() | TEXT, webshell_path=st.none() | TEXT)
COVERAGE = st.builds(KindCoverage, st.integers(0, 10**6), st.integers(0, 10**9),
                     st.none() | MOMENT, st.none() | MOMENT)
REPORT = st.builds(
    HuntReport, source=TEXT,
    host=st.builds(HostInfo, st.none() | st.text(max_size=30), st.none() | st.text(max_size=20)),
    verdict=st.sampled_from(Verdict), first_exploitation=st.none() | MOMENT,
    coverage=st.dictionaries(st.text(min_size=1, max_size=20), COVERAGE, max_size=4),
    findings=st.lists(FINDING, max_size=4),
    errors=st.lists(st.builds(InputProblem, TEXT, TEXT), max_size=3))
JSON = st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
                    | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)
CONTRACT_KEYS = ["source", "host", "verdict", "first_exploitation", "coverage", "findings",
                 "errors", "exchange_found"]


@settings(max_examples=200, deadline=None)
@given(REPORT, st.dictionaries(st.text(max_size=12).filter(lambda k: k not in CONTRACT_KEYS),
                               JSON, max_size=4))
def test_what_the_hunt_writes_comes_back_the_same(report: HuntReport,
                                                 extra: dict[str, object]) -> None:
    written = orjson.loads(orjson.dumps({**report.to_json(), **extra}))  # unknown keys: ignored
    back, left_out = HuntReport.from_json(written)
    assert left_out == []
    assert back.to_json() == report.to_json()


@settings(max_examples=300, deadline=None)
@given(JSON | st.dictionaries(st.sampled_from(CONTRACT_KEYS), JSON, max_size=8))
def test_any_json_is_read_or_refused_with_a_reason(document: object) -> None:
    try:
        report, left_out = HuntReport.from_json(document, "r.json")
    except ContractError as exc:
        assert str(exc)
        return
    assert isinstance(report.verdict, Verdict)
    assert all(problem.artifact == "r.json" for problem in left_out)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_reports_or_named_problems(data: bytes) -> None:
    reports, problems = read_reports_json(data, "upload.json")
    assert reports or problems or data.strip() == b"[]"
    assert all(p.artifact == "upload.json" for p in problems)


@pytest.mark.parametrize(("field", "value", "named"), [
    ("host", "mail.example", "host must be an object"),
    ("findings", {"check": "x"}, "findings must be a list"),
    ("coverage", [], "coverage must be an object"),
    ("source", 7, "source must be text"),
])
def test_a_field_of_the_wrong_type_is_a_clear_error(field: str, value: object,
                                                   named: str) -> None:
    with pytest.raises(ContractError, match=named):
        HuntReport.from_json({"verdict": "clean", field: value})


def test_no_or_unknown_verdict_is_not_a_report() -> None:
    with pytest.raises(ContractError, match="no verdict"):
        HuntReport.from_json({"source": "x"})
    with pytest.raises(ContractError, match="unknown verdict 'owned'"):
        HuntReport.from_json({"verdict": "owned"})
    with pytest.raises(ContractError, match="unknown verdict"):
        HuntReport.from_json({"verdict": "BACKDOORED"})


def test_bounds_cut_text_and_refuse_floods() -> None:
    report, _ = HuntReport.from_json({"verdict": "clean", "source": "s" * (MAX_TEXT * 3)})
    assert len(report.source) == MAX_TEXT
    with pytest.raises(ContractError, match="more than"):
        HuntReport.from_json({"verdict": "clean", "findings": [{}] * (MAX_ITEMS + 1)})


def test_a_finding_out_of_shape_is_left_out_and_named() -> None:
    good = {"check": "proxylogon.ssrf", "title": "t", "severity": "high", "stage": "exploit"}
    report, left_out = HuntReport.from_json(
        {"verdict": "exploited", "findings": [good, {**good, "stage": "persistence"}, 3]})
    assert [f.check for f in report.findings] == ["proxylogon.ssrf"]
    assert [p.message for p in left_out] == ["finding 2 is not in exhunt's shape; left out",
                                             "finding 3 is not in exhunt's shape; left out"]
