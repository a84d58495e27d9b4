"""Benign traffic of one Exchange server: who uses it, and pre-rendered request templates.

A template is one kind of request by one client, rendered once into every log line it leaves
(HttpProxy, IIS front end, IIS back end, ECP server log, Rps_Http) with `%s` holes for what
changes per request: times and the request id. The generator picks templates at random and
only fills the holes, which keeps millions of lines cheap.

Shapes follow reference b1/b2/b4/b5; values that no public sample shows (routing hints,
latencies, probe names) are plausible, not facts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from exhunt.lab import catalog
from exhunt.lab.formats import (
    CRLF,
    csv_field,
    ecp_item,
    exchange_log_version,
    exchange_ua,
    guid,
    httpproxy_row,
    iis_line,
    pct_escape,
    rps_http_row,
)

# Stream keys: where a line goes. HttpProxy streams are "hp/<Protocol>".
IIS_FE = "iis/W3SVC1"
IIS_BE = "iis/W3SVC2"
ECP_SERVER = "ecp"
RPS_HTTP = "rps"
OAB_GEN = "oab"


def hp(protocol: str) -> str:
    return f"hp/{protocol}"


# How a template's holes are filled.
ARGS_PROXY = 0  # (DateTime, RequestId, BeginRequest, BeginGetResponse, OnResponseReady,
#                  EndGetResponse, EndRequest)
ARGS_IIS = 1  # (date time, cafeReqId)
ARGS_RPS = 2  # (DateTime, StartTime, RequestId)
ARGS_ECP = 3  # (TimeStamp, ActivityId)
ARGS_IIS_PLAIN = 4  # (date time,): not an Exchange virtual directory, no cafeReqId

_EXCHANGE_VDIRS = frozenset({
    "owa", "ecp", "ews", "mapi", "oab", "autodiscover", "microsoft-server-activesync", "rpc",
    "powershell",
})


@dataclass(frozen=True, slots=True)
class Part:
    stream: str
    fmt: str
    args: int
    offsets: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Template:
    parts: tuple[Part, ...]
    weight: float
    size: int  # bytes of all its lines, roughly


@dataclass(frozen=True, slots=True)
class Person:
    login: str  # first.last
    upn: str
    sid: str
    mailbox_guid: str
    internal_ip: str
    external_ip: str | None
    browser_ua: str
    outlook_ua: str
    phone_ua: str | None
    device_id: str


@dataclass
class Site:
    """The organisation around the server: names, addresses, people. Built once per copy."""

    host: str
    build: str
    domain: str
    ad_domain: str
    netbios: str
    fqdn: str
    mail_host: str
    autodiscover_host: str
    server_ip: str
    admin_ip: str
    people: list[Person]
    admins: list[Person]
    health_mailboxes: list[str]
    oab_guid: str
    oab_vdir_guid: str
    owa_vdir_guid: str
    external_pool: list[str]
    domain_sid: str

    @property
    def exch_version(self) -> tuple[str, str, str, str]:
        p = self.build.split(".")
        p += ["0"] * (4 - len(p))
        return p[0], p[1], p[2], p[3]

    @property
    def asset_version(self) -> str:
        """'15.1.2176': the folder of OWA's static files (CSS-Exchange issue #107)."""
        return ".".join(self.build.split(".")[:3])

    @property
    def log_version(self) -> str:
        return exchange_log_version(self.build)


def doc_ips(rng: random.Random, count: int, exclude: set[str]) -> list[str]:
    """Distinct addresses from the IPv4 documentation ranges (RFC 5737) only."""
    prefixes = ("192.0.2.", "198.51.100.", "203.0.113.")
    out: list[str] = []
    seen = set(exclude)
    while len(out) < count:
        ip = rng.choice(prefixes) + str(rng.randint(1, 254))
        if ip not in seen:
            seen.add(ip)
            out.append(ip)
    return out


def build_site(rng: random.Random, host: str, build: str, n_people: int,
               reserved_ips: set[str]) -> Site:
    domain = rng.choice(catalog.ORG_DOMAINS)
    ad_domain = "corp." + domain
    net3 = f"10.{rng.randint(1, 250)}.{rng.randint(0, 250)}."
    server_ip = net3 + str(rng.randint(5, 30))
    domain_sid = f"S-1-5-21-{rng.randint(10**8, 4 * 10**9)}-{rng.randint(10**8, 4 * 10**9)}-" \
                 f"{rng.randint(10**8, 4 * 10**9)}"
    external_pool = doc_ips(rng, max(8, n_people // 3), reserved_ips)
    people: list[Person] = []
    used: set[str] = set()
    while len(people) < n_people:
        first = rng.choice(catalog.FIRST_NAMES)
        last = rng.choice(catalog.LAST_NAMES)
        login = f"{first}.{last}"
        if login in used:
            login = f"{login}{len(people)}"
        used.add(login)
        people.append(Person(
            login=login,
            upn=f"{login}@{domain}",
            sid=f"{domain_sid}-{1100 + len(people)}",
            mailbox_guid=guid(rng),
            internal_ip=f"10.{rng.randint(1, 250)}.{rng.randint(0, 250)}.{rng.randint(20, 250)}",
            external_ip=rng.choice(external_pool) if rng.random() < 0.5 else None,
            browser_ua=rng.choice(catalog.BROWSER_UAS),
            outlook_ua=rng.choice(catalog.OUTLOOK_UAS + catalog.MAC_OUTLOOK_UAS),
            phone_ua=rng.choice(catalog.EAS_UAS) if rng.random() < 0.7 else None,
            device_id=f"{rng.getrandbits(128):032X}",
        ))
    admins = people[:2]
    health = [f"HealthMailbox{rng.getrandbits(128):032x}@{ad_domain}" for _ in range(4)]
    return Site(
        host=host, build=build, domain=domain, ad_domain=ad_domain,
        netbios=ad_domain.split(".")[0].upper(), fqdn=f"{host}.{ad_domain}",
        mail_host=f"mail.{domain}", autodiscover_host=f"autodiscover.{domain}",
        server_ip=server_ip, admin_ip=net3 + str(rng.randint(100, 200)),
        people=people, admins=admins, health_mailboxes=health, oab_guid=guid(rng),
        oab_vdir_guid=guid(rng), owa_vdir_guid=guid(rng), external_pool=external_pool,
        domain_sid=domain_sid,
    )


@dataclass
class Req:
    """One request kind for one client, before rendering."""

    protocol: str | None
    method: str
    stem: str
    query: str = ""
    url_host: str = ""
    action: str = ""
    auth: str = ""
    user: str = ""
    anchor: str = ""
    ua: str = ""
    ip: str = ""
    status: int = 200
    routing_hint: str = ""
    routing_type: str = "LocalSite"
    iis_user: str = ""
    be: bool = True
    total_ms: int = 40
    req_bytes: int = 0
    resp_bytes: int = 0
    generic_errors: str = ""
    client_request_id: str = ""
    ecp_cmd: str | None = None
    rps_client: str | None = None


def _latencies(rng: random.Random, total: int) -> dict[str, str]:
    be = max(1, int(total * rng.uniform(0.55, 0.9)))
    overhead = max(1, total - be)
    return {
        "HttpPipelineLatency": str(rng.randint(0, 2)),
        "CalculateTargetBackEndLatency": str(rng.randint(0, 3)),
        "TotalGlsLatency": "0", "TotalAccountForestLatency": "0",
        "TotalResourceForestLatency": "0", "ADLatency": str(rng.randint(0, 2)),
        "TotalSharedCacheLatency": "0", "ActivityContextLifeTime": str(total),
        "ModuleToHandlerSwitchingLatency": "0", "ClientReqStreamLatency": str(rng.randint(0, 3)),
        "BackendReqInitLatency": str(rng.randint(0, 2)),
        "BackendReqStreamLatency": str(rng.randint(0, 2)),
        "BackendProcessingLatency": str(be), "BackendRespInitLatency": str(rng.randint(1, 6)),
        "BackendRespStreamLatency": str(rng.randint(0, 3)),
        "ClientRespStreamLatency": str(rng.randint(0, 4)),
        "HandlerCompletionLatency": str(rng.randint(0, 2)), "RequestHandlerLatency": str(total),
        "HandlerToModuleSwitchingLatency": "0", "ProxyTime": str(be + rng.randint(1, 9)),
        "CoreLatency": str(overhead), "RoutingLatency": str(rng.randint(0, 4)),
        "HttpProxyOverhead": str(overhead), "TotalRequestTime": str(total),
    }


GENERIC_INFO = (
    "BeginRequest=%s;CorrelationID=<empty>;ProxyState-Run=None;BeginGetResponse=%s;"
    "OnResponseReady=%s;EndGetResponse=%s;ProxyState-Complete=ProxyResponseData;EndRequest=%s"
)
_GI_MARK = "\x02GI\x02"


def _iis_template(
    s_ip: str, method: str, stem: str, hole_query: str, port: int, user: str, c_ip: str, ua: str,
    status: int, sub: int, win32: int, taken: int,
) -> str:
    """An IIS line with a hole for the time and the (already escaped) query put in."""
    line = iis_line("\x00", s_ip, method, stem, "\x01", port, user, c_ip, ua, "-", status, sub,
                    win32, taken)
    return pct_escape(line).replace("\x00", "%s").replace("\x01", hole_query) + CRLF


def render(site: Site, req: Req, rng: random.Random, weight: float) -> Template:
    """Render one request kind into its log-line formats."""
    parts: list[Part] = []
    major, minor, build, rev = site.exch_version
    total = max(2, req.total_ms)
    size = 0
    if req.protocol is not None:
        values = {
            "DateTime": "\x00", "RequestId": "\x00", "MajorVersion": major,
            "MinorVersion": minor, "BuildVersion": build, "RevisionVersion": rev,
            "ClientRequestId": req.client_request_id, "Protocol": req.protocol,
            "UrlHost": req.url_host or site.mail_host, "UrlStem": req.stem,
            "ProtocolAction": req.action, "AuthenticationType": req.auth,
            "IsAuthenticated": "true" if req.user else "false", "AuthenticatedUser": req.user,
            "AnchorMailbox": req.anchor, "UserAgent": exchange_ua(req.ua),
            "ClientIpAddress": req.ip, "ServerHostName": site.host,
            "HttpStatus": str(req.status),
            "BackEndStatus": str(req.status) if req.be else "",
            "Method": req.method, "ProxyAction": "Proxy" if req.be else "",
            "TargetServer": site.fqdn if req.be else "",
            "TargetServerVersion": site.log_version if req.be else "",
            "RoutingType": req.routing_type if req.be else "",
            "RoutingHint": req.routing_hint, "ServerLocatorHost": site.fqdn if req.be else "",
            "ServerLocatorLatency": str(rng.randint(0, 2)) if req.be else "",
            "RequestBytes": str(req.req_bytes), "ResponseBytes": str(req.resp_bytes),
            "TargetOutstandingRequests": str(rng.randint(0, 3)),
            "UrlQuery": req.query, "GenericErrors": req.generic_errors,
        }
        values.update(_latencies(rng, total))
        values["GenericInfo"] = _GI_MARK
        row = pct_escape(httpproxy_row(values))
        row = row.replace(_GI_MARK, GENERIC_INFO).replace("\x00", "%s") + CRLF
        begin = total
        bgr = max(1, total - int(total * 0.1) - 1)
        orr = rng.randint(1, max(1, total // 8))
        offsets = (begin, bgr, orr, orr, 0)
        parts.append(Part(hp(req.protocol), row, ARGS_PROXY, offsets))
        size += len(row) + 24 * 5 + 36
    iis_query = req.query.lstrip("?")
    exchange_vdir = req.stem.lower().split("/")[1] in _EXCHANGE_VDIRS
    if exchange_vdir:
        hole_query = pct_escape(iis_query + catalog.CAFE_SUFFIX) + "%s;"
        iis_args = ARGS_IIS
    else:
        hole_query = pct_escape(iis_query or "-")
        iis_args = ARGS_IIS_PLAIN
    iis_sub, iis_win = 0, 0
    if req.status == 401:
        iis_sub, iis_win = rng.choice(((1, 2148074254), (2, 5), (0, 0)))
    fe = _iis_template(
        site.server_ip, req.method, req.stem, hole_query, 443, req.iis_user, req.ip, req.ua,
        req.status, iis_sub, iis_win, total + rng.randint(0, 5),
    )
    parts.append(Part(IIS_FE, fe, iis_args))
    size += len(fe) + 50
    if req.be and req.protocol is not None and req.status < 400:
        be = _iis_template(
            site.server_ip, req.method, req.stem, hole_query, 444, req.iis_user, site.server_ip,
            req.ua, req.status, 0, 0, max(1, int(total * 0.8)),
        )
        parts.append(Part(IIS_BE, be, iis_args))
        size += len(be) + 50
    if req.ecp_cmd is not None:
        items = [
            ecp_item("TIME", str(total)), ecp_item("SID", guid(rng)),
            ecp_item("CMD", req.ecp_cmd), "S:REQID=", ecp_item("URL", req.stem + req.query),
            "S:REFERRER=", "S:EX=", "S:ACTID=\x00", "S:RS=0", f"S:BLD={site.build}",
            "S:TNAME=<null>", "S:TID=", f"S:USID={guid(rng)}", "S:EDOID=", "S:ACID=",
        ]
        data = pct_escape(csv_field(";".join(items))).replace("\x00", "%s")
        line = f"%s,{site.host},ECP.Request,{data}{CRLF}"
        parts.append(Part(ECP_SERVER, line, ARGS_ECP))
        size += len(line) + 60
    if req.rps_client is not None:
        rps = {
            "DateTime": "\x00", "StartTime": "\x00", "RequestId": "\x00",
            "MajorVersion": major, "MinorVersion": minor, "BuildVersion": build,
            "RevisionVersion": rev, "UrlHost": site.fqdn, "UrlStem": "/PowerShell",
            "AuthenticationType": "Kerberos", "IsAuthenticated": "true",
            "AuthenticatedUser": req.user, "ClientIpAddress": req.ip,
            "ServerHostName": site.host, "FrontEndServer": site.host,
            "HttpStatus": "200", "SubStatus": "0", "Action": "Command",
            "RequestBytes": str(req.req_bytes), "ClientInfo": req.rps_client,
            "CPU": str(rng.randint(0, 30)), "Memory": str(rng.randint(0, 900)),
            "ActivityContextLifeTime": str(total), "TotalTime": str(total),
            "UrlQuery": req.query,
        }
        rline = pct_escape(rps_http_row(rps)).replace("\x00", "%s") + CRLF
        parts.append(Part(RPS_HTTP, rline, ARGS_RPS, (total,)))
        size += len(rline) + 60
    return Template(tuple(parts), weight, size)


def _canary(rng: random.Random) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "".join(rng.choice(alphabet) for _ in range(76)) + "."


def _client_ip(rng: random.Random, person: Person) -> str:
    if person.external_ip is not None and rng.random() < 0.3:
        return person.external_ip
    return person.internal_ip


def _owa(site: Site, rng: random.Random, p: Person) -> list[tuple[Req, float]]:
    ip = _client_ip(rng, p)
    host = site.mail_host
    ua = p.browser_ua
    action = rng.choice(("FindItem", "GetItem", "GetConversationItems", "FindConversation",
                         "CreateItem", "UpdateItem", "GetUserAvailability",
                         "GetOwaUserConfiguration"))
    anchor = f"Sid~{p.sid}"
    base: dict[str, Any] = {"url_host": host, "ua": ua, "ip": ip, "auth": "Cafe", "user": p.upn,
            "anchor": anchor, "iis_user": p.upn, "routing_hint": "OwaCookie-Hint",
            "client_request_id": guid(rng)}
    reqs: list[tuple[Req, float]] = [
        (Req("Owa", "POST", "/owa/service.svc",
             f"?action={action}&EP=1&ID=-{rng.randint(10, 99)}&AC=1",
             action=action, total_ms=rng.randint(15, 400), req_bytes=rng.randint(400, 3000),
             resp_bytes=rng.randint(800, 40000), **base), 10.0),
        (Req("Owa", "POST", "/owa/ev.owa2",
             f"?ns=PendingRequest&ev=PendingNotificationRequest&UA=0&cid={guid(rng)}",
             action="PendingNotificationRequest", total_ms=rng.randint(30000, 600000),
             resp_bytes=rng.randint(200, 4000), **base), 2.0),
        (Req("Owa", "GET", "/owa/", "", total_ms=rng.randint(50, 300),
             resp_bytes=rng.randint(20000, 90000), **base), 1.0),
    ]
    # Session expired: OWA answers 440 (Login Timeout) without reaching the back end.
    expired = Req("Owa", "POST", "/owa/service.svc", f"?action={action}&EP=1&ID=-1&AC=1",
                  url_host=host, ua=ua, ip=ip, auth="", status=440, be=False, total_ms=3,
                  action=action)
    reqs.append((expired, 0.15))
    # Unauthenticated logon flow: IIS only (served by the front end itself).
    logon_q = f"url=https%3a%2f%2f{host}%2fowa%2f&reason=0"
    assets = f"/owa/auth/{site.asset_version}/themes/resources"
    reqs += [
        (Req(None, "GET", "/owa/", "", ua=ua, ip=ip, status=302, be=False, total_ms=4), 0.6),
        (Req(None, "GET", "/owa/auth/logon.aspx", logon_q, ua=ua, ip=ip, be=False,
             total_ms=rng.randint(5, 40)), 0.6),
        (Req(None, "POST", "/owa/auth.owa", "", ua=ua, ip=ip, status=302, be=False,
             total_ms=rng.randint(40, 300)), 0.6),
        (Req(None, "GET", f"{assets}/logon.css", "", ua=ua, ip=ip, be=False, total_ms=2), 0.4),
        (Req(None, "GET", f"{assets}/owafont_ja.css", "", ua=ua, ip=ip, be=False, total_ms=2),
         0.2),
    ]
    return reqs


def _outlook(site: Site, rng: random.Random, p: Person) -> list[tuple[Req, float]]:
    ip = _client_ip(rng, p)
    ua = p.outlook_ua
    host = site.mail_host if ip == p.external_ip else site.fqdn.lower()
    mbx = f"{p.mailbox_guid}@{site.domain}"
    common: dict[str, Any] = {"url_host": host, "ua": ua, "ip": ip}
    authed: dict[str, Any] = {"auth": "Negotiate", "user": p.upn, "iis_user": p.upn, **common}
    return [
        (Req("Mapi", "POST", "/mapi/emsmdb/", f"?MailboxId={mbx}",
             anchor=f"MailboxGuidWithDomain~{mbx}",
             routing_hint="MailboxGuidWithDomain-UrlParameter", total_ms=rng.randint(5, 900),
             req_bytes=rng.randint(200, 6000), resp_bytes=rng.randint(200, 60000),
             **authed), 30.0),
        (Req("Mapi", "POST", "/mapi/nspi/", f"?MailboxId={mbx}",
             anchor=f"MailboxGuidWithDomain~{mbx}",
             routing_hint="MailboxGuidWithDomain-UrlParameter", total_ms=rng.randint(5, 200),
             req_bytes=rng.randint(100, 2000), resp_bytes=rng.randint(200, 8000),
             **authed), 4.0),
        (Req("Mapi", "POST", "/mapi/emsmdb/", f"?MailboxId={mbx}", status=401, be=False,
             total_ms=1, **common), 3.0),
        (Req("Autodiscover", "POST", "/autodiscover/autodiscover.xml", "", anchor=f"Smtp~{p.upn}",
             routing_hint="AutodiscoverRequest-Smtp", total_ms=rng.randint(20, 250),
             req_bytes=rng.randint(350, 450), resp_bytes=rng.randint(4000, 9000),
             **authed), 4.0),
        (Req("Autodiscover", "POST", "/autodiscover/autodiscover.xml", "", status=401, be=False,
             total_ms=1, **common), 2.0),
        (Req("Ews", "POST", "/EWS/Exchange.asmx", "", anchor=f"Smtp~{p.upn}",
             routing_hint="AnchorMailboxHeader-SMTP", total_ms=rng.randint(10, 600),
             req_bytes=rng.randint(500, 4000), resp_bytes=rng.randint(500, 30000),
             **authed), 6.0),
        (Req("Ews", "POST", "/EWS/Exchange.asmx", "", status=401, be=False, total_ms=1,
             **common), 1.5),
        (Req("Oab", "GET", f"/OAB/{site.oab_guid}/oab.xml", "", anchor=f"Smtp~{p.upn}",
             routing_hint="OAB-Guid", total_ms=rng.randint(5, 60),
             resp_bytes=rng.randint(900, 1400),
             **authed), 0.8),
    ]


def _phone(site: Site, rng: random.Random, p: Person) -> list[tuple[Req, float]]:
    if p.phone_ua is None:
        return []
    ip = p.external_ip or rng.choice(site.external_pool)
    dtype = "iPhone" if "iPhone" in p.phone_ua or "iOS" in p.phone_ua else "Android"
    user = p.login
    out: list[tuple[Req, float]] = []
    for cmd, weight, total in (("Sync", 8.0, rng.randint(40, 900)),
                               ("Ping", 6.0, rng.randint(60000, 900000)),
                               ("FolderSync", 1.0, rng.randint(30, 200)),
                               ("ItemOperations", 0.5, rng.randint(40, 400))):
        out.append((Req(
            "Eas", "POST", "/Microsoft-Server-ActiveSync/default.eas",
            f"?Cmd={cmd}&User={user}&DeviceId={p.device_id}&DeviceType={dtype}",
            url_host=site.mail_host, action=cmd, auth="Basic", user=p.upn,
            anchor=f"Smtp~{p.upn}", ua=p.phone_ua, ip=ip, iis_user=user,
            routing_hint="ActiveSyncDeviceId-Cookie", total_ms=total,
            req_bytes=rng.randint(100, 2000), resp_bytes=rng.randint(20, 20000),
        ), weight))
    return out


def _admin(site: Site, rng: random.Random, p: Person) -> list[tuple[Req, float]]:
    host = site.fqdn.lower()
    ip = site.admin_ip
    ua = p.browser_ua
    who: dict[str, Any] = {"url_host": host, "ua": ua, "ip": ip, "auth": "Cafe", "user": p.upn,
           "iis_user": p.upn, "anchor": f"Sid~{p.sid}", "routing_hint": "EcpCookie-Hint"}
    out: list[tuple[Req, float]] = []
    for schema, cmd in (("Mailboxes", "Get-Recipient"), ("MailboxPropertiesService", "Get-Mailbox"),
                        ("DistributionGroups", "Get-DistributionGroup"),
                        ("VirtualDirectories", "Get-OwaVirtualDirectory"),
                        ("MessageTrace", "Get-MessageTrackingLog")):
        q = f"?schema={schema}&msExchEcpCanary={_canary(rng)}"
        out.append((Req("Ecp", "POST", "/ecp/DDI/DDIService.svc/GetList", q,
                        total_ms=rng.randint(60, 900), req_bytes=rng.randint(300, 900),
                        resp_bytes=rng.randint(1000, 30000), ecp_cmd=cmd,
                        **who), 0.5))
    out.append((Req("Ecp", "GET", "/ecp/", "", total_ms=rng.randint(100, 600),
                    resp_bytes=rng.randint(20000, 60000), **who), 0.3))
    rps_q = (f"?serializationLevel=Full;ExchClientVer={site.build};clientApplication="
             "ManagementShell;TargetServer=;PSVersion=5.1.14393.4104")
    out.append((Req("PowerShell", "POST", "/powershell", rps_q, url_host=host,
                    ua=catalog.EMS_UA, ip=ip, auth="Kerberos", user=f"{site.netbios}\\{p.login}",
                    iis_user=f"{site.netbios}\\{p.login}", anchor=f"Sid~{p.sid}",
                    routing_hint="UserSid-PowerShell", total_ms=rng.randint(50, 3000),
                    req_bytes=rng.randint(2000, 9000), resp_bytes=rng.randint(1000, 40000),
                    rps_client=catalog.EMS_UA), 0.6))
    return out


def _self_service(site: Site, rng: random.Random, p: Person) -> list[tuple[Req, float]]:
    """Users opening OWA options: inbox rules and the like go through ECP."""
    ip = _client_ip(rng, p)
    q = f"?msExchEcpCanary={_canary(rng)}"
    return [(Req("Ecp", "POST", "/ecp/RulesEditor/InboxRules.svc/GetList", q,
                 url_host=site.mail_host,
                 ua=p.browser_ua, ip=ip, auth="Cafe", user=p.upn, iis_user=p.upn,
                 anchor=f"Sid~{p.sid}", routing_hint="EcpCookie-Hint",
                 total_ms=rng.randint(60, 500), resp_bytes=rng.randint(500, 5000),
                 ecp_cmd="Get-InboxRule"), 0.3)]


def _probes(site: Site, rng: random.Random) -> list[tuple[Req, float]]:
    """Managed availability: the server tests itself with HealthMailbox accounts."""
    out: list[tuple[Req, float]] = []
    for hm in site.health_mailboxes:
        ip = rng.choice((site.server_ip, "127.0.0.1"))
        fq = site.fqdn.lower()
        ma_ua = catalog.PROBE_UAS[4].format(version=site.log_version)
        base: dict[str, Any] = {"url_host": fq, "ip": ip, "user": hm, "iis_user": hm,
                                "anchor": f"Smtp~{hm}"}
        out += [
            (Req("Owa", "POST", "/owa/service.svc", "?action=GetFolder&EP=1&ID=-1&AC=1",
                 action="GetFolder", auth="Cafe", ua=catalog.PROBE_UAS[1],
                 routing_hint="OwaCookie-Hint", total_ms=rng.randint(20, 120),
                 **base), 1.0),
            (Req("Ews", "POST", "/EWS/Exchange.asmx", "", auth="Negotiate",
                 ua=catalog.PROBE_UAS[2], routing_hint="AnchorMailboxHeader-SMTP",
                 total_ms=rng.randint(10, 90), **base), 1.0),
            (Req("Eas", "POST", "/Microsoft-Server-ActiveSync/default.eas",
                 "?Cmd=FolderSync&User=HealthMailbox&DeviceId=HealthProbe&DeviceType=AMProbe",
                 action="FolderSync", auth="Basic", ua=catalog.PROBE_UAS[3],
                 routing_hint="ActiveSyncDeviceId-Cookie", total_ms=rng.randint(20, 150),
                 **base), 0.6),
            (Req("Autodiscover", "POST", "/autodiscover/autodiscover.xml", "", auth="Negotiate",
                 ua=catalog.PROBE_UAS[0], routing_hint="AutodiscoverRequest-Smtp",
                 total_ms=rng.randint(10, 80), **base), 0.6),
            (Req("Mapi", "POST", "/mapi/emsmdb/", f"?MailboxId={hm}", auth="Negotiate",
                 ua=ma_ua, routing_hint="MailboxGuidWithDomain-UrlParameter",
                 total_ms=rng.randint(10, 80), **base), 0.6),
            (Req("RpcHttp", "RPC_IN_DATA", "/rpc/rpcproxy.dll", f"?{site.fqdn.lower()}:6001",
                 auth="Negotiate", ua="MSRPC", routing_hint="RpcHttp-Hint",
                 total_ms=rng.randint(10, 80), **base), 0.3),
            (Req("Oab", "GET", f"/OAB/{site.oab_guid}/oab.xml", "", auth="Negotiate",
                 ua=ma_ua, routing_hint="OAB-Guid", total_ms=rng.randint(4, 30),
                 **base), 0.3),
            (Req("Ecp", "GET", "/ecp/", "", auth="Cafe", ua=catalog.PROBE_UAS[0],
                 routing_hint="EcpCookie-Hint", total_ms=rng.randint(60, 300),
                 **base), 0.3),
            (Req("PowerShell", "POST", "/powershell", "?serializationLevel=Full;clientApplication="
                 "ActiveMonitor", auth="Kerberos", ua=catalog.EMS_UA,
                 routing_hint="UserSid-PowerShell", total_ms=rng.randint(30, 400),
                 rps_client="Exchange BackEnd Probes", **base), 1.5),
        ]
    # Load balancer health checks, anonymous.
    for vdir in ("owa", "ecp", "ews", "mapi", "oab", "Microsoft-Server-ActiveSync"):
        out.append((Req(None, "GET", f"/{vdir}/HealthCheck.htm", "", ua="", ip=site.server_ip,
                        be=False, total_ms=1), 0.25))
    # Published calendars, anonymous.
    p = rng.choice(site.people)
    out.append((Req("OwaCalendar", "GET",
                    f"/owa/calendar/{guid(rng)}@{site.domain}/{guid(rng)}/calendar.html", "",
                    url_host=site.mail_host, ua=rng.choice(catalog.BROWSER_UAS),
                    ip=rng.choice(site.external_pool), anchor=f"Smtp~{p.upn}",
                    routing_hint="OwaCalendar-Url", total_ms=rng.randint(40, 400)), 0.2))
    # Rare back-end failures.
    out.append((Req("Ews", "POST", "/EWS/Exchange.asmx", "", url_host=site.mail_host,
                    ua=rng.choice(catalog.EWS_UAS), ip=rng.choice(site.people).internal_ip,
                    auth="Negotiate", user=site.people[0].upn, iis_user=site.people[0].upn,
                    anchor=f"Smtp~{site.people[0].upn}", status=500, total_ms=rng.randint(50, 5000),
                    generic_errors="Microsoft.Exchange.Data.Storage.ConnectionFailedTransientException"
                    "; connection to the mailbox database failed, retrying"), 0.05))
    return out


def _busy(site: Site, rng: random.Random, p: Person) -> list[tuple[Req, float]]:
    """The everyday requests that hold the checks' literals, at a busy front end's rates.

    A front end's IIS log is dominated by the OWA logon page and its static files, ECP's
    .aspx pages, Outlook mobile's autodiscover.json lookups and remote PowerShell sessions
    (management shell and health manager) - every one a line a hunt must read and dismiss.
    """
    ip = _client_ip(rng, p)
    host = site.mail_host
    ua = p.browser_ua
    logon_q = f"url=https%3a%2f%2f{host}%2fowa%2f&reason=0"
    assets = f"/owa/auth/{site.asset_version}"
    static = (f"{assets}/themes/resources/logon.css", f"{assets}/themes/resources/favicon.ico",
              f"{assets}/themes/resources/segoeui-regular.ttf", f"{assets}/scripts/premium/"
              "flogon.js", f"/owa/prem/{site.asset_version}/resources/images/0/sprite1.mouse.png")
    reqs: list[tuple[Req, float]] = [
        (Req(None, "GET", "/owa/auth/logon.aspx", logon_q, ua=ua, ip=ip, be=False,
             total_ms=rng.randint(5, 40)), 12.0),
        (Req(None, "GET", "/owa/auth/logon.aspx", "replaceCurrent=1&url=https%3a%2f%2f"
             f"{host}%2fowa%2f%23path%3d%2fmail", ua=ua, ip=ip, be=False, total_ms=9), 3.0),
        (Req(None, "GET", "/owa/auth/errorFE.aspx", "httpCode=500", ua=ua, ip=ip, status=200,
             be=False, total_ms=3), 0.1),
    ]
    reqs += [(Req(None, "GET", path, "", ua=ua, ip=ip, be=False, total_ms=1), 0.8)
             for path in static]
    ecp: dict[str, Any] = {"url_host": host, "ua": ua, "ip": ip, "auth": "Cafe", "user": p.upn,
                           "iis_user": p.upn, "anchor": f"Sid~{p.sid}",
                           "routing_hint": "EcpCookie-Hint"}
    for page in ("/ecp/default.aspx", "/ecp/PersonalSettings/HomePage.aspx",
                 "/ecp/Organize/Distributionlists.slab", "/ecp/Customize/Regional.aspx",
                 "/ecp/Reporting/DeliveryReports.aspx"):
        reqs.append((Req("Ecp", "GET", page, f"?showhelp=false&rfr=owa&{_canary(rng)[:12]}",
                         total_ms=rng.randint(40, 600), resp_bytes=rng.randint(4000, 60000),
                         **ecp), 2.4))
    # Outlook for iOS and Android find the mailbox through autodiscover.json, all day long.
    if p.phone_ua is not None:
        for protocol in ("ActiveSync", "Ews", "AutodiscoverV1"):
            reqs.append((Req(
                "Autodiscover", "GET", "/autodiscover/autodiscover.json",
                f"?Email={p.upn.replace('@', '%40')}&Protocol={protocol}&RedirectCount=1",
                url_host=site.autodiscover_host, ua="Outlook-iOS/2.0", ip=p.external_ip
                or rng.choice(site.external_pool), auth="", routing_hint="Url-Email",
                anchor=f"Smtp~{p.upn}", total_ms=rng.randint(5, 60),
                resp_bytes=rng.randint(100, 300)), 5.0))
    return reqs


def _busy_shell(site: Site, rng: random.Random) -> list[tuple[Req, float]]:
    """The health manager's remote PowerShell sessions: a busy server runs them all day."""
    out: list[tuple[Req, float]] = []
    for hm in site.health_mailboxes:
        ip = rng.choice((site.server_ip, "127.0.0.1"))
        for action in ("Get-ExchangeServer", "Test-ServiceHealth", "Get-MailboxDatabase"):
            q = ("?serializationLevel=Full;ExchClientVer=" + site.build + ";clientApplication="
                 f"ActiveMonitor;TargetServer={site.fqdn.lower()};PSVersion=5.1.14393.4104&"
                 f"sessionGuid={guid(rng)}")
            out.append((Req("PowerShell", "POST", "/powershell", q, url_host=site.fqdn.lower(),
                            ua=catalog.EMS_UA, ip=ip, auth="Kerberos", user=hm, iis_user=hm,
                            anchor=f"Smtp~{hm}", routing_hint="UserSid-PowerShell",
                            action=action, total_ms=rng.randint(30, 900),
                            rps_client="Exchange BackEnd Probes"), 1.0))
    return out


# Traffic mixes: quiet is a small office's server, busy a front end of a large one (the
# default for tests, benchmarks and the demo: the lines the checks' literals catch are many).
TRAFFIC_MIXES = ("busy", "quiet")


def template_pool(site: Site, rng: random.Random, size: int,
                  traffic: str = "busy") -> list[Template]:
    """About `size` request templates for one day of traffic, with their relative weights."""
    kinds: list[tuple[Req, float]] = []
    people = rng.sample(site.people, k=min(len(site.people), max(4, size // 12)))
    busy = traffic == "busy"
    for p in people:
        kinds += _owa(site, rng, p) if rng.random() < 0.5 else []
        kinds += _outlook(site, rng, p)
        kinds += _phone(site, rng, p)
        if rng.random() < 0.2:
            kinds += _self_service(site, rng, p)
        kinds += _busy(site, rng, p) if busy else []
    scale = len(people) / 4
    for admin in site.admins:
        kinds += [(r, w * scale / 4) for r, w in _admin(site, rng, admin)]
    kinds += [(r, w * scale) for r, w in _probes(site, rng)]
    if busy:
        shells = _busy_shell(site, rng)
        kinds += [(r, w * len(people) * 7.0 / len(shells)) for r, w in shells]
    return [render(site, req, rng, weight) for req, weight in kinds]
