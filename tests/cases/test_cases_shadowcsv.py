"""The column reader of Shadowserver CSV must say exactly what the row reader says: the same
sightings, the same rejects with the same line numbers, for any values in any column order;
and a file it cannot map line for line must be left to the row reader (None), never misread."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cases_feeds import make_csv

from exhunt.cases.feeds import RowProblem, Sighting, read_shadowserver
from exhunt.cases.shadowcsv import read_shadowserver_columns
from exhunt.lab.campaign import write_campaign

COLUMNS = ["timestamp", "severity", "ip", "protocol", "port", "hostname", "tag", "asn", "geo",
           "region", "city", "naics", "hostname_source", "sector", "version", "servername",
           "url"]
PLAIN_ROW = {"timestamp": "2021-03-09 01:02:03", "ip": "192.0.2.7", "port": "443",
             "tag": "exchange;cve-2021-26855", "asn": "64500", "geo": "nl",
             "version": "15.1.2176", "hostname": "mail.example.org", "naics": "522130"}

# values a feed row may hold: plain ones, near misses of the plain form, hostile text
cell = st.one_of(
    st.sampled_from(["", "192.0.2.7", "10.0.0.255", "010.0.0.1", "256.1.1.1", "2001:db8::1",
                     " 192.0.2.8", "2021-03-09 01:02:03", "2021-02-30 00:00:00",
                     "2021-03-09T01:02:03Z", "2021-03-09 24:00:00", "443", "0", "65536",
                     "+443", "65535", "65536", "AS64500", "4294967295", "4294967296",
                     "exchange;webshell", "CVE-2021-26855", "<script>alert(1)</script>",
                     "x" * 2000, "y" * 2003, "caf\u00e9", " pad ", "\u00a0", "a,b", 'say "hi"']),
    st.text(max_size=12))


def agree(data: bytes, name: str = "2021-03-09-scan_exchange.csv") -> bool:
    """True when the column reader took the file (and then said what the row reader says)."""
    fast = read_shadowserver_columns(data, name)
    if fast is None:
        return False
    got: list[Sighting | RowProblem] = [*fast.columns.sightings(), *fast.others]
    got.sort(key=lambda r: r.line or 0)
    assert got == list(read_shadowserver(data, name))
    return True


# a plain row with some cells changed: most rows stay in the plain form, so the column rules
# (state from the tag, evidence text, numbers, cuts) are what gets compared
plain_tag = st.sampled_from(["exchange;webshell", "Exchange;WebShell;cve-2021-26855",
                             "exchange;cve-2021-26855;cve-2021-27065", "exchange", "CVE-X", ""])
USED = ["timestamp", "ip", "port", "tag", "asn", "geo", "naics", "sector", "version",
        "servername", "url", "severity", "hostname"]
row = st.builds(lambda tag, changes: PLAIN_ROW | {"tag": tag} | changes, plain_tag,
                st.dictionaries(st.sampled_from(USED + COLUMNS), cell, max_size=3))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(row, min_size=1, max_size=8), st.permutations(COLUMNS))
def test_column_reader_says_what_the_row_reader_says(rows: list[dict[str, str]],
                                                     order: list[str]) -> None:
    agree(make_csv(order, rows))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["ip", "timestamp", "tag", "port", "junk", "version"]),
                min_size=2, max_size=6, unique=True))
def test_missing_and_extra_columns(columns: list[str]) -> None:
    data = make_csv(columns, [PLAIN_ROW | {"junk": "z"}])
    took = agree(data)
    assert took == ("ip" in columns and "timestamp" in columns)


def test_a_lab_day_is_read_column_wise_and_agrees(tmp_path) -> None:  # type: ignore[no-untyped-def]
    write_campaign(tmp_path, servers=400, days=1, seed=3, parquet=False)
    day = next(tmp_path.glob("*-scan_exchange.csv"))
    assert agree(day.read_bytes(), day.name)


def test_files_it_cannot_map_line_for_line_go_to_the_row_reader() -> None:
    good = make_csv(COLUMNS, [PLAIN_ROW, PLAIN_ROW | {"ip": "192.0.2.9"}])
    assert agree(good)
    header, first, second = good.rstrip(b"\r\n").split(b"\r\n")
    for name, data in {
        "blank line": header + b"\r\n" + first + b"\r\n\r\n" + second + b"\r\n",
        "lone CR": header + b"\r" + first + b"\r" + second,
        "NUL": good.replace(b"mail.example.org", b"mail\x00x"),
        "bad UTF-8": good.replace(b"mail.example.org", b"mail\xff"),
        "quoted line break": good.replace(b"mail.example.org", b'"a\r\nb"'),
        "ragged row": good + b"1,2\r\n",
    }.items():
        assert read_shadowserver_columns(data, "x-scan_exchange.csv") is None, name
    # a byte-order mark is not part of the first column's name, on either path
    assert agree(b"\xef\xbb\xbf" + good)


NEAR_MISSES = [("timestamp", "2021-02-30 00:00:00"), ("timestamp", "2021-03-09 23:59:60"),
               ("timestamp", "2021-04-31 12:00:00"), ("timestamp", "2021-02-29 12:00:00"),
               ("timestamp", "2020-02-29 12:00:00"), ("timestamp", "2021-12-31 23:59:59"),
               ("timestamp", "2021-03-09T01:02:03"), ("ip", "010.0.0.1"), ("ip", "1.2.3.256"),
               ("ip", "2001:DB8::1"), ("port", "65535"), ("port", "65536"), ("port", "0"),
               ("asn", "4294967295"), ("asn", "4294967296"), ("asn", "AS64500"),
               ("hostname", "y" * 2000), ("hostname", "y" * 2001), ("geo", "nederland"),
               ("naics", "5" * 20), ("tag", "EXCHANGE;WEBSHELL"), ("url", " http://x ")]


def test_near_misses_of_the_plain_form_agree() -> None:
    rows = [PLAIN_ROW | {column: value} for column, value in NEAR_MISSES]
    assert agree(make_csv(COLUMNS, [PLAIN_ROW, *rows]))
