"""wevtutil XML and Get-WinEvent JSON exports: the two events exhunt hunts for."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exhunt.lab.evtx_writer import EventSpec, write_evtx
from exhunt.model import RecordKind
from exhunt.readers.base import ReadStats
from exhunt.readers.events import parse_event_time, read_events, sniff_event_export

UM_TIME = datetime(2021, 3, 3, 6, 49, 53, 772000, tzinfo=UTC)
MGMT_TIME = datetime(2021, 3, 3, 6, 50, 2, 118000, tzinfo=UTC)
PARAMS_START = '-ExternalUrl \'http://f/<script language="JScript" runat="server">'


def _check_um_error(record) -> None:  # type: ignore[no-untyped-def]
    assert record.kind is RecordKind.EVENT
    assert record.timestamp == UM_TIME
    assert record.fields["Channel"] == "Application"
    assert record.fields["Provider"] == "MSExchange Unified Messaging"
    assert record.fields["Level"] == "2"
    assert record.fields["Computer"] == "EX01.contoso.local"
    assert record.fields["RecordID"] == "48211"
    assert "System.InvalidCastException" in record.fields["Message"]
    assert record.fields["Data[0]"] == "UMWorkerProcess"


def _check_set_oab(record, rendered: bool) -> None:  # type: ignore[no-untyped-def]
    assert record.timestamp == MGMT_TIME
    assert record.fields["Channel"] == "MSExchange Management"
    assert record.fields["Provider"] == "MSExchange CmdletLogs"
    assert record.fields["EventID"] == "1"
    assert record.fields["Level"] == "4"
    assert record.fields["Data[0]"] == "Set-OabVirtualDirectory"
    assert record.fields["Data[1]"].startswith(PARAMS_START)
    assert record.fields["Data[1]"].endswith("-Identity '982d48c8-8bfa-4b6b-b431-53fd7ea4e9b3'")
    if rendered:
        assert record.fields["Message"].startswith(
            "Cmdlet succeeded. Cmdlet Set-OabVirtualDirectory"
        )
    else:
        assert (
            record.fields["Message"] == record.fields["Data[0]"] + "\n" + record.fields["Data[1]"]
        )


def test_wevtutil_xml_without_root_element(events_data: Path, read_all) -> None:
    records, stats = read_all(events_data / "wevtutil-application.xml", "Application.xml")
    assert stats.problems == []
    assert [r.line for r in records] == [1, 2]
    _check_um_error(records[0])
    assert records[0].fields["EventID"] == "1000"  # the Qualifiers attribute is not part of it
    assert records[1].fields["Provider"] == "MSExchangeTransport"
    assert records[1].fields["Data[1]"] == ""
    assert stats.records == 2
    assert stats.first == UM_TIME
    assert stats.meta["format"] == "xml"


def test_wevtutil_rendered_xml_utf16_with_events_root(events_data: Path, read_all) -> None:
    records, stats = read_all(events_data / "wevtutil-management-rendered.xml")
    assert stats.problems == []
    assert len(records) == 1
    _check_set_oab(records[0], rendered=True)
    # RenderingInfo has its own <Level>/<Channel>; the System ones must win.
    assert records[0].fields["Channel"] == "MSExchange Management"


@pytest.mark.parametrize("name", ["getwinevent-ps51.json", "getwinevent-ps7.json"])
def test_get_winevent_json_arrays(events_data: Path, read_all, name: str) -> None:
    records, stats = read_all(events_data / name)
    assert stats.problems == []
    assert len(records) == 2
    _check_um_error(records[0])
    _check_set_oab(records[1], rendered=True)


def test_get_winevent_json_single_object_with_utf8_bom(events_data: Path, read_all) -> None:
    records, stats = read_all(events_data / "getwinevent-ps7-single.json")
    assert stats.problems == []
    assert len(records) == 1
    _check_set_oab(records[0], rendered=True)


def test_same_event_reads_the_same_from_every_form(events_data: Path, read_all, tmp_path) -> None:
    evtx_path = tmp_path / "MSExchange Management.evtx"
    params = read_all(events_data / "getwinevent-ps7.json")[0][1].fields["Data[1]"]
    write_evtx(
        evtx_path,
        [
            EventSpec(
                "MSExchange Management",
                "MSExchange CmdletLogs",
                1,
                4,
                MGMT_TIME,
                "EX01.contoso.local",
                ["Set-OabVirtualDirectory", params],
                record_id=1207,
            )
        ],
    )
    forms = {
        "evtx": read_all(evtx_path)[0][0],
        "xml": read_all(events_data / "wevtutil-management-rendered.xml")[0][0],
        "ps51": read_all(events_data / "getwinevent-ps51.json")[0][1],
        "ps7": read_all(events_data / "getwinevent-ps7.json")[0][1],
    }
    keys = ["Channel", "Provider", "EventID", "Level", "Computer", "RecordID", "Data[0]", "Data[1]"]
    expected = {k: forms["evtx"].fields[k] for k in keys}
    for name, record in forms.items():
        assert {k: record.fields[k] for k in keys} == expected, name
        assert record.timestamp == MGMT_TIME, name
    _check_set_oab(forms["evtx"], rendered=False)


def test_sniffing_by_content_not_extension(events_data: Path) -> None:
    def head(name: str) -> bytes:
        return (events_data / name).read_bytes()[:4096]

    assert sniff_event_export(head("wevtutil-application.xml")) == "xml"
    assert sniff_event_export(head("wevtutil-management-rendered.xml")) == "xml"
    assert sniff_event_export(head("getwinevent-ps51.json")) == "json"
    assert sniff_event_export(head("getwinevent-ps7-single.json")) == "json"
    assert sniff_event_export(b"ElfFile\x00" + bytes(100)) == "evtx"
    assert sniff_event_export("[{}]".encode("utf-16-le")) == "json"  # UTF-16 without BOM
    assert sniff_event_export(b"#Software: Microsoft Internet Information Services") is None
    assert sniff_event_export(b"") is None


def test_evtx_from_zip_member_without_local_path(tmp_path: Path) -> None:
    evtx_path = tmp_path / "Application.evtx"
    write_evtx(
        evtx_path,
        (EventSpec("Application", "P", i, 4, UM_TIME, "EX01", [str(i)]) for i in range(500)),
    )
    archive = tmp_path / "triage.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(evtx_path, "C/Windows/System32/winevt/Logs/Application.evtx")
        zf.write(evtx_path, "copy.json.txt")  # the name says JSON; the content says EVTX
    with zipfile.ZipFile(archive) as zf:
        for member in zf.namelist():
            stats = ReadStats(member)
            with zf.open(member) as handle:
                records = list(read_events(handle, member, stats))
            assert stats.problems == []
            assert [r.fields["Data[0]"] for r in records] == [str(i) for i in range(500)]
            assert records[0].artifact == member


def test_json_from_non_seekable_stream(events_data: Path) -> None:
    class OneWay(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
            chunk = self._data.read(min(len(buffer), 7))  # short reads, too
            buffer[: len(chunk)] = chunk
            return len(chunk)

    stats = ReadStats("pipe")
    raw = (events_data / "getwinevent-ps51.json").read_bytes()
    records = list(read_events(io.BufferedReader(OneWay(raw), 16), "pipe", stats))
    assert len(records) == 2
    _check_um_error(records[0])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-03-03T06:49:53.7720000Z", datetime(2021, 3, 3, 6, 49, 53, 772000, tzinfo=UTC)),
        ("2021-03-03T07:49:53.772+01:00", datetime(2021, 3, 3, 6, 49, 53, 772000, tzinfo=UTC)),
        ("2021-03-02T22:49:53-08:00", datetime(2021, 3, 3, 6, 49, 53, tzinfo=UTC)),
        ("/Date(1614754193772)/", datetime(2021, 3, 3, 6, 49, 53, 772000, tzinfo=UTC)),
        ("2021-03-03 06:49:53", datetime(2021, 3, 3, 6, 49, 53, tzinfo=UTC)),
        ("2021-02-30T00:00:00Z", None),
        ("yesterday", None),
        ("/Date(99999999999999999999)/", None),
    ],
)
def test_event_times(text: str, expected: datetime | None) -> None:
    assert parse_event_time(text) == expected
