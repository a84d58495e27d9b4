"""AS number and name from a MaxMind-format (GeoLite2-ASN layout) database: lookups, hostile
files, and `exhunt ingest --mmdb`. The databases are built here by a small test writer."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from exhunt.cases.attribution import AsInfo, MaxMindAsn
from exhunt.cli import app
from exhunt.errors import InputError
from exhunt.store.db import Store
from exhunt.store.models import Host
from helpers.mmdb_writer import write_mmdb

DATA = Path(__file__).resolve().parent.parent / "data" / "cases"
SS_2021 = DATA / "2021-05-14-scan_exchange.csv"
SS_NOW = DATA / "2026-03-24-scan6_exchange.csv"
NUMBER, ORG = "autonomous_system_number", "autonomous_system_organization"


def asn_db(path: Path, networks: dict[str, tuple[int, str]], **kw: int) -> Path:
    path.write_bytes(write_mmdb({n: {NUMBER: a, ORG: name} for n, (a, name) in networks.items()},
                                **kw))
    return path


def test_lookup_v4_v6_miss_and_not_an_address(tmp_path: Path) -> None:
    db = MaxMindAsn(asn_db(tmp_path / "asn.mmdb", {
        "192.0.2.0/25": (64496, "DOC-NET-A <script>alert(1)</script>"),
        "2001:db8::/32": (64497, "DOC-V6"),
        "198.51.100.0/24": (4_200_000_000, "X" * 5000),
    }))
    assert db.lookup("192.0.2.10") == AsInfo(64496, "DOC-NET-A <script>alert(1)</script>")
    assert db.lookup("2001:db8:99::1") == AsInfo(64497, "DOC-V6")
    assert db.lookup("192.0.2.200") is None  # outside the /25
    assert db.lookup("203.0.113.9") is None
    assert db.lookup("not an address") is None
    long = db.lookup("198.51.100.7")
    assert long is not None and long.asn == 4_200_000_000 and len(long.name) == 200


def test_ipv4_only_database_answers_nothing_for_ipv6(tmp_path: Path) -> None:
    db = MaxMindAsn(asn_db(tmp_path / "v4.mmdb", {"192.0.2.0/24": (64496, "A")}, ip_version=4,
                           record_size=24))
    assert db.lookup("192.0.2.1") == AsInfo(64496, "A")
    assert db.lookup("2001:db8::1") is None


def test_records_without_a_usable_as_number_are_no_answer(tmp_path: Path) -> None:
    path = tmp_path / "odd.mmdb"
    path.write_bytes(write_mmdb({
        "192.0.2.0/26": {NUMBER: "64496", ORG: "number as text"},
        "192.0.2.64/26": {NUMBER: 0, ORG: "AS 0 is not routed"},
        "192.0.2.128/26": {ORG: "no number at all"},
        "192.0.2.192/26": {NUMBER: 64499, ORG: {"en": "a map, not a name"}},
    }))
    db = MaxMindAsn(path)
    assert [db.lookup(f"192.0.2.{i}") for i in (1, 65, 129)] == [None, None, None]
    assert db.lookup("192.0.2.200") == AsInfo(64499, "")


def _valid(tmp_path: Path) -> bytes:
    return asn_db(tmp_path / "valid.mmdb", {"192.0.2.0/24": (64496, "A"),
                                            "2001:db8::/32": (64497, "B")}).read_bytes()


@pytest.mark.parametrize("damage", ["empty", "text", "no-metadata", "cut-tree", "cut-metadata",
                                    "directory", "missing"])
def test_broken_database_is_an_error_naming_the_file(tmp_path: Path, damage: str) -> None:
    good = _valid(tmp_path)
    marker = good.rindex(b"\xab\xcd\xefMaxMind.com")
    path = tmp_path / f"{damage}.mmdb"
    content = {"empty": b"", "text": b"<html>not a database</html>\n" * 100,
               "no-metadata": good[:marker], "cut-tree": good[:20] + good[marker:],
               "cut-metadata": good[: marker + 30]}.get(damage)
    if content is not None:
        path.write_bytes(content)
    elif damage == "directory":
        path.mkdir()
    with pytest.raises(InputError, match=str(path.name)):
        db = MaxMindAsn(path)
        for ip in ("192.0.2.1", "2001:db8::1", "203.0.113.1"):
            db.lookup(ip)


# -- property-based: the wrapper answers exactly what a brute-force scan of the networks says


def _disjoint(candidates: list[tuple[int, int, int, int, str]]
              ) -> dict[str, tuple[int, str]]:
    chosen: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    out: dict[str, tuple[int, str]] = {}
    for version, value, length, asn, name in candidates:
        net = (ipaddress.IPv4Network((value % 2**32, length % 33), strict=False) if version == 4
               else ipaddress.IPv6Network((value, length), strict=False))
        if net.version == 6 and net.overlaps(ipaddress.IPv6Network("::/96")):
            continue  # that range holds the IPv4 subtree in an IPv6 database
        if any(net.version == c.version and net.overlaps(c) for c in chosen):  # type: ignore[arg-type]
            continue
        chosen.append(net)
        out[str(net)] = (asn, name)
    return out


names = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)
candidate = st.tuples(st.sampled_from([4, 6]), st.integers(0, 2**128 - 1), st.integers(1, 128),
                      st.integers(1, 2**32 - 1), names)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(candidate, max_size=12), st.lists(st.integers(0, 2**128 - 1), max_size=10),
       st.sampled_from([24, 32]))
def test_lookup_matches_brute_force(tmp_path_factory: pytest.TempPathFactory,
                                    candidates: list[tuple[int, int, int, int, str]],
                                    probes: list[int], record_size: int) -> None:
    networks = _disjoint([(v, x, ln if v == 6 else ln % 33, a, n)
                          for v, x, ln, a, n in candidates])
    path = asn_db(tmp_path_factory.mktemp("mmdb") / "p.mmdb", networks, record_size=record_size)
    db = MaxMindAsn(path)
    parsed = {ipaddress.ip_network(n): info for n, info in networks.items()}
    # probe random addresses and the first and last address of every network
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for p in probes:
        addresses += [ipaddress.IPv4Address(p % 2**32), ipaddress.IPv6Address(p)]
    for net in parsed:
        addresses += [net.network_address, net.broadcast_address]
    for address in addresses:
        if address.version == 6 and address in ipaddress.IPv6Network("::/96"):
            continue  # IPv4 space inside an IPv6 tree
        expected = next((AsInfo(a, n[:200]) for net, (a, n) in parsed.items()
                         if net.version == address.version and address in net), None)
        assert db.lookup(str(address)) == expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_damage_to_a_database_is_an_input_error_or_an_answer(
        tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    good = bytearray(write_mmdb({"192.0.2.0/24": {NUMBER: 64496, ORG: "A"},
                                 "2001:db8::/32": {NUMBER: 64497, ORG: "B"}}))
    edits = data.draw(st.lists(st.tuples(st.integers(0, len(good) - 1), st.integers(0, 255)),
                               min_size=1, max_size=8))
    for at, byte in edits:
        good[at] = byte
    cut = data.draw(st.integers(0, len(good)))
    path = tmp_path_factory.mktemp("bad") / "bad.mmdb"
    path.write_bytes(bytes(good[:cut]))
    try:
        db = MaxMindAsn(path)
        for ip in ("192.0.2.1", "2001:db8::1", "203.0.113.1", "::1"):
            answer = db.lookup(ip)
            assert answer is None or (isinstance(answer.asn, int) and isinstance(answer.name, str))
    except InputError as exc:
        assert "bad.mmdb" in str(exc)


# -- the command line


def test_ingest_with_mmdb_fills_as_number_and_name(db_url: str, tmp_path: Path) -> None:
    mmdb = asn_db(tmp_path / "asn.mmdb", {"192.0.2.0/25": (64496, "DOC-NET-A <script>"),
                                          "2001:db8::/32": (64497, "DOC-V6")})
    out = CliRunner().invoke(app, ["ingest", str(SS_2021), str(SS_NOW), "--db", db_url,
                                   "--mmdb", str(mmdb)])
    assert out.exit_code == 0, out.output
    with Store(db_url).session() as s:
        h = {x.ip: x for x in s.scalars(sa.select(Host))}
    assert (h["192.0.2.10"].asn, h["192.0.2.10"].as_name) == (64496, "DOC-NET-A <script>")
    assert (h["2001:db8:99::1"].asn, h["2001:db8:99::1"].as_name) == (64497, "DOC-V6")
    assert h["198.51.100.5"].asn == 64501  # not in the database: the feed's own AS stays


def test_ingest_with_a_broken_mmdb_names_it_and_stores_nothing(db_url: str,
                                                              tmp_path: Path) -> None:
    bad = tmp_path / "GeoLite2-ASN.mmdb"
    bad.write_bytes(b"\x00" * 4096)
    out = CliRunner().invoke(app, ["ingest", str(SS_2021), "--db", db_url, "--mmdb", str(bad)])
    assert out.exit_code == 2
    assert "GeoLite2-ASN.mmdb" in out.output and "Traceback" not in out.output
    with Store(db_url).session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Host)) == 0


def test_ip2asn_and_mmdb_together_is_a_usage_error(tmp_path: Path) -> None:
    mmdb = asn_db(tmp_path / "asn.mmdb", {"192.0.2.0/24": (64496, "A")})
    tsv = tmp_path / "ip2asn.tsv"
    tsv.write_text("192.0.2.0\t192.0.2.255\t64496\tUS\tA\n")
    out = CliRunner().invoke(app, ["ingest", str(SS_2021), "--db",
                                   f"sqlite:///{tmp_path / 'x.db'}", "--ip2asn", str(tsv),
                                   "--mmdb", str(mmdb)])
    assert out.exit_code == 2 and "not both" in out.output
