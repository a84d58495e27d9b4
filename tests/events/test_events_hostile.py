"""Hostile and broken event logs: each gives a named problem, never an exception or a hang."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exhunt.lab.evtx_writer import CHUNK_SIZE, FILE_HEADER_SIZE, EventSpec, write_evtx
from exhunt.readers.base import ReadStats
from exhunt.readers.events import MAX_EVENT_CHARS, read_events

T0 = datetime(2021, 3, 3, 6, 0, tzinfo=UTC)


def _write(path: Path, n: int, width: int = 300) -> Path:
    specs = (
        EventSpec("Application", "P", 1, 4, T0, "EX01", [f"value {i:06d}", "w" * width])
        for i in range(n)
    )
    write_evtx(path, specs)
    return path


def _records_ending_before(data: bytes, chunk_start: int, cut: int) -> int:
    """How many records of the chunk at `chunk_start` lie wholly before byte `cut`."""
    offset, count = chunk_start + 512, 0
    while data[offset : offset + 4] == b"\x2a\x2a\x00\x00":
        (size,) = struct.unpack_from("<I", data, offset + 4)
        if offset + size > cut:
            break
        count, offset = count + 1, offset + size
    return count


def test_truncated_evtx_keeps_records_before_the_cut(tmp_path: Path, read_all, problems) -> None:
    full = _write(tmp_path / "full.evtx", 1000).read_bytes()
    chunk2 = FILE_HEADER_SIZE + 2 * CHUNK_SIZE
    cut = chunk2 + 20_000
    cut_path = tmp_path / "cut.evtx"
    cut_path.write_bytes(full[:cut])
    in_first_two = sum(
        _records_ending_before(full, FILE_HEADER_SIZE + i * CHUNK_SIZE, 1 << 40) for i in range(2)
    )
    expected = in_first_two + _records_ending_before(full, chunk2, cut)

    records, stats = read_all(cut_path, "cut.evtx")

    assert len(records) == expected
    assert expected > in_first_two  # records of the cut chunk itself are recovered
    assert [r.fields["Data[0]"] for r in records] == [f"value {i:06d}" for i in range(expected)]
    assert "truncated" in problems(stats)
    assert "chunk 2" in problems(stats)


def test_changed_record_data_is_named_but_still_read(tmp_path: Path, read_all, problems) -> None:
    data = bytearray(_write(tmp_path / "a.evtx", 600).read_bytes())
    target = "value 000300".encode("utf-16-le")
    at = data.index(target)
    data[at : at + len(target)] = "VALUE 000300".encode("utf-16-le")  # same length
    altered = tmp_path / "altered.evtx"
    altered.write_bytes(bytes(data))
    chunk = (at - FILE_HEADER_SIZE) // CHUNK_SIZE

    records, stats = read_all(altered)

    assert len(records) == 600
    assert records[300].fields["Data[0]"] == "VALUE 000300"
    assert f"checksum mismatch in 1 chunk(s) ({chunk})" in problems(stats)


def test_destroyed_chunk_is_skipped_others_read(tmp_path: Path, read_all, problems) -> None:
    data = bytearray(_write(tmp_path / "a.evtx", 600).read_bytes())
    start = FILE_HEADER_SIZE + CHUNK_SIZE
    data[start : start + CHUNK_SIZE] = bytes(range(256)) * (CHUNK_SIZE // 256)
    path = tmp_path / "b.evtx"
    path.write_bytes(bytes(data))
    full_chunks = (len(data) - FILE_HEADER_SIZE) // CHUNK_SIZE

    records, stats = read_all(path)

    assert 0 < len(records) < 600
    assert stats.bad_lines == 1
    assert "chunk number 1" in problems(stats)
    assert full_chunks >= 3 and records[-1].fields["Data[0]"] == "value 000599"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "empty file"),
        (b"ElfFile\x00" + bytes(10), "shorter than its 4096-byte header"),
        (bytes(range(256)) * 40, "not an event log export"),
        (b"\x00" * 5000, "not an event log export"),
        (b"MZ\x90\x00" + bytes(6000), "not an event log export"),
        (b"   \r\n", "not an event log export"),
    ],
)
def test_unreadable_files_are_named(data: bytes, expected: str, read_all, problems) -> None:
    records, stats = read_all(data)
    assert records == []
    assert expected in problems(stats)


def test_evtx_header_followed_by_junk(tmp_path: Path, read_all, problems) -> None:
    head = _write(tmp_path / "a.evtx", 10).read_bytes()[:FILE_HEADER_SIZE]
    junk = bytes((i * 7919) % 251 for i in range(3 * CHUNK_SIZE))
    records, stats = read_all(head + junk)
    assert records == []
    assert "chunk header magic" in problems(stats)


BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">'.encode()
        for i in range(1, 10)
    )
    + b"]>\n<Event><System><Computer>&lol9;</Computer></System></Event>"
)
EXTERNAL_ENTITY = (
    b'<!DOCTYPE e [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<Event><System><Computer>&xxe;</Computer></System></Event>"
)


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_xml_with_dtd_is_refused_not_expanded(doc: bytes, read_all, problems) -> None:
    records, stats = read_all(doc)
    assert records == []
    assert "DTD" in problems(stats)
    assert "lollol" not in problems(stats) and "root:" not in problems(stats)


def test_events_before_a_dtd_are_kept(read_all, problems) -> None:
    good = b"<Event><System><Computer>EX01</Computer></System></Event>\n"
    records, stats = read_all(good + EXTERNAL_ENTITY)
    assert [r.fields["Computer"] for r in records] == ["EX01"]
    assert "DTD" in problems(stats)


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (b"<Event><System><Computer>&xxe;</Computer></System></Event>", "undefined entity"),
        (b"<Event><System><Computer>x</System>", "not well-formed"),
        (b"<Event>" + b"<a>" * 200_000, "nested deeper"),
        (b"<html><body>not events</body></html>", "no <Event> elements"),
        (b"<Event>\x00\x01</Event>", "not well-formed"),
    ],
)
def test_broken_xml_is_named(doc: bytes, expected: str, read_all, problems) -> None:
    records, stats = read_all(doc)
    assert records == []
    assert expected in problems(stats)


def test_oversized_xml_event_is_skipped_and_reading_goes_on(read_all, problems) -> None:
    big = (
        b"<Event><EventData><Data>" + b"A" * (MAX_EVENT_CHARS + 10) + b"</Data></EventData></Event>"
    )
    after = b"<Event><System><Computer>after</Computer></System></Event>"
    records, stats = read_all(big + after)
    assert [r.fields["Computer"] for r in records] == ["after"]
    assert [r.line for r in records] == [2]
    assert "event larger than" in problems(stats)


class _Generated(io.RawIOBase):
    """A long stream made on the fly, so tests need not hold it in memory."""

    def __init__(self, parts: Iterator[bytes]) -> None:
        self._parts = parts
        self._pending = b""
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        while not self._pending:
            try:
                self._pending = next(self._parts)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self.consumed += n
        return n


def _read_stream(parts: Iterator[bytes]) -> tuple[int, ReadStats, _Generated]:
    raw = _Generated(parts)
    stats = ReadStats("stream")
    count = sum(1 for _ in read_events(io.BufferedReader(raw), "stream", stats))
    return count, stats, raw


def test_hundred_megabyte_json_string_is_refused_without_reading_it_all(problems) -> None:
    size = 100 << 20
    parts = iter([b'["', *(b"a" * (1 << 20) for _ in range(size >> 20)), b'"]'])
    count, stats, raw = _read_stream(parts)
    assert count == 0
    assert "larger than" in problems(stats)
    assert raw.consumed < size // 2


def test_huge_xml_export_streams(problems) -> None:
    event = (
        b"<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
        b"<Provider Name='P'/><EventID>1</EventID><TimeCreated SystemTime='2021-03-03T06:00:00Z'/>"
        b"<Computer>EX01</Computer></System><EventData><Data>" + b"d" * 900 + b"</Data>"
        b"</EventData></Event>\r\n"
    )
    n = 40_000  # ~40 MB, never held whole
    count, stats, raw = _read_stream(iter([event] * n))
    assert count == n
    assert stats.problems == []
    assert raw.consumed == n * len(event)


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (b"[" * 1_000_000, "nested too deeply"),
        (b'[{"Id": 1, "Properties": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]", "too deeply"),
        (b'{"foo": 1}', "not a Get-WinEvent event"),
        (b"[1, 2]", "not an event object"),
        (b'[{"Id": 1}, {"Id": 2},', "ends early"),
        (b'[{"Id": 1} {"Id": 2}]', "expected ','"),
        (b'[{"Id": 1, "TimeCreated": "/Date(0)/"}, {"Id": 2, ', "not well-formed"),
        (b"[]", "holds no events"),
        (b"{", "not well-formed"),
    ],
)
def test_broken_json_is_named(doc: bytes, expected: str, read_all, problems) -> None:
    _, stats = read_all(doc)
    assert expected in problems(stats)


def test_json_lines_of_compressed_events(read_all, problems) -> None:
    lines = b'{"Id": 1, "LogName": "Application"}\r\n{"Id": 2}\n\n{"Id": 3, "Message": "m"}\n{"Id"'
    records, stats = read_all(lines)
    assert [r.fields["EventID"] for r in records] == ["1", "2", "3"]
    assert [r.line for r in records] == [1, 2, 3]
    assert "element 4: JSON not well-formed" in problems(stats)


def test_json_events_before_breakage_are_kept(read_all) -> None:
    records, _ = read_all(b'[{"Id": 7, "TimeCreated": "/Date(0)/"}, {"Id": 8, ')
    assert [r.fields["EventID"] for r in records] == ["7"]
    assert records[0].timestamp == datetime(1970, 1, 1, tzinfo=UTC)


def test_script_in_values_is_kept_as_text(read_all) -> None:
    doc = (
        b'[{"Id": 1, "Message": "<script>alert(1)</script>", "Properties": [{"Value": {"a": 1}}]}]'
    )
    records, _ = read_all(doc)
    assert records[0].fields["Message"] == "<script>alert(1)</script>"
    assert records[0].fields["Data[0]"] == '{"a": 1}'


def test_many_bad_events_are_counted_not_all_named(read_all, problems) -> None:
    records, stats = read_all(b"[" + b",".join(b"%d" % i for i in range(20)) + b"]")
    assert records == []
    assert stats.bad_lines == 20
    assert "15 more unreadable lines skipped" in problems(stats)
    assert len(stats.problems) == 6
