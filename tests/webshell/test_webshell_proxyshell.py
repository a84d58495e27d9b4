"""ProxyShell, ProxyNotShell and OWASSRF trails in IIS, HttpProxy and Rps_Http logs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from exhunt.checks.proxyshell import autodiscover_attempt, written_page
from exhunt.hunt.engine import hunt
from exhunt.hunt.report import report_json
from exhunt.model import Finding, Severity, Stage, Verdict
from helpers.webshell_samples import EXCHANGE, Builder

# Shape of the NextronSystems/APTSimulator lab line toolset/hafnium-dummy.log (addresses from documentation ranges).
PS_OK = ("2021-08-23 09:13:18 10.0.0.1 POST /autodiscover/autodiscover.json "
         "@evil.example/powershell/?&Email=autodiscover/autodiscover.json%3F@evil.example"
         "&X-Rps-CAT=VgEAVAdXaW5kb3dz 443 - 198.51.100.60 Python+PSRP+Client - 200 0 0 55")
PS_FAIL = ("2021-08-10 11:00:00 10.0.0.1 GET /autodiscover/autodiscover.json "
           "@foo.example/mapi/nspi/?&Email=autodiscover/autodiscover.json%3F@foo.example "
           "443 - 203.0.113.61 Mozilla/5.0+zgrab/0.x - 401 0 0 5")
NESSUS = ("2021-08-11 12:00:00 10.0.0.1 GET /owa/ &Email=autodiscover/autodiscover.json%3F@"
          "test.com&ClientId=X 443 - 203.0.113.62 Mozilla/5.0 - 200 0 0 5")
PNS_OK = ("2022-09-29 08:00:00 10.0.0.1 POST /autodiscover/autodiscover.json "
          "a=b@x.example/powershell/?&Email=autodiscover/autodiscover.json%3Fa=b@x.example 443 "
          "CONTOSO\\jdoe 198.51.100.70 python-requests/2.28 - 200 0 0 80")
OWASSRF_OK = ("2022-12-01 10:00:00 10.0.0.1 POST /owa/mastermailbox%40outlook.com/powershell "
              "- 443 CONTOSO\\jdoe 198.51.100.80 python-requests/2.28 - 200 0 0 30")
ADMIN_GET = ("2021-08-12 12:00:00 10.0.0.1 GET /autodiscover/autodiscover.json "
             "Email=jdoe%40contoso.test&Protocol=ActiveSync 443 jdoe 192.0.2.50 Outlook - 200 0 0 5")


def checks(findings: list[Finding], check: str) -> list[Finding]:
    return [f for f in findings if f.check == check]


def test_proxyshell_success_and_failure_are_told_apart(server: Builder) -> None:
    report = hunt(str(server(iis=[PS_FAIL, NESSUS, PS_OK, ADMIN_GET])))
    found = {f.client_ip: f for f in checks(report.findings, "proxyshell.autodiscover")}
    assert set(found) == {"198.51.100.60", "203.0.113.61", "203.0.113.62"}
    assert found["198.51.100.60"].stage is Stage.EXPLOIT
    assert found["198.51.100.60"].severity is Severity.CRITICAL
    assert "CVE-2021-34473" in found["198.51.100.60"].cves
    assert found["203.0.113.61"].stage is Stage.PROBE
    assert found["203.0.113.62"].stage is Stage.PROBE  # a scanner's probe, though answered 200
    assert report.verdict is Verdict.EXPLOITED
    assert "proxyshell" in report_json(report)["waves"]


def test_only_failures_make_probed(server: Builder) -> None:
    assert hunt(str(server(iis=[PS_FAIL, ADMIN_GET]))).verdict is Verdict.PROBED


def test_proxynotshell_and_owassrf(server: Builder) -> None:
    report = hunt(str(server(iis=[PNS_OK, OWASSRF_OK])))
    pns = checks(report.findings, "proxyshell.autodiscover")
    assert pns and "CVE-2022-41040" in pns[0].cves and "ProxyNotShell" in pns[0].title
    owassrf = checks(report.findings, "proxyshell.owassrf")
    assert owassrf and owassrf[0].stage is Stage.EXPLOIT and owassrf[0].client_ip == "198.51.100.80"
    assert "proxynotshell" in report_json(report)["waves"]


RPS_FIELDS = ("DateTime,StartTime,RequestId,MajorVersion,MinorVersion,BuildVersion,RevisionVersion,"
              "ClientRequestId,UrlHost,UrlStem,AuthenticationType,IsAuthenticated,"
              "AuthenticatedUser,Organization,ManagedOrganization,ClientIpAddress,ServerHostName,"
              "FrontEndServer,HttpStatus,SubStatus,ErrorCode,Action,CommandId,CommandName,"
              "SessionId,ShellId,FailFast,ContributeToFailFast,RequestBytes,ClientInfo,CPU,Memory,"
              "ActivityContextLifeTime,TotalTime,UrlQuery,GenericLatency,GenericInfo,GenericErrors")


def rps_row(ip: str, status: str, info: str) -> str:
    values = {"DateTime": "2022-10-01T10:00:00.000Z", "ClientIpAddress": ip, "HttpStatus": status,
              "ClientInfo": info, "AuthenticatedUser": "CONTOSO\\jdoe", "UrlStem": "/powershell",
              "FrontEndServer": "EX01", "ServerHostName": "EX01"}
    return ",".join(values.get(name, "") for name in RPS_FIELDS.split(","))


def test_rps_http_logs_with_and_without_a_fields_line(server: Builder) -> None:
    rows = [rps_row("198.51.100.90", "200", "python-requests/2.28"),
            rps_row("203.0.113.91", "500", "python-requests/2.28"),
            rps_row("10.0.0.5", "200", "Microsoft WinRM Client"),
            rps_row("10.0.0.6", "200", "Exchange BackEnd Probes")]
    with_header = ("#Software: Microsoft Exchange Server\r\n#Version: 15.01.2375.007\r\n"
                   f"#Log-type: Rps Http Logs\r\n#Fields: {RPS_FIELDS}\r\n" + "\r\n".join(rows))
    bare = "\r\n".join(rows[:1])
    http = f"{EXCHANGE}/Logging/CmdletInfra/Powershell-Proxy/Http"
    report = hunt(str(server({f"{http}/Rps_Http_2022100110-1.LOG": with_header,
                              f"{http}/Rps_Http_2022100111-1.LOG": bare})))
    found = checks(report.findings, "proxyshell.rps-http")
    by_ip = {f.client_ip: f for f in found}
    assert set(by_ip) == {"198.51.100.90", "203.0.113.91"}
    assert by_ip["198.51.100.90"].stage is Stage.EXPLOIT
    assert by_ip["203.0.113.91"].stage is Stage.PROBE


def test_written_page_examples() -> None:
    assert written_page("-Mailbox 'a' -FilePath '\\\\127.0.0.1\\c$\\inetpub\\wwwroot\\"
                        "aspnet_client\\x.aspx'") == (
        "\\\\127.0.0.1\\c$\\inetpub\\wwwroot\\aspnet_client\\x.aspx")
    assert written_page('-FilePath "\\\\fs01\\pst\\jdoe.pst" -Mailbox jdoe') is None
    assert written_page("-GenerateRequest -RequestFile 'C:\\Program Files\\Microsoft\\Exchange "
                        "Server\\V15\\FrontEnd\\HttpProxy\\owa\\auth\\s.aspx'.") is not None


@given(st.text(max_size=200))
def test_trail_matchers_never_raise(text: str) -> None:
    autodiscover_attempt(text.lower())
    written_page(text)


def test_an_attempt_with_its_target_spelled_in_escapes_is_still_found(server: Builder) -> None:
    # Outlook mobile's lookups are left unparsed by the prefilter (the marker with no back-end
    # target on the line); an attempt that writes its target in percent-escapes (%70 is "p")
    # must not be left with them.
    escaped = PS_OK.replace("/powershell/", "/%70owershell/").replace("&X-Rps-CAT", "&x")
    report = hunt(str(server(iis=[escaped, ADMIN_GET])))
    found = checks(report.findings, "proxyshell.autodiscover")
    assert [f.client_ip for f in found] == ["198.51.100.60"]
    assert found[0].stage is Stage.EXPLOIT
