"""Readers of Shadowserver CSV, scan JSONL and hunt JSON: formats, tolerance, hostile text."""

from __future__ import annotations

import csv
import io
import ipaddress
import json
from pathlib import Path

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from exhunt.cases.attribution import (
    AsnTable,
    NetworkIndex,
    _address,
    _network,
    choose_sector,
    sector_from_naics,
)
from exhunt.cases.feeds import (
    RowProblem,
    Sighting,
    read_hunt_json,
    read_scan_jsonl,
    read_shadowserver,
)
from exhunt.store.models import HostState

DATA = Path(__file__).resolve().parent.parent / "data" / "cases"
COLUMNS_2021 = ["timestamp", "ip", "port", "hostname", "tag", "asn", "geo", "region", "city",
                "naics", "sic", "sector", "version", "servername", "url"]
COLUMNS_NOW = ["timestamp", "severity", "ip", "protocol", "port", "hostname", "tag", "asn", "geo",
               "region", "city", "naics", "hostname_source", "sector", "version", "servername",
               "url"]
HOSTILE = ["<script>alert(1)</script>", "a\r\nBcc: victim@example.org", "nul\x00byte",
           "=HYPERLINK(\"http://x\")", "x" * 300_000, "\u202egnp.exe", '"quoted",comma']


def make_csv(columns: list[str], rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def test_2021_fixture_rows_and_states() -> None:
    rows = list(read_shadowserver((DATA / "2021-05-14-scan_exchange.csv").read_bytes(),
                                  "2021-05-14-scan_exchange.csv"))
    sightings = [r for r in rows if isinstance(r, Sighting)]
    problems = [r for r in rows if isinstance(r, RowProblem)]
    assert [s.ip for s in sightings] == ["192.0.2.10", "192.0.2.77", "198.51.100.5",
                                         "203.0.113.9"]
    assert [s.state for s in sightings][:2] == [HostState.VULNERABLE, HostState.BACKDOOR]
    assert sightings[0].naics == "522130" and sightings[0].asn == 64500
    assert sightings[0].build == "15.2.721" and sightings[0].servername == "CU1-EXCH"
    assert len(problems) == 1 and "not-an-ip" in problems[0].reason


def test_todays_columns_reordered_extra_and_missing() -> None:
    base = {"timestamp": "2026-03-24T10:00:00Z", "ip": "2001:db8::5", "tag": "exchange;webshell",
            "severity": "critical", "port": "443"}
    shuffled = [*list(reversed(COLUMNS_NOW)), "brand_new"]
    rows = list(read_shadowserver(make_csv(shuffled, [base]), "x-scan6_exchange.csv"))
    assert isinstance(rows[0], Sighting) and rows[0].state is HostState.BACKDOOR
    assert rows[0].ip == "2001:db8::5" and rows[0].port == 443
    minimal = list(read_shadowserver(b"ip,timestamp\n192.0.2.1,2021-03-09 01:02:03\n", "m.csv"))
    assert isinstance(minimal[0], Sighting) and minimal[0].state is HostState.EXPOSED
    headerless = list(read_shadowserver(b"foo,bar\n1,2\n", "h.csv"))
    assert isinstance(headerless[0], RowProblem) and "ip" in headerless[0].reason


def test_hostile_text_is_kept_as_bounded_data() -> None:
    rows = [{"timestamp": "2021-03-09 00:00:00", "ip": "192.0.2.1", "tag": "exchange;cve-x",
             "hostname": text, "servername": text, "url": text, "version": text}
            for text in HOSTILE]
    out = list(read_shadowserver(make_csv(COLUMNS_2021, rows), "scan_exchange.csv"))
    assert all(isinstance(r, Sighting) for r in out)
    assert any("<script>" in r.evidence for r in out if isinstance(r, Sighting))
    assert all("\x00" not in r.evidence and len(r.evidence) < 10_000
               for r in out if isinstance(r, Sighting))


def test_nul_and_binary_junk_do_not_stop_the_file() -> None:
    data = (b"ip,timestamp,tag\n\xff\xfe\x00junk\n192.0.2.9,2021-03-09 00:00:00,exchange;webshell\n"
            b'"unterminated,2021\n')
    out = list(read_shadowserver(data, "j.csv"))
    assert any(isinstance(r, Sighting) and r.ip == "192.0.2.9" for r in out)
    assert any(isinstance(r, RowProblem) for r in out)


def test_scan_jsonl_states_and_rejects() -> None:
    lines = [
        {"target": "mail.example", "ip": "192.0.2.3", "port": 443, "time": "2021-03-10T00:00:00Z",
         "reachable": True, "exchange": True, "build": "15.1.2176.2",
         "vulnerabilities": {"CVE-2021-26855": "vulnerable", "CVE-2021-34473": "patched"}},
        {"target": "192.0.2.4", "ip": "192.0.2.4", "port": 443, "time": "2021-03-10T00:00:00Z",
         "reachable": True, "exchange": True, "build": "15.1.2176.9",
         "vulnerabilities": {"CVE-2021-26855": "patched"}},
        {"target": "192.0.2.5", "ip": None, "port": 443, "time": "2021-03-10T00:00:00Z",
         "reachable": False, "exchange": False, "error": "timeout"},
        {"target": "192.0.2.6", "ip": "192.0.2.6", "time": "2021-03-10T00:00:00Z",
         "reachable": True, "exchange": False},
    ]
    data = b"\n".join(orjson.dumps(x) for x in lines) + b"\nnot json\n[1]\n"
    out = list(read_scan_jsonl(data, "scan.jsonl"))
    assert isinstance(out[0], Sighting) and out[0].state is HostState.VULNERABLE
    assert "CVE-2021-26855" in out[0].evidence and "CVE-2021-34473" not in out[0].evidence
    assert isinstance(out[1], Sighting) and out[1].state is HostState.PATCHED
    reasons = [r.reason for r in out if isinstance(r, RowProblem)]
    assert len(reasons) == 4 and "timeout" in reasons[0] and "not an Exchange" in reasons[1]


def test_hunt_json_verdicts_and_address() -> None:
    report = {"source": "C:/triage", "host": {"name": "EXCH01", "exchange_build": "15.1.2176.2"},
              "verdict": "backdoored", "first_exploitation": "2021-03-03T01:00:00Z",
              "coverage": {"iis": {"files": 1, "records": 9, "first": "2021-03-01T00:00:00Z",
                                   "last": "2021-03-12T00:00:00Z"}},
              "findings": [{"check": "webshell.china_chopper", "title": "<b>shell</b>"}],
              "errors": []}
    out = list(read_hunt_json(orjson.dumps([report, {**report, "verdict": "nonsense"}]),
                              "r.json", host_ip="192.0.2.8"))
    assert isinstance(out[0], Sighting) and out[0].state is HostState.BACKDOOR
    assert out[0].ip == "192.0.2.8" and out[0].seen_at.day == 12
    assert isinstance(out[1], RowProblem) and "verdict" in out[1].reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=20)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=2000))
def test_every_reader_survives_any_bytes(data: bytes) -> None:
    for reader in (read_shadowserver, read_scan_jsonl, read_hunt_json):
        for row in reader(data, "fuzz.csv"):
            assert isinstance(row, Sighting | RowProblem)
            if isinstance(row, Sighting):
                assert row.ip is None or ipaddress.ip_address(row.ip)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from([*COLUMNS_NOW, "junk"]), st.text(max_size=50),
                       max_size=12), st.permutations(COLUMNS_NOW))
def test_shadowserver_rows_any_values_any_order(row: dict[str, str], order: list[str]) -> None:
    out = list(read_shadowserver(make_csv(order, [row]), "scan_exchange.csv"))
    assert len(out) <= 1
    for item in out:
        if isinstance(item, Sighting):
            assert "\x00" not in item.evidence
            ipaddress.ip_address(item.ip or "")


@settings(max_examples=100, deadline=None)
@given(st.lists(json_values, max_size=5))
def test_scan_and_hunt_readers_any_json(values: list[object]) -> None:
    data = "\n".join(json.dumps(v) for v in values).encode()
    assert all(isinstance(r, Sighting | RowProblem) for r in read_scan_jsonl(data, "s.jsonl"))
    whole = json.dumps(values).encode()
    assert all(isinstance(r, Sighting | RowProblem) for r in read_hunt_json(whole, "h.json"))


def test_most_specific_network_wins_v4_and_v6() -> None:
    index = NetworkIndex()
    index.add("192.0.2.0/24", 1)
    index.add("192.0.2.64/26", 2)
    index.add("2001:db8::/32", 3)
    index.add("2001:db8:10::/48", 4)
    index.add("0.0.0.0/0", 5)
    def owner(ip: str) -> int | None:
        found = index.lookup(ip)
        return found.organisation_id if found else None

    assert owner("192.0.2.70") == 2
    assert owner("192.0.2.10") == 1
    assert owner("2001:db8:10::25") == 4
    assert owner("2001:db8:99::1") == 3
    assert owner("203.0.113.1") == 5
    assert index.lookup("2001:db9::1") is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(8, 32)), min_size=1,
                max_size=20), st.integers(0, 2**32 - 1))
def test_network_index_matches_brute_force(nets: list[tuple[int, int]], probe: int) -> None:
    index = NetworkIndex()
    owners: dict[ipaddress.IPv4Network, int] = {}
    for number, (addr, length) in enumerate(nets):
        net = ipaddress.ip_network((addr, length), strict=False)
        index.add(str(net), number)
        owners[net] = number  # a later row for the same network replaces the owner
    ip = ipaddress.ip_address(probe)
    holding = [n for n in owners if ip in n]
    found = index.lookup(str(ip))
    if not holding:
        assert found is None
    else:
        best = max(holding, key=lambda n: n.prefixlen)
        assert found is not None and found.organisation_id == owners[best]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6),
                 st.ip_addresses(v=4).map(lambda a: ipaddress.ip_address(f"::ffff:{a}"))),
       st.integers(0, 128), st.sampled_from(["plain", "exploded", "upper", "dotted"]))
@example(ipaddress.ip_address("::ffff:192.0.2.1"), 128, "dotted")
@example(ipaddress.ip_address("::ffff:192.0.2.1"), 120, "dotted")
def test_network_and_address_parsing_matches_ipaddress(
        address: ipaddress.IPv4Address | ipaddress.IPv6Address, length: int, form: str) -> None:
    mapped = getattr(address, "ipv4_mapped", None)
    text = {"plain": str(address), "exploded": address.exploded, "upper": str(address).upper(),
            "dotted": f"::ffff:{mapped}" if mapped else str(address)}[form]
    cidr = f"{text}/{min(length, address.max_prefixlen)}"
    want = ipaddress.ip_network(cidr, strict=False)
    assert _network(cidr) == (want.version, want.prefixlen, int(want.network_address),
                              str(want))
    assert _address(text) == (address.version, int(address))


def test_ip2asn_table_and_sectors(tmp_path: Path) -> None:
    tsv = tmp_path / "ip2asn.tsv"
    tsv.write_text("192.0.2.0\t192.0.2.255\t64500\tUS\tEXAMPLE-NET <b>x</b>\n"
                   "198.51.100.0\t198.51.100.255\t0\tNone\tNot routed\n"
                   "2001:db8::\t2001:db8:ffff:ffff:ffff:ffff:ffff:ffff\t64501\tUS\tV6NET\n"
                   "garbage line\n")
    table = AsnTable(tsv)
    v4, unrouted, v6 = (table.lookup(ip) for ip in ("192.0.2.7", "198.51.100.7", "2001:db8::1"))
    assert v4 is not None and v4.asn == 64500 and v4.name.startswith("EXAMPLE-NET")
    assert unrouted is None
    assert v6 is not None and v6.name == "V6NET"
    assert sector_from_naics("522130") == "credit union"
    assert sector_from_naics("921190") == "local and general government"
    assert choose_sector(None, "522130", "Financial") == ("credit union", "naics")
    assert choose_sector("school", "522130", None) == ("school", "contacts")
    assert choose_sector(None, None, None) == ("unknown", "unknown")
