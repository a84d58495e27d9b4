"""Target parsing: tokens, networks, files, masscan JSON, ZMap CSV; hostile lists."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exhunt.scan.scope import build_scope
from exhunt.scan.targets import count_endpoints, endpoints, gather, parse_text, parse_token


def eps(
    tokens: list[str], ports: tuple[int, ...] = (443,), stdin: str | None = None
) -> list[tuple[str, int]]:
    specs, problems = gather(tokens, stdin)
    assert not problems, problems
    return [e.key for e in endpoints(specs, ports)]


def test_single_tokens() -> None:
    assert eps(["mail.Example.org"]) == [("mail.example.org", 443)]
    assert eps(["10.0.0.1:8443"]) == [("10.0.0.1", 8443)]
    assert eps(["[::1]:8443"]) == [("::1", 8443)]
    assert eps(["::1"], (443, 80)) == [("::1", 443), ("::1", 80)]
    assert eps(["mail.example.org:444", "mail.example.org:444"]) == [("mail.example.org", 444)]


def test_cidrs_v4_and_v6() -> None:
    assert eps(["192.0.2.0/30"]) == [("192.0.2.1", 443), ("192.0.2.2", 443)]
    assert eps(["192.0.2.7/32"]) == [("192.0.2.7", 443)]
    assert eps(["2001:db8::/126"]) == [
        ("2001:db8::1", 443),
        ("2001:db8::2", 443),
        ("2001:db8::3", 443),
    ]
    specs, _ = gather(["192.0.2.0/24", "2001:db8::/120"])
    assert count_endpoints(specs, (443, 80)) == len(list(endpoints(specs, (443, 80))))


@pytest.mark.parametrize(
    "bad", ["", "a b", "10.0.0.1:99999", "10.0.0.0/33", "10.0.0.0/4", "[::1", "<script>", "x" * 400]
)
def test_bad_tokens_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_token(bad)
    specs, problems = gather([bad, "192.0.2.9"])
    assert [s.target.host for s in specs if s.target] == ["192.0.2.9"]
    assert problems and problems[0].message


def test_file_and_stdin(tmp_path: Path) -> None:
    f = tmp_path / "targets.txt"
    f.write_text("# our servers\n192.0.2.1\nmail.example.org:8443  # front end\n\n192.0.2.0/31\n")
    assert eps([f"@{f}"]) == [
        ("192.0.2.1", 443),
        ("mail.example.org", 8443),
        ("192.0.2.0", 443),
        ("192.0.2.1", 443),
    ]
    assert eps(["-"], stdin="192.0.2.5\n192.0.2.6:80\n") == [("192.0.2.5", 443), ("192.0.2.6", 80)]
    specs, problems = gather([f"@{tmp_path / 'missing.txt'}"])
    assert not specs and "cannot read" in problems[0].message


def test_masscan_json_with_trailing_comma() -> None:
    text = (
        "[\n"
        '{   "ip": "192.0.2.10",   "timestamp": "1614900000", "ports": [ {"port": 443, "proto": "tcp", '
        '"status": "open", "reason": "syn-ack", "ttl": 64} ] }\n,\n'
        '{   "ip": "2001:db8::5",   "timestamp": "1614900001", "ports": [ {"port": 8443, "proto": "tcp", '
        '"status": "open", "reason": "syn-ack", "ttl": 64} ] },\n'
        "]\n"
    )
    specs, problems = parse_text(text, "masscan.json")
    assert not problems
    assert [e.key for e in endpoints(specs, (443,))] == [("192.0.2.10", 443), ("2001:db8::5", 8443)]


def test_zmap_csv() -> None:
    text = "saddr,sport,success\n192.0.2.20,443,1\n192.0.2.21,443,0\nnot-an-ip,443,1\n192.0.2.22,8443,1\n"
    specs, problems = parse_text(text, "zmap.csv")
    assert [e.key for e in endpoints(specs, (443,))] == [("192.0.2.20", 443), ("192.0.2.22", 8443)]
    assert len(problems) == 1 and "zmap.csv:4" in problems[0].source


def test_implicit_scope_is_the_targets() -> None:
    specs, _ = gather(["192.0.2.0/30", "mail.example.org"])
    scope = build_scope(specs)
    assert scope.ip_allowed("192.0.2.2") and not scope.ip_allowed("192.0.2.9")
    ok, _ = scope.addresses_allowed("mail.example.org", ["203.0.113.5"])
    assert ok  # listed by name
    ok, reason = scope.addresses_allowed("other.example.org", ["203.0.113.5"])
    assert not ok and reason and "outside scope" in reason


def test_exclusions_win(tmp_path: Path) -> None:
    ex = tmp_path / "optout.txt"
    ex.write_text("192.0.2.2\nmail.example.org\n")
    specs, _ = gather(["192.0.2.0/30", "mail.example.org"])
    scope = build_scope(specs, exclude_file=ex)
    assert not scope.ip_allowed("192.0.2.2") and scope.ip_allowed("192.0.2.1")
    assert not scope.addresses_allowed("mail.example.org", ["192.0.2.1"])[0]
    assert not scope.ip_allowed("::ffff:192.0.2.2")


def test_bad_scope_file_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "scope.txt"
    bad.write_text("http://evil/\n")
    with pytest.raises(ValueError, match=r"scope\.txt:1"):
        build_scope([], scope_file=bad)


@given(st.text(max_size=2000))
def test_any_target_list_parses_without_raising(text: str) -> None:
    specs, _problems = parse_text(text, "fuzz")
    for spec in specs[:5]:
        for ep in list(endpoints([spec], (443,)))[:3]:
            assert 0 < ep.port < 65536


@given(st.binary(max_size=2000))
def test_binary_junk_target_file(tmp_path_factory: pytest.TempPathFactory, blob: bytes) -> None:
    path = tmp_path_factory.mktemp("t") / "junk.bin"
    path.write_bytes(blob)
    gather([f"@{path}"])
