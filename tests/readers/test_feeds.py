"""The feed formats as read: CSV records, JSON lines, addresses and times, the feed sniffer."""

from __future__ import annotations

import csv
import io
import ipaddress

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from exhunt.readers.base import MAX_LINE_BYTES
from exhunt.readers.feeds import (
    MAX_FIELD_CHARS,
    clean_text,
    csv_records,
    json_lines,
    literal_fields,
    parse_ip,
    parse_time,
    sniff_kind,
    target_name,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                               blacklist_characters="\r\n\x00"),
                        max_size=12), min_size=1, max_size=6))
def test_literal_fields_read_well_formed_rows_as_csv_does(cells: list[str]) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    line = out.getvalue()
    assert literal_fields(line) == next(csv.reader([line]))


def test_a_broken_record_keeps_its_cells_as_written_and_the_file_goes_on() -> None:
    data = b'ip,name\n192.0.2.1,""unsafe""\n192.0.2.2,"a ""quoted"" name"\n'
    records = csv_records(data)
    assert records is not None
    header, rows = records
    assert header == ["ip", "name"]
    assert list(rows) == [(2, ["192.0.2.1", '""unsafe""']), (3, ["192.0.2.2", 'a "quoted" name'])]
    assert csv_records(b"") is None


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_give_records_or_no_header(data: bytes) -> None:
    records = csv_records(data)
    if records is None:
        return
    lines = [n for n, _ in records[1]]
    assert lines == sorted(lines) and all(n >= 2 for n in lines)


def test_a_huge_line_is_cut_not_kept_whole() -> None:
    data = b"ip\n" + b"x" * (MAX_LINE_BYTES * 2) + b"\n"
    records = csv_records(data)
    assert records is not None
    (_, cells), = list(records[1])
    assert len(cells[0]) <= MAX_LINE_BYTES


def test_json_lines_name_the_line_that_is_not_json() -> None:
    out = list(json_lines(b'{"a": 1}\n\nnot json\n[2]\n'))
    assert [(n, value, why is None) for n, _, value, why in out] == [
        (1, {"a": 1}, True), (3, None, False), (4, [2], True)]
    assert out[1][3] is not None and out[1][3].startswith("not JSON")


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000))
def test_json_lines_survive_any_bytes(data: bytes) -> None:
    for _, raw, _, _ in json_lines(data):
        assert "\x00" not in raw


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.ip_addresses().map(str), st.text(max_size=40)))
def test_addresses_are_canonical_or_refused_by_name(text: str) -> None:
    try:
        ip = parse_ip(text)
    except ValueError as exc:
        assert "IP address" in str(exc)
    else:
        assert ip == str(ipaddress.ip_address(text.strip()))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_times_are_naive_utc_or_refused(text: str) -> None:
    try:
        moment = parse_time(text)
    except ValueError:
        return
    assert moment.tzinfo is None


def test_shadowserver_time_and_offsets_are_utc() -> None:
    assert parse_time("2021-03-09 01:02:03").hour == 1
    assert parse_time("2021-03-09T01:02:03+02:00").hour == 23


@given(st.text(max_size=3 * MAX_FIELD_CHARS))
def test_clean_text_is_bounded_and_storable(text: str) -> None:
    cleaned = clean_text(text)
    assert "\x00" not in cleaned
    assert len(cleaned) <= MAX_FIELD_CHARS + 40


def test_scan_target_names_only_a_name() -> None:
    assert target_name("mail.example.org:443") == "mail.example.org"
    assert target_name("192.0.2.0/24") is None and target_name("2001:db8::1") is None


def test_sniffer_tells_hunt_from_scan_from_csv() -> None:
    assert sniff_kind(orjson.dumps({"verdict": "clean", "host": {}}), "x.txt") == "hunt"
    assert sniff_kind(b'{"target": "a", "verdict": "x"}\n', "x") == "scan"
    assert sniff_kind(b"\xef\xbb\xbftimestamp,ip\n", "r.json") == "hunt"
    assert sniff_kind(b"timestamp,ip\n", "report.csv") == "shadowserver"
