"""Property tests: readers never raise on any bytes; generated events round-trip."""

from __future__ import annotations

import io
import json
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exhunt.lab.evtx_writer import EventSpec, write_evtx
from exhunt.readers.base import ReadStats
from exhunt.readers.events import read_events

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any text a Windows event can carry (UTF-16, so no lone surrogates).
any_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)
# XML 1.0 cannot carry most control characters, nor U+FFFE/U+FFFF.
xml_text = st.text(
    st.characters(
        blacklist_categories=["Cs"],
        blacklist_characters=[chr(c) for c in range(32) if c not in (9, 10, 13)]
        + ["\ufffe", "\uffff"],
    ),
    max_size=40,
)
name_text = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)
times = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))


def _read(data: bytes) -> tuple[list, ReadStats]:  # type: ignore[type-arg]
    stats = ReadStats("fuzz")
    records = list(read_events(io.BytesIO(data), "fuzz", stats))
    # The reader's last-resort catch names unexpected errors; bad input must not reach it.
    assert not any("event reader failed" in p.message for p in stats.problems), stats.problems
    return records, stats


@SETTINGS
@given(
    prefix=st.sampled_from(
        [
            b"",
            b"ElfFile\x00",
            b"<Event>",
            b"<?xml version='1.0'?>",
            b"[",
            b"[{",
            b"{",
            b"\xff\xfe",
            b"\xef\xbb\xbf[",
            '[{"Id":'.encode("utf-16-le"),
        ]
    ),
    body=st.binary(max_size=6000),
)
def test_any_bytes_never_raise(prefix: bytes, body: bytes) -> None:
    records, stats = _read(prefix + body)
    assert stats.records == len(records)
    if not records:
        assert stats.problems  # an input without events always says why


_VALID_EVTX: bytes | None = None


def _valid_evtx() -> bytes:
    global _VALID_EVTX
    if _VALID_EVTX is None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "v.evtx"
            specs = (
                EventSpec(
                    "Application", "P", i, 2, datetime(2021, 3, 3, tzinfo=UTC), "EX", [str(i)]
                )
                for i in range(300)
            )
            write_evtx(path, specs)
            _VALID_EVTX = path.read_bytes()
    return _VALID_EVTX


@SETTINGS
@given(
    st.lists(st.tuples(st.integers(0, 4096 + 3 * 65536), st.integers(0, 255)), max_size=30),
    st.integers(0, 4096 + 3 * 65536),
)
def test_damaged_evtx_never_raises(flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(_valid_evtx())
    for at, value in flips:
        if at < len(data):
            data[at] = value
    records, stats = _read(bytes(data[: max(cut, 8)]))
    assert stats.records == len(records)


@st.composite
def events(draw: st.DrawFn, text: st.SearchStrategy[str]) -> EventSpec:
    named = draw(st.booleans())
    if named:
        data: dict[str, str] | list[str] = draw(st.dictionaries(name_text, text, max_size=5))
    else:
        data = draw(st.lists(text, max_size=5))
    return EventSpec(
        channel=draw(text),
        provider=draw(text),
        event_id=draw(st.integers(0, 0xFFFF)),
        level=draw(st.integers(0, 5)),
        time_created=draw(times),
        computer=draw(text),
        data=data,
        record_id=None,
    )


def _values(spec: EventSpec) -> list[str]:
    return list(spec.data.values()) if isinstance(spec.data, dict) else list(spec.data)


def _check(spec: EventSpec, record, *, names: bool) -> None:  # type: ignore[no-untyped-def]
    assert record.fields["Channel"] == spec.channel
    assert record.fields["Provider"] == spec.provider
    assert record.fields["EventID"] == str(spec.event_id)
    assert record.fields["Level"] == str(spec.level)
    assert record.fields["Computer"] == spec.computer
    assert record.timestamp == spec.time_created
    values = _values(spec)
    assert [record.fields.get(f"Data[{i}]") for i in range(len(values) + 1)] == [*values, None]
    if names and isinstance(spec.data, dict):
        for name, value in spec.data.items():
            assert record.fields[f"Data.{name}"] == value


# The evtx parser ends a string at U+0000, as Windows writes strings NUL-terminated.
evtx_text = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(events(evtx_text), st.none() | st.integers(1, 2**20)), max_size=30))
def test_written_evtx_round_trips(drawn: list[tuple[EventSpec, int | None]]) -> None:
    specs, last = [], 0
    for spec, gap in drawn:  # explicit record ids must go up; None continues the count
        record_id = None if gap is None else last + gap
        specs.append(replace(spec, record_id=record_id))
        last = record_id if record_id is not None else last + 1
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "gen.evtx"
        assert write_evtx(path, specs) == len(specs)
        stats = ReadStats("gen.evtx")
        with path.open("rb") as handle:
            records = list(read_events(handle, "gen.evtx", stats, local_path=path))
    if specs:
        assert stats.problems == []
    assert len(records) == len(specs)
    for spec, record in zip(specs, records, strict=True):
        _check(spec, record, names=True)
    assert [int(r.fields["RecordID"]) for r in records] == sorted(
        {int(r.fields["RecordID"]) for r in records}
    )


def _xml_text(value: str) -> str:
    # A real exporter writes CR as a character reference: XML parsers turn a raw CR into LF.
    return escape(value).replace("\r", "&#13;")


def _wevtutil_xml(spec: EventSpec) -> str:
    if isinstance(spec.data, dict):
        data = "".join(f"<Data Name='{k}'>{_xml_text(v)}</Data>" for k, v in spec.data.items())
    else:
        data = "".join(f"<Data>{_xml_text(v)}</Data>" for v in spec.data)
    provider = quoteattr(spec.provider).replace("\r", "&#13;").replace("\n", "&#10;")
    provider = provider.replace("\t", "&#9;")
    when = spec.time_created.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
    return (
        "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
        f"<Provider Name={provider}/><EventID>{spec.event_id}</EventID>"
        f"<Level>{spec.level}</Level><TimeCreated SystemTime='{when}'/>"
        f"<EventRecordID>{spec.record_id or 1}</EventRecordID>"
        f"<Channel>{_xml_text(spec.channel)}</Channel>"
        f"<Computer>{_xml_text(spec.computer)}</Computer></System>"
        f"<EventData>{data}</EventData></Event>"
    )


@SETTINGS
@given(
    st.lists(events(xml_text.filter(lambda s: s == s.strip())), min_size=1, max_size=10),
    st.booleans(),
    st.sampled_from(["utf-8", "utf-16"]),
)
def test_xml_export_round_trips(specs: list[EventSpec], rooted: bool, encoding: str) -> None:
    body = "\r\n".join(_wevtutil_xml(s) for s in specs)
    doc = f"<Events>{body}</Events>" if rooted else body
    records, stats = _read(doc.encode(encoding))
    assert stats.problems == []
    assert len(records) == len(specs)
    for spec, record in zip(specs, records, strict=True):
        _check(spec, record, names=True)


def _ps_json(spec: EventSpec, ps51: bool) -> dict[str, object]:
    when = spec.time_created
    if ps51:
        millis = (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
        created: object = f"/Date({millis})/"
    else:
        created = when.astimezone().isoformat(timespec="milliseconds")
    return {
        "Id": spec.event_id,
        "Level": spec.level,
        "RecordId": spec.record_id,
        "ProviderName": spec.provider,
        "LogName": spec.channel,
        "MachineName": spec.computer,
        "TimeCreated": created,
        "Properties": [{"Value": v} for v in _values(spec)],
        "Message": None,
    }


@SETTINGS
@given(
    st.lists(events(any_text), min_size=1, max_size=10),
    st.booleans(),
    st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
)
def test_json_export_round_trips(specs: list[EventSpec], ps51: bool, encoding: str) -> None:
    objects = [_ps_json(s, ps51) for s in specs]
    doc = json.dumps(objects[0] if len(objects) == 1 else objects, indent=2)
    records, stats = _read(doc.encode(encoding))
    assert stats.problems == []
    assert len(records) == len(specs)
    for spec, record in zip(specs, records, strict=True):
        _check(spec, record, names=False)
        assert record.fields["Message"] == "\n".join(_values(spec))
