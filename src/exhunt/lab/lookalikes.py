"""Benign things every triage copy holds, including look-alikes a good hunter must not convict.

The false-positive traps come from what users reported against Test-ProxyLogon (reference (e)):
archives in ProgramData (#145, #311, #328), a legitimate OAB "Download failed" under
ClientAccess\\OAB (#386), an admin's Set-*VirtualDirectory with a normal https URL (#386),
plain GETs of /owa/auth/logon.aspx, OWA pages whose names are also on web-shell lists.
"""

from __future__ import annotations

import io
import random
import zipfile

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
)
from exhunt.lab.plan import (
    APPLICATION,
    MANAGEMENT,
    W3WP,
    Injection,
    Plan,
    Planted,
    iis_fe_line,
    process_event,
    proxy_line,
)
from exhunt.lab.traffic import ECP_SERVER, IIS_FE, OAB_GEN, Site, hp

FRONTEND_OWA_AUTH = catalog.EXCHANGE_ROOT + "FrontEnd\\HttpProxy\\owa\\auth\\"
INSTALL_MS = 1_577_836_800_000  # 2020-01-01: when the product files were laid down


def small_zip(members: dict[str, bytes], stamp: tuple[int, int, int, int, int, int]) -> bytes:
    """A real, deterministic zip archive (fixed member times)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=stamp), data)
    return buf.getvalue()


def _page(title: str, body: str) -> bytes:
    """A short ASP.NET page of the product's kind; this module's own markup."""
    text = (
        '<%@ Page Language="C#" AutoEventWireup="false" Inherits="Microsoft.Exchange.Clients.Owa.'
        f'Core.{title.replace(" ", "")}Page" %>{CRLF}'
        f"<!DOCTYPE html>{CRLF}<html>{CRLF}<head>{CRLF}"
        f'<meta http-equiv="X-UA-Compatible" content="IE=10" />{CRLF}'
        f"<title>{title}</title>{CRLF}"
        '<link type="text/css" rel="stylesheet" href="<%=InlineCss(ThemeFileId.Logon)%>" />'
        f"{CRLF}</head>{CRLF}<body class=\"signInBg\">{CRLF}{body}{CRLF}</body>{CRLF}</html>{CRLF}"
    )
    return text.encode()


def product_files(site: Site) -> list[Planted]:
    icon = f"/owa/auth/{site.asset_version}/themes/resources/favicon.ico"
    pages = {
        "logon.aspx": _page("Outlook", f'<link rel="shortcut icon" href="{icon}" '
                            'type="image/x-icon">'
                            '<form action="/owa/auth.owa" method="POST" '
                            'name="logonForm"><input id="username" name="username" type="text"/>'
                            '<input id="password" name="password" type="password"/></form>'),
        "logoff.aspx": _page("Sign out", "<div>You have signed out of Outlook.</div>"),
        "errorFE.aspx": _page("Error", "<div>Something went wrong. <%=ErrorMessage%></div>"),
        "ExpiredPassword.aspx": _page("Change password", "<div>Your password has expired.</div>"),
        "TimeoutLogout.aspx": _page("Session timed out", "<div>Your session has timed out.</div>"),
        "RedirSuiteServiceProxy.aspx": _page("Redirecting", "<div><%=RedirectUrl%></div>"),
        "signout.aspx": _page("Signed out", "<div>You have been signed out.</div>"),
    }
    assert set(pages) == set(catalog.PRODUCT_OWA_AUTH_PAGES)
    out = [Planted(FRONTEND_OWA_AUTH + name, data, INSTALL_MS) for name, data in pages.items()]
    versioned = FRONTEND_OWA_AUTH + site.asset_version + "\\themes\\resources\\"
    out.append(Planted(versioned + "favicon.ico", b"\x00\x00\x01\x00\x01\x00\x10\x10",
                       INSTALL_MS))
    res = FRONTEND_OWA_AUTH + "Current\\themes\\resources\\"
    gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00" \
          b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    out += [
        Planted(res + "logon.css", b".signInBg{background-color:#fff}\r\n", INSTALL_MS),
        Planted(res + "owafont_ja.css", b"@font-face{font-family:'Segoe UI'}\r\n", INSTALL_MS),
        Planted(res + "lgnbotl.gif", gif, INSTALL_MS),
        Planted(catalog.EXCHANGE_ROOT + "FrontEnd\\HttpProxy\\ecp\\auth\\", None, INSTALL_MS),
        Planted(catalog.EXCHANGE_ROOT + "ClientAccess\\OAB\\Temp\\", None, INSTALL_MS),
        Planted(catalog.INETPUB + "wwwroot\\aspnet_client\\system_web\\4_0_30319\\", None,
                INSTALL_MS),
        Planted(catalog.INETPUB + "wwwroot\\iisstart.htm",
                b"<!DOCTYPE html>\r\n<html><head><title>IIS Windows Server</title></head>"
                b"<body><div id=\"container\">Internet Information Services</div></body>"
                b"</html>\r\n",
                INSTALL_MS),
        Planted("C:\\Windows\\Temp\\vminst.log",
                b"Installing VMware Tools components\r\nDone.\r\n", INSTALL_MS),
    ]
    return out


def archive_traps(rng: random.Random, start_ms: int) -> list[Planted]:
    """Vendor archives in ProgramData that Test-ProxyLogon users saw flagged on clean servers."""
    out = []
    for path in catalog.BENIGN_ARCHIVES:
        stamp_ms = start_ms - rng.randint(5, 200) * DAY_MS
        dt = from_ms(stamp_ms)
        stamp = (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second // 2 * 2)
        name = path.rsplit("\\", 1)[1].replace(".zip", "")
        members = {
            f"{name}.xml": f"<?xml version=\"1.0\"?><{name} version=\"{rng.randint(1, 9)}\"/>"
            .encode(),
            "manifest.txt": f"generated {dt.isoformat()}\r\n".encode(),
        }
        out.append(Planted(path, small_zip(members, stamp), stamp_ms))
    return out


def oab_generator_lines(site: Site, clock: Clock, rng: random.Random, start_ms: int,
                        days: int, plan: Plan) -> None:
    """OAB generation runs a few times a day; once, a legitimate temporary file is cleaned up.

    The line layout is plausible only (reference b3: no real line is public).
    """
    failure_cycle = rng.randrange(days * 3)
    oab = "\\Default Offline Address Book"
    for day in range(days):
        for cycle in range(3):
            t = start_ms + day * DAY_MS + (cycle * 8 + rng.randint(0, 2)) * HOUR_MS \
                + rng.randrange(HOUR_MS)
            thread = rng.randint(8, 90)
            msgs = [
                f"OABGeneratorAssistant: starting generation of OAB '{oab}'",
                f"Generating full OAB version 4 files for '{oab}' on server {site.host}",
                f"Finished generation of OAB '{oab}': {rng.randint(40, 4000)} entries written",
            ]
            if day * 3 + cycle == failure_cycle:
                tmp = (f"{catalog.EXCHANGE_ROOT}ClientAccess\\OAB\\Temp\\{guid(rng)}\\"
                       f"{guid(rng)}-data-{rng.randint(1, 9)}.lzx")
                msgs.insert(2, catalog.OAB_DOWNLOAD_FAILED.format(path=tmp))
                plan.mark(t + 2000, clock, "benign", "legitimate OAB temporary file cleanup",
                          "OABGeneratorLog")
            for i, msg in enumerate(msgs):
                line = (f"{clock.iso(t + i * 1000)},{thread},Information,OABGenerator,"
                        f"{csv_field(msg)}{CRLF}")
                plan.injections.append(Injection(t + i * 1000, OAB_GEN, line))


def admin_vdir_changes(site: Site, clock: Clock, rng: random.Random, start_ms: int, days: int,
                       plan: Plan) -> None:
    """The admin sets OWA and OAB external URLs to normal https addresses through ECP."""
    admin = site.admins[0]
    changes = (
        ("OWAVirtualDirectory", "Set-OwaVirtualDirectory", site.owa_vdir_guid,
         f"https://{site.mail_host}/owa"),
        ("OABVirtualDirectory", "Set-OabVirtualDirectory", site.oab_vdir_guid,
         f"https://{site.mail_host}/OAB"),
    )
    day = rng.randrange(max(1, days))
    t = start_ms + day * DAY_MS + rng.randint(9, 15) * HOUR_MS + rng.randrange(HOUR_MS)
    for schema, cmdlet, identity, url in changes:
        t += rng.randint(30_000, 300_000)
        canary = "".join(rng.choice("ABCDEFabcdef0123456789") for _ in range(76)) + "."
        query = f"?schema={schema}&msExchEcpCanary={canary}"
        rid = guid(rng)
        plan.injections.append(Injection(t, hp("Ecp"), proxy_line(site, clock, rng, t, 230, {
            "RequestId": rid, "Protocol": "Ecp", "UrlHost": site.fqdn.lower(),
            "UrlStem": "/ecp/DDI/DDIService.svc/SetObject", "AuthenticationType": "Cafe",
            "IsAuthenticated": "true", "AuthenticatedUser": admin.upn,
            "AnchorMailbox": f"Sid~{admin.sid}", "UserAgent": admin.browser_ua,
            "ClientIpAddress": site.admin_ip, "HttpStatus": "200", "BackEndStatus": "200",
            "Method": "POST", "ProxyAction": "Proxy", "TargetServer": site.fqdn,
            "TargetServerVersion": site.log_version, "RoutingType": "LocalSite",
            "RoutingHint": "EcpCookie-Hint", "UrlQuery": query,
        })))
        plan.injections.append(Injection(t, IIS_FE, iis_fe_line(
            site, clock, rng, t, "POST", "/ecp/DDI/DDIService.svc/SetObject", query, admin.upn,
            site.admin_ip, admin.browser_ua, 200, 240, req_id=rid)))
        cmd = ecp_cmd(cmdlet, [("ExternalUrl", url), ("Identity", identity)])
        items = [ecp_item("TIME", str(rng.randint(150, 900))), ecp_item("SID", guid(rng)),
                 ecp_item("CMD", cmd), "S:REQID=",
                 ecp_item("URL", "/ecp/DDI/DDIService.svc/SetObject" + query), "S:REFERRER=",
                 "S:EX=", f"S:ACTID={guid(rng)}", "S:RS=0", f"S:BLD={site.build}",
                 "S:TNAME=<null>", "S:TID=", f"S:USID={guid(rng)}", "S:EDOID=", "S:ACID="]
        line = f"{clock.iso(t + 5)},{site.host},ECP.Request,{csv_field(';'.join(items))}{CRLF}"
        plan.injections.append(Injection(t + 5, ECP_SERVER, line))
        plan.events.append(management_event(
            site, t, cmdlet, f'-ExternalUrl "{url}" -Identity "{identity}"', admin.login))
        plan.mark(t, clock, "benign", f"admin {cmdlet} with ExternalUrl {url}",
                  "ECP server log, HttpProxy Ecp, MSExchange Management")


def logon_page_visits(site: Site, clock: Clock, rng: random.Random, start_ms: int, days: int,
                      plan: Plan) -> None:
    """People opening the OWA sign-in page: plain GETs of /owa/auth/logon.aspx, every day."""
    for day in range(days):
        for _ in range(rng.randint(2, 4)):
            t = start_ms + day * DAY_MS + rng.randint(7, 18) * HOUR_MS + rng.randrange(HOUR_MS)
            who = rng.choice(site.people)
            ip = who.external_ip or who.internal_ip
            query = f"url=https%3a%2f%2f{site.mail_host}%2fowa%2f&reason=0"
            plan.injections.append(Injection(t, IIS_FE, iis_fe_line(
                site, clock, rng, t, "GET", "/owa/auth/logon.aspx", query, "", ip,
                who.browser_ua, 200, rng.randint(3, 40))))


def routine_processes(site: Site, rng: random.Random, start_ms: int, days: int,
                      plan: Plan) -> None:
    """Process creation on a healthy server, including IIS worker children that are normal:
    ASP.NET compiling pages (csc.exe under w3wp) and Exchange's own helpers."""
    net = "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\"
    for day in range(days):
        base = start_ms + day * DAY_MS
        for _ in range(rng.randint(2, 6)):
            t = base + rng.randrange(DAY_MS)
            parent_pid = rng.randint(1000, 9000)
            image, command, parent = rng.choice((
                (net + "csc.exe", f'"{net}csc.exe" /noconfig /fullpaths '
                 f'@"{net}Temporary ASP.NET Files\\owa\\{rng.getrandbits(32):08x}\\'
                 f'{rng.getrandbits(32):08x}.cmdline"', W3WP),
                ("C:\\Windows\\System32\\conhost.exe",
                 "\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1", net + "csc.exe"),
                (catalog.EXCHANGE_ROOT + "Bin\\MSExchangeHMWorker.exe",
                 f'"{catalog.EXCHANGE_ROOT}Bin\\MSExchangeHMWorker.exe" -wp:{parent_pid}',
                 catalog.EXCHANGE_ROOT + "Bin\\MSExchangeHMHost.exe"),
                ("C:\\Windows\\System32\\taskhostw.exe", "taskhostw.exe",
                 "C:\\Windows\\System32\\svchost.exe"),
            ))
            plan.events.append(process_event(site, t, image, command, parent,
                                             rng.randint(1000, 9000), parent_pid))


def management_event(site: Site, t: int, cmdlet: str, params: str, user: str) -> EventSpec:
    """MSExchange Management event 1 "Cmdlet succeeded" (reference b6: Data[0] cmdlet,
    Data[1] parameters; provider MSExchange CmdletLogs)."""
    return EventSpec(
        channel=MANAGEMENT, provider="MSExchange CmdletLogs", event_id=1, level=4,
        time_created=from_ms(t), computer=site.fqdn,
        data=[cmdlet, params, f"{site.ad_domain}/Users/{user}", "S-1-5-21", "Remote Powershell",
              "ExchangeManagementShell", "", "0"],
    )


def routine_events(site: Site, clock: Clock, rng: random.Random, start_ms: int, days: int,
                   plan: Plan) -> None:
    """Everyday Application and MSExchange Management events, including look-alikes: Unified
    Messaging errors without InvalidCastException, a mailbox export to a normal .pst share."""
    for day in range(days):
        base = start_ms + day * DAY_MS
        for _ in range(rng.randint(2, 5)):
            t = base + rng.randrange(DAY_MS)
            plan.events.append(EventSpec(
                channel=APPLICATION, provider="MSExchange ADAccess", event_id=2080, level=4,
                time_created=from_ms(t), computer=site.fqdn,
                data=["w3wp.exe", str(rng.randint(1000, 9000)),
                      f"Process w3wp.exe () (PID={rng.randint(1000, 9000)}). Exchange Active "
                      f"Directory Provider has discovered the following servers: "
                      f"DC01.{site.ad_domain} CDG 1 7 7 1 0 1 1 7 1"],
            ))
        if rng.random() < 0.3:
            t = base + rng.randrange(DAY_MS)
            plan.events.append(EventSpec(
                channel=APPLICATION, provider="MSExchange Unified Messaging", event_id=1400,
                level=2, time_created=from_ms(t), computer=site.fqdn,
                data=["The Unified Messaging service could not read its certificate: the "
                      "certificate has expired. Assign a valid certificate with "
                      "Enable-ExchangeCertificate."],
            ))
        admin = site.admins[day % len(site.admins)]
        for _ in range(rng.randint(0, 3)):
            t = base + rng.randint(8, 17) * HOUR_MS + rng.randrange(HOUR_MS)
            who = rng.choice(site.people)
            cmdlet, params = rng.choice((
                ("Get-Mailbox", f'-Identity "{who.upn}"'),
                ("Set-Mailbox", f'-Identity "{who.upn}" -ProhibitSendQuota "4.5 GB"'),
                ("Add-MailboxPermission", f'-Identity "{who.upn}" -User "{admin.upn}" '
                 '-AccessRights "FullAccess"'),
                ("Get-ExchangeServer", ""),
            ))
            plan.events.append(management_event(site, t, cmdlet, params, admin.login))
    routine_processes(site, rng, start_ms, days, plan)
    t = start_ms + rng.randrange(days * DAY_MS)
    who = rng.choice(site.people)
    plan.events.append(management_event(
        site, t, "New-MailboxExportRequest",
        f'-Mailbox "{who.upn}" -FilePath "\\\\FS01\\pst$\\{who.login}.pst"', site.admins[0].login))
    plan.mark(t, clock, "benign", "mailbox export to a .pst share",
              "MSExchange Management.evtx")


def benign_plan(site: Site, clock: Clock, rng: random.Random, start_ms: int, days: int) -> Plan:
    plan = Plan()
    plan.files += product_files(site)
    plan.files += archive_traps(rng, start_ms)
    oab_generator_lines(site, clock, rng, start_ms, days, plan)
    admin_vdir_changes(site, clock, rng, start_ms, days, plan)
    logon_page_visits(site, clock, rng, start_ms, days, plan)
    routine_events(site, clock, rng, start_ms, days, plan)
    plan.notes.append(
        "benign look-alikes present: ProgramData vendor archives "
        + ", ".join(p.rsplit("\\", 1)[1] for p in catalog.BENIGN_ARCHIVES)
        + "; OAB 'Download failed' under ClientAccess\\OAB; admin Set-OwaVirtualDirectory and "
        "Set-OabVirtualDirectory with https URLs; GETs of /owa/auth/logon.aspx; OWA auth pages "
        + ", ".join(catalog.PRODUCT_OWA_AUTH_PAGES)
        + "; UM service errors without InvalidCastException; a New-MailboxExportRequest to a .pst"
    )
    return plan
