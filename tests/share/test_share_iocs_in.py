"""Indicators in: what exhunt writes as STIX or MISP, exhunt reads back and hunts with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from exhunt.cli import app
from exhunt.share.facts import FILE_NAME, IPV4, IPV6, SHA256, URL_PATH, USER_AGENT_KIND, gather
from exhunt.share.imported import normal_agent
from exhunt.share.iocs_in import read_exchange_iocs, sniff
from exhunt.share.misp import misp_text
from exhunt.share.stix import stix_text

runner = CliRunner()


def expected(report: Any) -> dict[str, set[str]]:
    facts = gather([report])
    want: dict[str, set[str]] = {k: set() for k in ("address", "hash", "name", "agent", "path")}
    slot = {IPV4: "address", IPV6: "address", SHA256: "hash", FILE_NAME: "name",
            USER_AGENT_KIND: "agent", URL_PATH: "path"}
    for item in facts.observables.values():
        if item.indicator:
            value = normal_agent(item.value) if item.kind == USER_AGENT_KIND else item.value
            want[slot[item.kind]].add(value)
    return want


def test_round_trip_stix_and_misp(reentered: Any) -> None:
    _, _, report = reentered
    want = expected(report)
    assert all(want.values()), want
    for name, text in (("b.stix", stix_text([report])), ("e.misp", misp_text([report]))):
        got = read_exchange_iocs(text, name)
        assert got is not None and not got.problems
        assert set(got.log.addresses) == want["address"], name
        assert set(got.hashes) == want["hash"], name
        assert set(got.file_names) == want["name"], name
        assert set(got.log.user_agents) == want["agent"], name
        assert set(got.log.url_paths) == want["path"], name


def test_misp_victim_and_unflagged_attributes_are_skipped_and_named() -> None:
    event = {"Event": {"info": "x", "Attribute": [
        {"type": "ip-src", "value": "203.0.113.5", "to_ids": True},
        {"type": "ip-dst", "value": "192.0.2.99", "to_ids": False},
        {"type": "domain", "value": "evil.example", "to_ids": True},
        {"type": "filename|sha256", "value": "a.aspx|" + "ab" * 32, "to_ids": True},
        {"type": "url", "value": "https://h/owa/auth/x.aspx?q=1", "to_ids": True},
        {"type": "ip-src|port", "value": "2001:db8::1|443", "to_ids": "1"},
    ]}}
    got = read_exchange_iocs(json.dumps(event), "feed.json")
    assert got is not None
    assert set(got.log.addresses) == {"203.0.113.5", "2001:db8::1"}
    assert got.file_names == {"a.aspx": "feed.json: x"} and "ab" * 32 in got.hashes
    assert set(got.log.url_paths) == {"/owa/auth/x.aspx"}
    assert got.skipped == {"ip-dst not flagged to_ids": 1, "domain": 1}
    summary = got.summary()
    assert summary is not None and "domain (1)" in summary.message


def test_stix_patterns_it_cannot_match_are_skipped_by_kind() -> None:
    patterns = [
        "[ipv4-addr:value = '198.51.100.7' OR ipv4-addr:value = '198.51.100.8']",
        "[domain-name:value = 'evil.example']",
        "[ipv4-addr:value = '198.51.100.9'] AND [file:name = 'x.aspx']",
        "[file:name = 'a' AND file:size = 3]",
        "[ipv4-addr:value ISSUBSET '198.51.100.0/24']",
        "[url:value = 'http://h/ecp/y.js']",
        "[[[ not a pattern",
    ]
    bundle = {"type": "bundle", "id": "bundle--1", "objects": [
        {"type": "indicator", "id": f"indicator--{i}", "pattern_type": "stix", "pattern": p}
        for i, p in enumerate(patterns)] + [
        {"type": "indicator", "id": "indicator--y", "pattern_type": "yara", "pattern": "rule"}]}
    got = read_exchange_iocs(json.dumps(bundle), "b.json")
    assert got is not None
    assert set(got.log.addresses) == {"198.51.100.7", "198.51.100.8"}
    assert set(got.log.url_paths) == {"/ecp/y.js"}
    assert sum(got.skipped.values()) == 6, got.skipped
    assert got.skipped["domain-name:value"] == 1
    assert got.skipped["pattern type 'yara'"] == 1


def test_plain_lists_are_not_taken_for_stix_or_misp() -> None:
    assert sniff("d41d8cd98f00b204e9800998ecf8427e;empty\n") is None
    assert sniff("\\\\owa\\\\auth\\\\.*\\.aspx;70\n") is None
    assert read_exchange_iocs('{"type": "bundle", "objects": [', "x") is not None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.text(max_size=300),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=40),
                 lambda inner: st.lists(inner, max_size=5)
                 | st.dictionaries(st.sampled_from(
                     ["type", "objects", "pattern", "pattern_type", "Event", "Attribute",
                      "Object", "value", "to_ids", "response", "bundle", "indicator"]),
                     inner, max_size=5), max_leaves=30).map(json.dumps),
    st.builds(lambda p: json.dumps({"type": "bundle", "objects": [
        {"type": "indicator", "pattern_type": "stix", "pattern": p}]}), st.text(max_size=200)),
))
def test_hostile_input_never_raises(text: str) -> None:
    got = read_exchange_iocs(text, "hostile.json")
    if got is not None:
        assert got.used + sum(got.skipped.values()) >= 0
        for problem in got.problems:
            assert problem.artifact == "hostile.json"


def test_hunt_with_another_servers_indicators(fleet: Any, tmp_path: Path) -> None:
    """The first wave's STIX, given to the hunt of its twin, finds its hands there, and
    finds nothing of them on a server that other hands broke into."""
    reports, truths = fleet
    first, twin, other = reports[0], reports[2], reports[1]
    bundle = tmp_path / "first.stix.json"
    bundle.write_text(stix_text([first]), "utf-8")
    for report, should_match in ((twin, True), (other, False)):
        result = runner.invoke(app, ["hunt", report.source, "-q", "-f", "json",
                                     "--iocs", str(bundle)])
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        matched = {f["client_ip"] for f in data["findings"] if f["check"] == "ioc.request"}
        if should_match:
            assert matched and matched <= set(truths[0]["attacker_ips"]) | {
                f.client_ip for f in first.findings}
            assert any("known-bad hash" in f["evidence"] for f in data["findings"])
        else:
            assert not matched & set(truths[0]["attacker_ips"]) - set(truths[1]["attacker_ips"])
