"""Shadowserver CSV as columns of text: a file is split only when it maps line for line."""

from __future__ import annotations

import csv

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exhunt.readers.feeds import csv_records
from exhunt.readers.shadowserver import read_text_table

PLAIN = b"timestamp,ip,tag\n2021-03-09 00:00:00,192.0.2.1,exchange\n"


def test_a_plain_file_is_read_as_text_columns() -> None:
    read = read_text_table(b"\xef\xbb\xbf" + PLAIN.replace(b"tag", b'"TAG"'),
                           required=("ip", "timestamp"))
    assert read is not None and read.printable
    assert read.header == ["timestamp", "ip", "tag"]
    assert read.table.column("ip").to_pylist() == ["192.0.2.1"]


def test_files_that_do_not_map_line_for_line_are_left_to_the_row_reader() -> None:
    for data in (PLAIN + b"\n2021-03-09 00:00:00,192.0.2.2,x\n",  # blank line
                 PLAIN.replace(b"exchange", b'"ex\nchange"'),  # quoted line break
                 PLAIN + b"2021-03-09 00:00:00,192.0.2.2\n",  # ragged row
                 PLAIN.replace(b"exchange", b'""unsafe""'),  # quotes kept as written
                 PLAIN.replace(b"exchange", b"ex\x00change"),
                 PLAIN.replace(b"exchange", b"\xff\xfe")):
        assert read_text_table(data) is None, data
    assert read_text_table(PLAIN, required=("asn",)) is None
    assert read_text_table(b"ip,ip\n1,2\n") is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=1500))
def test_any_bytes_either_map_line_for_line_or_give_none(data: bytes) -> None:
    read = read_text_table(data)
    if read is None:
        return
    records = csv_records(data.removeprefix(b"\xef\xbb\xbf"))
    assert records is not None
    assert len(list(records[1])) == read.table.num_rows


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.text(alphabet="ab ,\"'", max_size=6), min_size=2, max_size=2),
                min_size=1, max_size=5))
def test_cells_read_column_wise_are_the_cells_the_row_reader_reads(rows: list[list[str]]) -> None:
    lines = ["ip,tag", *(",".join(csv_quote(c) for c in row) for row in rows)]
    data = ("\n".join(lines) + "\n").encode()
    read = read_text_table(data)
    if read is None:
        return
    records = csv_records(data)
    assert records is not None
    by_rows = [values for _, values in records[1]]
    assert [list(r) for r in zip(*(read.table.column(i).to_pylist() for i in range(2)),
                                 strict=True)] == by_rows


def csv_quote(cell: str) -> str:
    out: list[str] = []
    csv.writer(_Into(out), lineterminator="").writerow([cell])
    return out[0]


class _Into:
    def __init__(self, out: list[str]) -> None:
        self.out = out

    def write(self, text: str) -> None:
        self.out.append(text)
