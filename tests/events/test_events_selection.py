"""The EVTX reader skips events no check reads, and never one that a check reads."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from exhunt.checks.base import HuntContext
from exhunt.checks.sigma import SigmaEvents, load_sigma
from exhunt.cli import app
from exhunt.lab.evtx_writer import EventSpec, write_evtx
from exhunt.model import LogRecord
from exhunt.readers.base import ReadStats
from exhunt.readers.events import EventSelection, read_events

T = datetime(2021, 3, 4, 1, 0, tzinfo=UTC)
PROVIDERS = ["MSExchange CmdletLogs", "Sysmon", "tab\there", 'Odd "quoted" \\ provider', "Zürich-Dienst"]
CHANNELS = ["Security", "Application", "MSExchange Management", "Microsoft-Windows-Sysmon/Operational"]
NAMES = ["CommandLine", "TargetUserName", "ScriptBlockText", "Image"]
IDS = [1, 6, 11, 200, 2004, 4624, 4688, 4720]

events = st.builds(
    EventSpec,
    st.sampled_from(CHANNELS),
    st.sampled_from(PROVIDERS),
    st.sampled_from(IDS),
    st.integers(0, 4),
    st.integers(0, 10_000).map(lambda s: T + timedelta(seconds=s)),
    st.just("EX01"),
    st.one_of(st.lists(st.text(max_size=30), max_size=4),
              st.dictionaries(st.sampled_from(NAMES), st.text(max_size=30), max_size=3)),
)
selections = st.builds(
    EventSelection,
    st.frozensets(st.sampled_from([str(i) for i in IDS]), max_size=3),
    st.frozensets(st.sampled_from(PROVIDERS).map(str.upper), max_size=2),
    st.frozensets(st.sampled_from(CHANNELS).map(str.lower), max_size=2),
    st.frozensets(st.sampled_from(NAMES), max_size=2),
)


def _read(path: Path, select: EventSelection | None) -> tuple[list[LogRecord], ReadStats]:
    stats = ReadStats("t.evtx")
    with path.open("rb") as handle:
        return list(read_events(handle, "t.evtx", stats, local_path=path, select=select)), stats


def _selected(record: LogRecord, select: EventSelection) -> bool:
    names = {key[5:].lower() for key in record.fields if key.startswith("Data.")}
    return (record.get("EventID") in select.event_ids
            or record.get("Provider").lower() in {p.lower() for p in select.providers}
            or record.get("Channel").lower() in select.channels
            or bool(names & {n.lower() for n in select.data_names}))


@settings(max_examples=40, deadline=None)
@given(st.lists(events, min_size=1, max_size=40), selections)
def test_every_selected_event_is_read_as_without_a_selection(specs: list[EventSpec],
                                                             select: EventSelection) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.evtx"
        write_evtx(path, sorted(specs, key=lambda s: s.time_created))
        everything, all_stats = _read(path, None)
        chosen, stats = _read(path, select)
    want = [r for r in everything if _selected(r, select)]
    got = {r.line: r for r in chosen}
    for record in want:
        assert got.get(record.line) == record
    assert len(chosen) <= len(everything)
    # Skipped events are still counted as read, and still bound the log's time window.
    assert stats.records == all_stats.records == len(specs)
    assert (stats.first, stats.last) == (all_stats.first, all_stats.last)
    assert not stats.problems


def test_other_events_are_not_returned(tmp_path: Path) -> None:
    path = tmp_path / "t.evtx"
    write_evtx(path, [EventSpec("Security", "Auditing", 4624, 4, T, "EX01", {"Image": "x"}),
                      EventSpec("Security", "Auditing", 4720, 4, T, "EX01", {"Image": "y"})])
    chosen, stats = _read(path, EventSelection(event_ids=frozenset({"4720"})))
    assert [r.get("Data.Image") for r in chosen] == ["y"] and stats.records == 2


def test_sigma_rules_name_their_events_and_a_rule_without_one_reads_its_channel(
        tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "svc.yml").write_text("""title: Odd service state
logsource: {product: windows, service: system}
detection:
  sel: {param1|contains: 'evilsvc'}
  condition: sel
level: high
""")
    builtin = load_sigma((), builtin=True).events
    assert builtin is not None and {"4720", "7045", "4688"} <= builtin.event_ids
    assert "system" not in builtin.channels
    with_rule = SigmaEvents(HuntContext(sigma_dirs=(str(rules),))).events
    assert with_rule is not None and "system" in with_rule.channels
    # The hunt reads the System event that no built-in check asks for.
    folder = tmp_path / "copy/C/Windows/System32/winevt/Logs"
    folder.mkdir(parents=True)
    write_evtx(folder / "System.evtx", [
        EventSpec("System", "Service Control Manager", 7036, 4, T, "EX01",
                  {"param1": "evilsvc", "param2": "running"})])
    result = CliRunner().invoke(app, ["hunt", str(tmp_path / "copy"), "--sigma", str(rules),
                                      "--format", "json"])
    assert '"check": "sigma.svc"' in result.output
