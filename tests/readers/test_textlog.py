"""The text-log reader: formats by their own headers, and hostile input."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exhunt.model import RecordKind
from exhunt.readers.base import MAX_LINE_BYTES, ReadStats
from exhunt.readers.exchange import parse_cmdlet, parse_event_data
from exhunt.readers.prefilter import LiteralFilter
from exhunt.readers.textlog import read_text_log


@pytest.fixture
def data() -> Path:
    """The hand-made logs of tests/data/hunt."""
    return Path(__file__).resolve().parent.parent / "data" / "hunt"

EVERYTHING = LiteralFilter(())
IIS_HEAD = (b"#Software: Microsoft Internet Information Services 10.0\r\n#Version: 1.0\r\n"
            b"#Fields: date time cs-method cs-uri-stem c-ip sc-status\r\n")


def read(data: bytes, kind: RecordKind = RecordKind.IIS, literals: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    stats = ReadStats("t.log")
    records = list(read_text_log(BytesIO(data), kind, stats, LiteralFilter(literals)))
    return records, stats


def iis_line(i: int, path: str = "/owa/") -> bytes:
    return f"2021-03-0{1 + i % 9} 10:00:{i % 60:02d} GET {path} 10.0.0.{i % 250} 200\r\n".encode()


def test_columns_come_from_the_files_own_header_even_when_it_changes() -> None:
    data = (IIS_HEAD + iis_line(1)
            + b"#Fields: date time c-ip cs-method cs-uri-stem sc-status\r\n"
            + b"2021-03-02 11:00:00 10.9.9.9 POST /ecp/y.js 241\r\n")
    records, stats = read(data)
    assert [r.get("cs-uri-stem") for r in records] == ["/owa/", "/ecp/y.js"]
    assert records[1].get("c-ip") == "10.9.9.9" and records[1].line == 6
    assert records[1].timestamp == datetime(2021, 3, 2, 11, 0, tzinfo=UTC)
    assert stats.records == 2 and stats.bad_lines == 0


def test_prefilter_counts_every_line_but_parses_only_matches() -> None:
    data = IIS_HEAD + b"".join(iis_line(i) for i in range(500)) + iis_line(7, "/aspnet_client/a.aspx")
    records, stats = read(data, literals=(".ASPX",))  # case-insensitive
    assert [r.get("cs-uri-stem") for r in records] == ["/aspnet_client/a.aspx"]
    assert stats.records == 501
    assert stats.first == datetime(2021, 3, 1, 10, 0, 0, tzinfo=UTC)  # first line of the file
    assert stats.last == datetime(2021, 3, 8, 10, 0, 7, tzinfo=UTC)   # last line of the file


def test_gzip_rotation_is_read_transparently() -> None:
    data = gzip.compress(IIS_HEAD + iis_line(3))
    records, stats = read(data)
    assert len(records) == 1 and stats.records == 1


def test_damaged_gzip_rotation_is_named_not_a_crash() -> None:
    # a second member whose deflate data is damaged (a reserved block type)
    damaged = gzip.compress(IIS_HEAD + iis_line(3)) + gzip.compress(iis_line(4))[:10] + b"\xff" * 64
    _, stats = read(damaged)
    assert stats.problems and "read stopped" in stats.problems[-1].message
    assert "damaged gzip data" in stats.problems[-1].message


def test_utf16_and_latin1_logs() -> None:
    text = (IIS_HEAD + iis_line(2, "/owa/é")).decode()
    records, _ = read(b"\xff\xfe" + text.encode("utf-16-le"))
    assert records[0].get("cs-uri-stem") == "/owa/é"
    records, stats = read(IIS_HEAD + iis_line(2, "/owa/é").replace("é".encode(), b"\xe9"))
    assert records[0].get("cs-uri-stem") == "/owa/é" and not stats.problems


def test_binary_junk_is_named_and_skipped() -> None:
    junk = b"\x00\x01\x02\xff garbage \x00\r\n"
    records, stats = read(IIS_HEAD + junk + iis_line(4))
    assert len(records) == 1 and stats.bad_lines == 1
    assert "line 4" in stats.problems[0].message and "NUL" in stats.problems[0].message


def test_a_huge_line_is_named_and_skipped_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "huge.log"
    with path.open("wb") as out:
        out.write(IIS_HEAD + iis_line(1))
        block = b"A" * (1 << 20)
        for _ in range(200):  # a 200 MB line
            out.write(block)
        out.write(b"\r\n" + iis_line(5, "/after.aspx"))
    stats = ReadStats("huge.log")
    with path.open("rb") as stream:
        records = list(read_text_log(stream, RecordKind.IIS, stats, EVERYTHING))
    assert [r.get("cs-uri-stem") for r in records] == ["/owa/", "/after.aspx"]
    assert stats.bad_lines == 1 and f"longer than {MAX_LINE_BYTES}" in stats.problems[0].message


def test_truncated_file_keeps_what_came_before() -> None:
    data = IIS_HEAD + iis_line(1) + iis_line(2)[:12]
    records, stats = read(data)
    assert len(records) == 1
    assert stats.bad_lines == 1 and "line 5" in stats.problems[0].message


def test_bomb_gzip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.log.gz"
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(IIS_HEAD)
        zeros = b"0" * (16 << 20)
        for _ in range(32):  # 512 MB of one byte compresses ~1000x
            out.write(zeros)
    stats = ReadStats("bomb.log.gz")
    with path.open("rb") as stream:
        list(read_text_log(stream, RecordKind.IIS, stats, LiteralFilter(("x",))))
    assert any("bomb" in p.message for p in stats.problems)


def test_exchange_csv_with_doubled_quotes_and_commas(data: Path) -> None:
    stats = ReadStats("ecp")
    with (data / "ECPServer_attack.LOG").open("rb") as stream:
        records = list(read_text_log(stream, RecordKind.ECP_SERVER, stats, EVERYTHING))
    scripted = records[2]
    assert scripted.get("Cmdlet") == "Set-OabVirtualDirectory"
    assert scripted.get("Param.ExternalUrl").startswith('http://f/<script language="JScript"')
    assert scripted.get("Param.Identity") == "982d48c8-8bfa-4b6b-b431-53fd7ea4e9b3"
    assert records[3].get("Param.ExternalUrl") == "$null"
    assert stats.meta["Log-type"] == "ECP Server Log" and stats.meta["ServerName"] == "EXCH01"


def test_lines_of_another_builds_column_set_are_read_by_position(data: Path) -> None:
    stats = ReadStats("owa")
    with (data / "HttpProxy_Owa_probes.LOG").open("rb") as stream:
        records = list(read_text_log(stream, RecordKind.HTTPPROXY, stats, EVERYTHING))
    probe = records[-1]
    assert probe.get("AnchorMailbox") == "ServerInfo~localhost/ecp/default.flt?"
    assert probe.get("HttpStatus") == "500"
    assert any("read by position" in p.message for p in stats.problems)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096), st.sampled_from(list(RecordKind)))
def test_arbitrary_bytes_never_raise(blob: bytes, kind: RecordKind) -> None:
    records, stats = read(blob, kind)
    assert stats.records >= 0
    for record in records:
        assert record.kind is kind and isinstance(record.get("_raw"), str)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                               blacklist_characters="\r\n\x00"), max_size=40),
                min_size=3, max_size=3))
def test_csv_fields_round_trip(values: list[str]) -> None:
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(["2021-03-03T06:00:00.000Z", *values])
    data = b"#Fields: DateTime,A,B,C\r\n" + buf.getvalue().encode()
    records, _stats = read(data, RecordKind.HTTPPROXY)
    assert [records[0].get(k) for k in "ABC"] == values


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_ecp_value_parsers_never_raise(text: str) -> None:
    items = parse_event_data(text)
    assert all(isinstance(v, str) for v in items.values())
    name, params = parse_cmdlet(text)
    assert isinstance(name, str) and all(isinstance(v, str) for v in params.values())


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)),
               max_size=60))
def test_cmdlet_quoted_values_round_trip(value: str) -> None:
    quoted = value.replace("'", "''")
    name, params = parse_cmdlet(f"Set-OabVirtualDirectory.ExternalUrl='{quoted}'.Identity='x'")
    assert name == "Set-OabVirtualDirectory"
    assert params == {"ExternalUrl": value, "Identity": "x"}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="aspxAS.Pj/n@ ,", max_size=30), min_size=1, max_size=20))
def test_each_matched_line_says_which_literals_it_holds(lines: list[str]) -> None:
    # The hunt hands a line only to the checks whose literals it holds: the bits must be exact.
    literals = (".aspx", "/as", "n@", "P")
    prefilter = LiteralFilter(literals)
    data = "\n".join(lines).encode() + b"\n"
    found = prefilter.scan(data, 0, len(data))
    starts = [0] + [i + 1 for i, b in enumerate(data[:-1]) if b == 0x0A]
    expected = {}
    for start in starts:
        line = data[start:data.index(b"\n", start)].decode().lower()
        bits = sum(1 << i for i, lit in enumerate(prefilter.literals) if lit.lower() in line)
        if bits:
            expected[start] = bits
    assert dict(zip(found.matches, found.masks, strict=True)) == expected
    assert prefilter.mask_of(["P", "n@"]) | prefilter.mask_of([".aspx", "/as"]) == (1 << 4) - 1


SERVED = [" /owa/auth/logon.aspx", ",/ecp/default.aspx", " https://mail.example.org/owa/auth/"
          "logon.aspx?replaceCurrent=1", ",/ECP/PersonalSettings/HomePage.aspx"]
NOT_SERVED = [" /owa/auth/zntwv.aspx", ",/aspnet_client/system_web/a.asp", " /ecp/auth/x.aspx",
              ",/owa/auth/logon.aspx.aspx", " /ecp/DDI/y.aspx"]
NEUTRAL = [" GET", ",200", " /owa/service.svc", " 198.51.100.23"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(SERVED + NOT_SERVED + NEUTRAL), max_size=6),
                min_size=1, max_size=15))
def test_pages_exchange_serves_do_not_make_a_line_a_match(lines: list[list[str]]) -> None:
    # A busy front end answers OWA's logon page and ECP's pages all day: a line whose only
    # script page is one of those must not be handed to the web-shell checks; any other
    # script page on the line must.
    from exhunt.checks.iis import SERVED_PAGES

    literals = (".aspx", ".asp", "/service.svc")
    prefilter = LiteralFilter(literals, SERVED_PAGES, (".aspx", ".asp"))
    data = b"".join(("x" + "".join(tokens) + "\n").encode() for tokens in lines)
    found = prefilter.scan(data, 0, len(data))
    service = prefilter.mask_of(["/service.svc"])
    expected, start = {}, 0
    for tokens in lines:
        # Per line: does it hold the service literal, and does it hold a script page at all?
        wants = (service if " /owa/service.svc" in tokens else 0,
                 any(t in NOT_SERVED for t in tokens))
        if any(wants):
            expected[start] = wants
        start += len(("x" + "".join(tokens) + "\n").encode())
    got = {s: (m & service, bool(m & ~service))
           for s, m in zip(found.matches, found.masks, strict=True)}
    assert got == expected
