"""The verdict ladder's rules (docs/verdict-ladder.md): what post-exploitation may claim."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from exhunt.checks.sigma import member_label
from exhunt.hunt.engine import hunt
from exhunt.hunt.report import report_json, report_text
from exhunt.hunt.verdict import decide
from exhunt.lab.event_layouts import member_added, task_created
from exhunt.lab.evtx_writer import write_evtx
from exhunt.model import Finding, HuntReport, Severity, Stage, Verdict

T0 = datetime(2021, 3, 3, 2, 0, tzinfo=UTC)


def finding(check: str, stage: Stage, severity: Severity, when: datetime | None,
            evidence: str = "", *, context: bool = False, artifact: str = "x.log",
            line: int | None = 1, shell: str | None = None) -> Finding:
    return Finding(check, check, severity, stage, (), when, artifact, line, evidence,
                   webshell_path=shell, context=context)


def judged(*findings: Finding) -> HuntReport:
    report = HuntReport(source="copy", findings=list(findings))
    decide(report)
    return report


EXPLOIT = finding("proxylogon.ssrf", Stage.EXPLOIT, Severity.CRITICAL, T0)


def test_scheduled_task_only_copy_without_exchange_claims_no_stage(tmp_path: Path) -> None:
    logs = tmp_path / "copy/C/Windows/System32/winevt/Logs"
    logs.mkdir(parents=True)
    write_evtx(logs / "Security.evtx", [task_created(
        T0, "\\Updater", "cmd.exe", "/c powershell -ep bypass C:\\Users\\Public\\u.ps1")])
    report = hunt(str(tmp_path / "copy"))
    assert not report.exchange_found
    assert report.verdict is Verdict.CLEAN and report.first_exploitation is None
    assert [f.check for f in report.host_activity] == ["postexploit.scheduled-task"]
    data = report_json(report)
    assert data["host_activity"]["severity"] == "medium"
    text = report_text(report)
    assert "HOST ACTIVITY: MEDIUM" in text and "No sign of compromise" not in text
    assert data["next_steps"][0].startswith("Investigate the host activity")
    assert text.index("HOST ACTIVITY") < text.index("Coverage")  # shown under the verdict


def test_post_exploitation_in_the_exploitation_window_reenters() -> None:
    dump = finding("postexploit.lsass-dump", Stage.POST_EXPLOITATION, Severity.HIGH,
                   T0 + timedelta(days=2))
    report = judged(EXPLOIT, dump)
    assert report.verdict is Verdict.REENTERED and not report.host_activity
    assert report.first_exploitation == T0
    assert "within the window" in report.findings[1].evidence


def test_post_exploitation_never_sets_first_exploitation() -> None:
    early = finding("postexploit.command", Stage.POST_EXPLOITATION, Severity.HIGH,
                    T0 - timedelta(days=90))
    report = judged(EXPLOIT, early)
    assert report.first_exploitation == T0
    # Three months before the break-in, nothing ties it to the compromise.
    assert report.verdict is Verdict.EXPLOITED and report.host_activity == [early]


def test_same_shell_and_same_worker_tie_outside_the_window() -> None:
    shell = finding("webshell.file", Stage.BACKDOOR, Severity.HIGH, T0,
                    artifact="C/inetpub/wwwroot/aspnet_client/xyz.aspx", line=None)
    late = T0 + timedelta(days=200)
    hide = finding("postexploit.command", Stage.POST_EXPLOITATION, Severity.HIGH, late,
                   "attrib +h +s +r C:\\inetpub\\wwwroot\\aspnet_client\\XYZ.aspx")
    report = judged(shell, hide)
    assert report.verdict is Verdict.REENTERED and "the same shell (xyz.aspx)" in \
        report.findings[1].evidence
    spawn = finding("postexploit.web-spawned-process", Stage.POST_EXPLOITATION, Severity.HIGH,
                    late, "w3wp.exe started cmd.exe: cmd /c whoami")
    report = judged(EXPLOIT, spawn)
    assert report.verdict is Verdict.REENTERED
    assert "Exchange worker process" in report.findings[1].evidence


def test_post_exploitation_alone_is_host_activity_not_a_stage() -> None:
    dump = finding("postexploit.lsass-dump", Stage.POST_EXPLOITATION, Severity.HIGH, T0)
    probe = finding("proxylogon.probe", Stage.PROBE, Severity.LOW, T0)
    report = judged(probe, dump)
    assert report.verdict is Verdict.PROBED and report.first_exploitation is None
    assert report.host_activity == [dump]


def test_context_rises_to_high_when_the_hunt_proves_compromise() -> None:
    admin = finding("postexploit.new-admin", Stage.POST_EXPLOITATION, Severity.INFO,
                    T0 + timedelta(hours=1), context=True)
    vendor = finding("postexploit.staged-archive", Stage.POST_EXPLOITATION, Severity.INFO,
                     T0 + timedelta(hours=1))
    clean = judged(admin)
    assert clean.findings[0].severity is Severity.INFO and clean.verdict is Verdict.CLEAN
    owned = judged(EXPLOIT, admin, vendor)
    raised = owned.findings[1]
    assert raised.severity is Severity.HIGH and "raised to high" in raised.evidence
    assert owned.findings[2].severity is Severity.INFO  # not context: stays as it was
    assert owned.verdict is Verdict.REENTERED
    # Raised context a week later: high, reported, but no re-entry claimed on time alone.
    later = finding("postexploit.new-admin", Stage.POST_EXPLOITATION, Severity.INFO,
                    T0 + timedelta(days=7), context=True)
    week = judged(EXPLOIT, later)
    assert week.verdict is Verdict.EXPLOITED
    assert [f.severity for f in week.host_activity] == [Severity.HIGH]
    # A high finding of the host's own (a dump seen by Sysmon) also proves it, but without
    # Exchange evidence both stay host activity.
    dump = finding("postexploit.lsass-dump", Stage.POST_EXPLOITATION, Severity.HIGH, T0)
    host = judged(admin, dump)
    assert host.verdict is Verdict.CLEAN
    assert [f.severity for f in host.host_activity] == [Severity.HIGH, Severity.HIGH]


def test_member_named_by_sid_and_name() -> None:
    assert member_label("-", "S-1-5-20") == "NETWORK SERVICE (S-1-5-20)"
    assert member_label("", "S-1-5-21-1004336348-1177238915-682003330-501") == \
        "Guest (built-in) (S-1-5-21-1004336348-1177238915-682003330-501)"
    assert member_label("CN=eve,CN=Users,DC=corp", "S-1-5-21-1-2-3-1107") == \
        "CN=eve,CN=Users,DC=corp (S-1-5-21-1-2-3-1107)"
    assert member_label("-", "-") == "?"


def test_member_sid_reaches_the_report(tmp_path: Path) -> None:
    logs = tmp_path / "copy/C/Windows/System32/winevt/Logs"
    logs.mkdir(parents=True)
    write_evtx(logs / "Security.evtx", [member_added(T0, "S-1-5-20")])
    report = hunt(str(tmp_path / "copy"))
    admin = [f for f in report.findings if f.check == "postexploit.new-admin"]
    assert admin and "member: NETWORK SERVICE (S-1-5-20)" in admin[0].evidence
    assert "TargetUserName: Administrators" in admin[0].evidence
    # No administrator does this: high on its own, reported as host activity (no Exchange).
    assert admin[0].severity is Severity.HIGH and report.host_activity == admin
    assert report.verdict is Verdict.CLEAN


def test_an_ordinary_member_added_stays_context(tmp_path: Path) -> None:
    logs = tmp_path / "copy/C/Windows/System32/winevt/Logs"
    logs.mkdir(parents=True)
    write_evtx(logs / "Security.evtx", [member_added(T0, "S-1-5-21-1-2-3-1107",
                                                     "CN=helpdesk2,CN=Users,DC=corp")])
    report = hunt(str(tmp_path / "copy"))
    admin = [f for f in report.findings if f.check == "postexploit.new-admin"]
    assert [f.severity for f in admin] == [Severity.INFO] and admin[0].context


def test_context_on_a_clean_server_is_shown_not_piled_up() -> None:
    tasks = [finding("postexploit.scheduled-task", Stage.POST_EXPLOITATION, Severity.INFO,
                     T0 + timedelta(minutes=i), context=True) for i in range(50)]
    clean = judged(*tasks)
    assert len(clean.findings) == 20 and "30 more like this" in clean.findings[-1].evidence
    owned = judged(EXPLOIT, *tasks)
    assert len([f for f in owned.findings if f.severity is Severity.HIGH]) == 50  # all raised
    old = [finding("postexploit.scheduled-task", Stage.POST_EXPLOITATION, Severity.INFO,
                   T0 - timedelta(days=400 + i), context=True) for i in range(3)]
    routine = judged(EXPLOIT, *old)
    assert [f.severity for f in routine.findings[1:]] == [Severity.INFO] * 3  # a year before


def test_each_tie_alone() -> None:
    """Window, shell, worker process and account: each ties on its own, and a post-
    exploitation finding none of them holds stays host activity."""
    late = T0 + timedelta(days=200)
    broke_in = finding("proxyshell.autodiscover", Stage.EXPLOIT, Severity.CRITICAL, T0)
    broke_in = replace(broke_in, account="eve@corp.example")
    shell = finding("webshell.file", Stage.BACKDOOR, Severity.HIGH, T0,
                    artifact="C/inetpub/wwwroot/aspnet_client/xyz.aspx", line=None)

    def tie(*evidence: Finding, post: Finding) -> str:
        report = judged(*evidence, post)
        if report.verdict is not Verdict.REENTERED:
            assert report.host_activity == [post]
            return ""
        return report.findings[-1].evidence.rsplit("[tied to the Exchange compromise: ", 1)[1]

    untied = finding("postexploit.lsass-dump-file", Stage.POST_EXPLOITATION, Severity.HIGH, late,
                     "TargetFilename: C:\\Windows\\Temp\\lsass.dmp")
    assert tie(broke_in, shell, post=untied) == ""
    assert tie(broke_in, post=replace(untied, timestamp=T0 + timedelta(hours=2))).startswith(
        "within the window")
    assert tie(broke_in, shell, post=replace(
        untied, evidence="CommandLine: attrib +h +s +r C:\\inetpub\\wwwroot\\aspnet_client\\"
                         "XYZ.aspx")).startswith("the same shell (xyz.aspx)")
    assert tie(broke_in, post=replace(untied, evidence="ParentImage: C:\\Windows\\System32\\"
                                      "inetsrv\\w3wp.exe")).startswith("an Exchange worker")
    assert tie(broke_in, post=replace(untied, account="CORP\\eve")).startswith(
        "the same account (CORP\\eve)")
    # Windows' own principals and machine accounts act everywhere: they tie nothing.
    system = replace(broke_in, account="NT AUTHORITY\\SYSTEM")
    assert tie(system, post=replace(untied, account="NT AUTHORITY\\SYSTEM")) == ""
    assert tie(replace(broke_in, account="CORP\\EX01$"), post=replace(
        untied, account="CORP\\EX01$")) == ""
    # Another account is no tie.
    assert tie(broke_in, post=replace(untied, account="CORP\\mallory")) == ""


def test_findings_carry_the_account_the_event_names(tmp_path: Path) -> None:
    logs = tmp_path / "copy/C/Windows/System32/winevt/Logs"
    logs.mkdir(parents=True)
    write_evtx(logs / "Security.evtx", [member_added(T0, "S-1-5-20")])
    from exhunt.lab.event_layouts import sysmon_process_access
    write_evtx(logs / "Sysmon.evtx", [sysmon_process_access(
        T0, "C:\\Users\\eve\\x.exe", "C:\\Windows\\System32\\lsass.exe", "0x1010")])
    report = hunt(str(tmp_path / "copy"))
    accounts = {f.check: f.account for f in report.findings}
    assert accounts["postexploit.new-admin"] == "CORP\\EX01$"  # the subject of 4732
    assert accounts["postexploit.lsass-access"] == "NT AUTHORITY\\SYSTEM"  # Sysmon's SourceUser
    assert report_json(report)["findings"][0]["account"] is not None
    assert "by NT AUTHORITY\\SYSTEM" in report_text(report)
    from exhunt.hunt.report import report_html
    assert "<br>by CORP\\EX01$" in report_html(report)


def test_web_requests_name_their_account() -> None:
    from exhunt.checks.base import account_of
    from exhunt.model import LogRecord, RecordKind

    def log(**fields: str) -> LogRecord:
        return LogRecord(RecordKind.IIS, "u_ex210303.log", 7, T0, fields)

    assert account_of(log(**{"cs-username": "CORP\\eve", "c-ip": "192.0.2.9"})) == "CORP\\eve"
    assert account_of(log(AuthenticatedUser="eve@corp.example")) == "eve@corp.example"
    assert account_of(log(**{"cs-username": "-"})) is None
    assert len(account_of(log(**{"cs-username": "x" * 100_000})) or "") == 256
