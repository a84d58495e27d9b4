"""EventSpec -> write_evtx -> read back with exhunt's reader (Rust evtx) and python-evtx."""

from __future__ import annotations

import struct
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from evtx import PyEvtxParser

from exhunt.lab.evtx_writer import CHUNK_SIZE, FILE_HEADER_SIZE, EventSpec, write_evtx

T0 = datetime(2021, 3, 3, 6, 49, 53, 772000, tzinfo=UTC)
TRICKY = [
    "<script>alert(1)</script>&\"'",
    "",
    "Grüße aus Zürich — 日本語 ✓",
    "emoji 😀 outside the BMP",
    "line one\r\nline two\ttabbed",
    "  leading and trailing spaces  ",
]


def _specs() -> list[EventSpec]:
    specs = [
        EventSpec(
            "Application",
            "MSExchange Unified Messaging",
            1000,
            2,
            T0,
            "EX01.contoso.local",
            ["UMWorkerProcess", "System.InvalidCastException: cast failed", *TRICKY],
        ),
        EventSpec(
            "MSExchange Management",
            "MSExchange CmdletLogs",
            1,
            4,
            T0 + timedelta(seconds=9, microseconds=123456),
            "EX01",
            ["Set-OabVirtualDirectory", "-ExternalUrl 'http://f/<script>' -Identity 'x'"],
        ),
        EventSpec(
            "Security",
            "Microsoft-Windows-Security-Auditing",
            4688,
            4,
            T0 + timedelta(minutes=1),
            "EX01",
            {"NewProcessName": "C:\\Windows\\System32\\cmd.exe", "CommandLine": "<&>\"'"},
        ),
        EventSpec("Application", "Empty Data", 0, 0, T0, "", []),
        # A value close to the chunk's capacity (UTF-16: two bytes a character).
        EventSpec("Application", "Long", 2, 3, T0, "EX01", ["A" * 31_000]),
        EventSpec("Application", "After long", 3, 1, T0, "EX01", ["tail"], record_id=5000),
        EventSpec("Application", "Next id", 4, 4, T0, "EX01", ["x"]),
    ]
    return specs


def _spec_data(spec: EventSpec) -> list[str]:
    return list(spec.data.values()) if isinstance(spec.data, dict) else list(spec.data)


def test_writer_round_trips_through_exhunt_reader(tmp_path: Path, read_all) -> None:
    path = tmp_path / "Application.evtx"
    specs = _specs()
    assert write_evtx(path, specs) == len(specs)

    records, stats = read_all(path, "Application.evtx")

    assert stats.problems == []
    assert len(records) == len(specs)
    for spec, record in zip(specs, records, strict=True):
        assert record.fields["Channel"] == spec.channel
        assert record.fields["Provider"] == spec.provider
        assert record.fields["EventID"] == str(spec.event_id)
        assert record.fields["Level"] == str(spec.level)
        assert record.fields["Computer"] == spec.computer
        assert record.timestamp == spec.time_created
        values = _spec_data(spec)
        assert [record.fields[f"Data[{i}]"] for i in range(len(values))] == values
        assert f"Data[{len(values)}]" not in record.fields
        assert record.fields["Message"] == "\n".join(values)
    named = records[2]
    assert named.fields["Data.CommandLine"] == "<&>\"'"
    # Record ids: assigned in order, an explicit one is kept and the count goes on from it.
    assert [r.fields["RecordID"] for r in records] == ["1", "2", "3", "4", "5", "5000", "5001"]
    assert stats.first == T0
    assert stats.last == T0 + timedelta(minutes=1)


def _python_evtx_events(path: Path) -> Iterator[tuple[int, ET.Element]]:
    from Evtx.Evtx import Evtx

    with Evtx(str(path)) as log:
        for record in log.records():
            yield record.record_num(), ET.fromstring(record.xml())


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _shaped(i: int, values: list[str]) -> list[str] | dict[str, str]:
    """Three template shapes mixed in each chunk: unnamed, named, and fewer values."""
    if i % 3 == 1:
        return {f"Field{n}": v for n, v in enumerate(values)}
    if i % 3 == 2:
        return values[:2]
    return values


def test_writer_output_reads_in_python_evtx(tmp_path: Path) -> None:
    path = tmp_path / "many.evtx"
    # python-evtx renders attribute values unescaped and drops astral characters, so this
    # test keeps quotes out of attributes and characters inside the BMP.
    values = ["<script>&\"'", "", "Grüße — 日本語", "x" * 900]
    specs = [
        EventSpec(
            "MSExchange Management",
            "MSExchange CmdletLogs",
            i % 7,
            1 + i % 4,
            T0 + timedelta(seconds=i, microseconds=1000 * i),
            f"EX{i % 3}",
            _shaped(i, [f"Set-OabVirtualDirectory {i}", *values]),
        )
        for i in range(150)
    ]
    write_evtx(path, specs)
    assert (path.stat().st_size - FILE_HEADER_SIZE) // CHUNK_SIZE >= 3  # several chunks

    seen = list(_python_evtx_events(path))
    assert [num for num, _ in seen] == list(range(1, 151))
    for spec, (_, event) in zip(specs, seen, strict=True):
        system_element = event.find("{*}System")
        assert system_element is not None
        system = {_local(e.tag): e for e in system_element}
        assert system["Provider"].get("Name") == spec.provider
        assert system["EventID"].text == str(spec.event_id)
        assert system["Level"].text == str(spec.level)
        assert system["Channel"].text == spec.channel
        assert system["Computer"].text == spec.computer
        shown = datetime.fromisoformat(system["TimeCreated"].get("SystemTime", ""))
        # python-evtx converts FILETIME through a float: allow its rounding, no more.
        assert abs(shown - spec.time_created) < timedelta(microseconds=5)
        event_data = event.find("{*}EventData")
        assert event_data is not None
        data = [d.text or "" for d in event_data]
        assert data == _spec_data(spec)
        if isinstance(spec.data, dict):
            assert [d.get("Name") for d in event_data] == list(spec.data)


def test_written_checksums_are_valid_for_both_parsers(tmp_path: Path) -> None:
    from Evtx.Evtx import Evtx

    path = tmp_path / "crc.evtx"
    specs = (
        EventSpec("Application", "P", i % 100, 4, T0, "EX01", [f"value {i}", "y" * (i % 500)])
        for i in range(3000)
    )
    write_evtx(path, specs)
    strict = PyEvtxParser(str(path), validate_checksums=True)
    assert sum(1 for _ in strict.records_json()) == 3000
    with Evtx(str(path)) as log:
        assert log.get_file_header().verify()
        chunks = list(log.chunks())
        assert len(chunks) > 5
        assert all(chunk.verify() for chunk in chunks)
    head = path.read_bytes()[:FILE_HEADER_SIZE]
    assert head.startswith(b"ElfFile\x00")
    (chunk_count,) = struct.unpack_from("<H", head, 42)
    assert chunk_count == len(chunks)


def test_writer_streams_in_constant_memory(tmp_path: Path) -> None:
    def many(n: int) -> Iterator[EventSpec]:
        for i in range(n):
            yield EventSpec("Application", "P", 1, 4, T0, "EX01", [f"record {i}", "z" * 200])

    tracemalloc.start()
    try:
        written = write_evtx(tmp_path / "big.evtx", many(20_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = (tmp_path / "big.evtx").stat().st_size
    assert written == 20_000
    assert size > 8_000_000
    # One chunk (64 KiB) and its bookkeeping, not the file.
    assert peak < 2_000_000


def test_writer_refuses_what_evtx_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        write_evtx(tmp_path / "a.evtx", [EventSpec("A", "P", 1, 4, T0, "C", ["x" * 32_700])])
    with pytest.raises(ValueError, match="16-bit"):
        write_evtx(tmp_path / "b.evtx", [EventSpec("A", "P", 70_000, 4, T0, "C")])
    with pytest.raises(ValueError, match="level"):
        write_evtx(tmp_path / "c.evtx", [EventSpec("A", "P", 1, 300, T0, "C")])


def test_naive_time_is_taken_as_utc(tmp_path: Path, read_all) -> None:
    path = tmp_path / "naive.evtx"
    write_evtx(path, [EventSpec("A", "P", 1, 4, datetime(2021, 3, 3, 6, 0), "C")])
    records, _ = read_all(path)
    assert records[0].timestamp == datetime(2021, 3, 3, 6, 0, tzinfo=UTC)


def test_a_bare_string_is_one_value(tmp_path: Path, read_all) -> None:
    path = tmp_path / "one.evtx"
    write_evtx(path, [EventSpec("A", "P", 1, 4, T0, "C", "Set-OabVirtualDirectory")])
    records, _ = read_all(path)
    assert records[0].fields["Data[0]"] == "Set-OabVirtualDirectory"
    assert "Data[1]" not in records[0].fields
