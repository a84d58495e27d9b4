"""Shadowserver CSV read column-wise: the format side of the coordinator's fast path.

A national CERT's daily report holds hundreds of thousands of rows; reading them one Python
dict at a time costs more than everything the coordinator then does with them. Here pyarrow
splits the file into columns of text, and the plain form of a cell (canonical IPv4 address,
'YYYY-MM-DD HH:MM:SS' time, printable ASCII text of bounded length) is told on whole columns.
A file the column reader cannot map line for line (invalid UTF-8, NUL bytes, blank lines,
quoted line breaks, ragged rows, huge lines, quotes kept as written) gives None: the row reader
(readers/feeds.py csv_records) reads it whole. What the rows mean is cases/shadowcsv.py's.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from exhunt.readers.base import MAX_LINE_BYTES
from exhunt.readers.feeds import MAX_FIELD_CHARS, normalise_header

_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = rf"^{_OCTET}(\.{_OCTET}){{3}}$"  # the canonical text only: others go to the row reader
TIME_PLAIN = (r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]) "
              r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$")
# printable ASCII with no space at either end (and, checked apart, at most MAX_FIELD_CHARS):
# the row reader's strip and cut leave such a value as it is
_PLAIN = r"^([!-~]([ -~]*[!-~])?)?$"
DIGITS = r"^[0-9]{1,10}$"
_DOUBLED_THEN_TEXT = re.compile(rb'""[^,"\r\n]')
_PRINTABLE = bytes(range(0x20, 0x7F)) + b"\r\n"


@dataclass(frozen=True, slots=True)
class TextTable:
    """A CSV file as columns of text, named by its normalised header, one row per line."""

    table: pa.Table
    header: list[str]
    printable: bool  # the whole file is printable ASCII (cells then need only their ends checked)


def read_text_table(data: bytes, required: Sequence[str] = ()) -> TextTable | None:
    """The file's columns, or None when only the row reader can map it line for line (or a
    `required` column is missing, or a column is named twice)."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    lines = _line_count(data)
    types = _all_text(data) if lines is not None else None
    if lines is None or types is None or _stray_quotes(data):
        return None
    try:
        # one thread: ingest parses beside its read of the stored hosts, the longer of the two,
        # and Arrow's pool would take the core that read needs
        table = pacsv.read_csv(pa.BufferReader(data), read_options=pacsv.ReadOptions(
            use_threads=False, block_size=8 << 20), convert_options=pacsv.ConvertOptions(
            column_types=types, strings_can_be_null=False,
            quoted_strings_can_be_null=False), parse_options=pacsv.ParseOptions(
            newlines_in_values=False, ignore_empty_lines=False))
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
        return None
    header = [normalise_header(h) for h in table.column_names]
    if any(c not in header for c in required) or len(set(header)) != len(header):
        return None
    if table.num_rows + 1 != lines or not _lines_short(data, table):
        return None
    printable = not data.translate(None, _PRINTABLE)
    return TextTable(table.rename_columns(header), header, printable)


def _stray_quotes(data: bytes) -> bool:
    """Quotes the row reader keeps as written and Arrow would eat (`""unsafe""`): such a
    file is the row reader's. (Checked only where a doubled quote occurs at all.)"""
    return b'""' in data and _DOUBLED_THEN_TEXT.search(data) is not None


def _line_count(data: bytes) -> int | None:
    """Lines in the file when none is blank and line ends are one kind (else None)."""
    if not data or b"\x00" in data:
        return None
    # the body without its final line end, as bounds (a report is megabytes: no copies)
    end = len(data) - data.endswith(b"\n")
    end -= data.endswith(b"\r", 0, end)
    if (data.find(b"\n\n", 0, end) >= 0 or data.find(b"\n\r\n", 0, end) >= 0
            or data.startswith((b"\n", b"\r"), 0, end)):
        return None
    # a lone CR ends a line for the row reader
    if data.find(b"\r", 0, end) >= 0 and data.count(b"\r", 0, end) != data.count(b"\r\n", 0, end):
        return None
    return data.count(b"\n", 0, end) + 1


def _lines_short(data: bytes, table: pa.Table) -> bool:
    """No line longer than the row reader reads (it cuts there). Bounded from the widest cell
    of each column (each quoted, its quotes doubled) before walking the lines themselves."""
    if len(data) <= MAX_LINE_BYTES:
        return True
    widest = sum(2 * (pc.max(pc.binary_length(table.column(i))).as_py() or 0) + 3
                 for i in range(table.num_columns))
    if widest <= MAX_LINE_BYTES:
        return True
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        if end - start > MAX_LINE_BYTES:
            return False
        start = end + 1
    return True


def _all_text(data: bytes) -> dict[str, pa.DataType] | None:
    """Every header column typed as text (nothing inferred from the values)."""
    first = data.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        names = next(csv.reader([first.decode("utf-8")]))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        return None
    return {n: pa.string() for n in names}


def written(stamp: pa.ChunkedArray, start: int, value: pa.ChunkedArray) -> pa.ChunkedArray:
    """The two digits at `start` of the time's text (digits there: checked) equal `value`."""
    return pc.equal(pc.cast(pc.utf8_slice_codeunits(stamp, start, start + 2), pa.int64()), value)


def plain_cells(value: pa.ChunkedArray, printable: bool) -> pa.ChunkedArray:
    """Cells the row reader would keep as they are: printable ASCII with no space at either
    end, at most MAX_FIELD_CHARS long (in a file of printable ASCII only the ends are left to
    check)."""
    if printable:
        edges = pc.or_(pc.starts_with(value, " "), pc.ends_with(value, " "))
        fine = pc.invert(edges)
    else:
        fine = pc.match_substring_regex(value, _PLAIN)
    return pc.and_(fine, pc.less_equal(pc.binary_length(value), MAX_FIELD_CHARS))


def number(text: pa.ChunkedArray, low: int, high: int) -> pa.ChunkedArray:
    """Digits to an int when low < n < high, else null (an empty cell is null too)."""
    numbers = pc.cast(pc.if_else(pc.equal(text, ""), None, text), pa.int64())
    in_range = pc.and_(pc.greater(numbers, low), pc.less(numbers, high))
    return pc.if_else(in_range, numbers, None)


def or_none(values: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.if_else(pc.equal(values, ""), None, values)
