"""Facts the triage-copy generator draws from: log headers, paths, user agents, IOC names.

Knowledge, not code: each group says where it comes from. "Reference" means the public
write-ups of the March 2021 intrusions that the group names. Values marked
"plausible" are this module's own invention where no public example exists; they are shaped like
the real thing but must not be taken as facts about Exchange.
"""

from __future__ import annotations

from typing import Final

# --- Install paths ---------------------------------------------------------------------------
# Source: reference b1-b4 (default Exchange 2016 install path; IIS log folders W3SVC1/W3SVC2).
EXCHANGE_ROOT: Final = "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\"
INETPUB: Final = "C:\\inetpub\\"

# --- HttpProxy ---------------------------------------------------------------------------------
# Source: reference b1 (Qazeer/artefacts.help, Exchange 2016 #Fields line, 74 columns).
HTTPPROXY_FIELDS: Final = (
    "DateTime", "RequestId", "MajorVersion", "MinorVersion", "BuildVersion", "RevisionVersion",
    "ClientRequestId", "Protocol", "UrlHost", "UrlStem", "ProtocolAction",
    "AuthenticationType", "IsAuthenticated", "AuthenticatedUser", "Organization",
    "AnchorMailbox", "UserAgent", "ClientIpAddress", "ServerHostName", "HttpStatus",
    "BackEndStatus", "ErrorCode", "Method", "ProxyAction", "TargetServer",
    "TargetServerVersion", "RoutingType", "RoutingHint", "BackEndCookie", "ServerLocatorHost",
    "ServerLocatorLatency", "RequestBytes", "ResponseBytes", "TargetOutstandingRequests",
    "AuthModulePerfContext", "HttpPipelineLatency", "CalculateTargetBackEndLatency",
    "GlsLatencyBreakup", "TotalGlsLatency", "AccountForestLatencyBreakup",
    "TotalAccountForestLatency", "ResourceForestLatencyBreakup", "TotalResourceForestLatency",
    "ADLatency", "SharedCacheLatencyBreakup", "TotalSharedCacheLatency",
    "ActivityContextLifeTime", "ModuleToHandlerSwitchingLatency", "ClientReqStreamLatency",
    "BackendReqInitLatency", "BackendReqStreamLatency", "BackendProcessingLatency",
    "BackendRespInitLatency", "BackendRespStreamLatency", "ClientRespStreamLatency",
    "KerberosAuthHeaderLatency", "HandlerCompletionLatency", "RequestHandlerLatency",
    "HandlerToModuleSwitchingLatency", "ProxyTime", "CoreLatency", "RoutingLatency",
    "HttpProxyOverhead", "TotalRequestTime", "RouteRefresherLatency", "UrlQuery",
    "BackEndGenericInfo", "GenericInfo", "GenericErrors", "EdgeTraceId", "DatabaseGuid",
    "UserADObjectGuid", "PartitionEndpointLookupLatency", "RoutingStatus",
)

# Source: reference b1 / TPL Get-LogAge (protocol sub-folders of Logging\HttpProxy).
HTTPPROXY_PROTOCOLS: Final = (
    "Autodiscover", "Eas", "Ecp", "Ews", "Mapi", "Oab", "Owa", "OwaCalendar", "PowerShell",
    "RpcHttp",
)

# --- IIS -----------------------------------------------------------------------------------------
# Source: IIS's default W3C extended log field line, as Microsoft documents it ("W3C
# Logging" in the IIS configuration reference).
IIS_FIELDS: Final = (
    "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) "
    "cs(Referer) sc-status sc-substatus sc-win32-status time-taken"
)
IIS_SOFTWARE: Final = "Microsoft Internet Information Services 10.0"
# Source: reference b4: Exchange appends this to cs-uri-query of its virtual directories.
CAFE_SUFFIX: Final = "&CorrelationID=<empty>;&cafeReqId="

# --- ECP server log ------------------------------------------------------------------------------
# Source: reference b2 (header and benign line, Qazeer/artefacts.help).
ECP_FIELDS: Final = "TimeStamp,ServerName,EventId,EventData"

# --- Rps_Http log --------------------------------------------------------------------------------
# Source: reference (a), CrowdStrike OWASSRF Rps_Http-IOC.ps1 fixed header list.
RPS_HTTP_FIELDS: Final = (
    "DateTime", "StartTime", "RequestId", "MajorVersion", "MinorVersion", "BuildVersion",
    "RevisionVersion", "ClientRequestId", "UrlHost", "UrlStem", "AuthenticationType",
    "IsAuthenticated", "AuthenticatedUser", "Organization", "ManagedOrganization",
    "ClientIpAddress", "ServerHostName", "FrontEndServer", "HttpStatus", "SubStatus",
    "ErrorCode", "Action", "CommandId", "CommandName", "SessionId", "ShellId", "FailFast",
    "ContributeToFailFast", "RequestBytes", "ClientInfo", "CPU", "Memory",
    "ActivityContextLifeTime", "TotalTime", "UrlQuery", "GenericLatency", "GenericInfo",
    "GenericErrors",
)

# --- OAB generator log ---------------------------------------------------------------------------
# Source: reference b3: no real line is public. Only the message template is known:
# "Download failed and temporary file '{0}' needs to be removed". The prefix columns below are
# plausible, not real.
OAB_DOWNLOAD_FAILED: Final = "Download failed and temporary file '{path}' needs to be removed"

# --- Benign user agents --------------------------------------------------------------------------
# Plausible, shaped like common 2021 clients. Commas are kept here; the writers replace them
# (HttpProxy: two spaces, reference b1; IIS: spaces become '+', reference b4).
BROWSER_UAS: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/88.0.4324.190 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/88.0.4324.182 Safari/537.36 Edg/88.0.705.74",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:86.0) Gecko/20100101 Firefox/86.0",
    "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/14.0.3 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 14_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/14.0.3 Mobile/15E148 Safari/604.1",
)
OUTLOOK_UAS: Final = (
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.13628; Pro)",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.13801; Pro)",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.5122; Pro)",
    "Microsoft Office/15.0 (Windows NT 6.1; Microsoft Outlook 15.0.5319; Pro)",
)
MAC_OUTLOOK_UAS: Final = ("MacOutlook/16.46.21021202 (Intelx64 Mac OS X 10.15.7 (Build 19H524))",)
EAS_UAS: Final = (
    "Apple-iPhone12C1/1803.27",
    "Apple-iPhone11C8/1803.27",
    "Apple-iPad8C1/1802.27",
    "Outlook-iOS/723.4027091.prod.iphone (4.2107.0)",
    "Android-SAMSUNG-SM-G991B/101.100300",
)
EWS_UAS: Final = (
    "ExchangeServicesClient/15.00.0913.015",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.13628; Pro)",
    "MacOutlook/16.46.21021202 (Intelx64 Mac OS X 10.15.7 (Build 19H524))",
)
# Managed-availability probes (plausible shapes: "AMProbe/...", HealthMailbox users).
PROBE_UAS: Final = (
    "AMProbe/Local/ClientAccessProbe",
    "AMProbe/Local/OWAProxyTestProbe",
    "AMProbe/Local/EWSProxyTestProbe",
    "AMProbe/Local/ActiveSyncCTPProbe",
    "MSEXCH:ManagedAvailability/{version}",
)
EMS_UA: Final = "Microsoft WinRM Client"

# --- Attacker user agents ------------------------------------------------------------------------
# Source: reference IOC catalogue "Request paths / UAs" (CHIRP AA21-062A = Volexity list).
ATTACKER_UAS: Final = (
    "ExchangeServicesClient/0.0.0.0",
    "python-requests/2.19.1",
    "python-requests/2.25.1",
    "DuckDuckBot/1.0; (+http://duckduckgo.com/duckduckbot.html)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "Mozilla/5.0 (compatible; Bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/51.0.2704.103 Safari/537.36",
    "antSword/v2.1",
    "Googlebot/2.1 (+http://www.googlebot.com/bot.html)",
)
# Source: reference b1 (signature-base PR #125 real nmap-NSE probe line).
NMAP_PROBE_UA: Final = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_6) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/69.0.3497.81 Safari/537.36"
)
# Source: reference b4 (helsecert web-shell access line).
SHELL_BROWSER_UA: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/65.0.2345 Safari/537.36"
)

# --- Web-shell names and places ------------------------------------------------------------------
# Source: reference IOC catalogue (MSTIC CSV, signature-base filename IOCs, helsecert).
SHELL_NAMES_ASPNET_CLIENT: Final = (
    "shell.aspx", "Server.aspx", "aspnet_client.aspx", "aspnet_iisstart.aspx", "aspnet_www.aspx",
    "default1.aspx", "errorcheck.aspx", "iispage.aspx", "s.aspx", "session.aspx", "xx.aspx",
    "discover.aspx", "HttpProxy.aspx", "OutlookEN.aspx", "supp0rt.aspx", "services.aspx",
)
SHELL_NAMES_OWA_AUTH: Final = (
    "OutlookZH.aspx", "authhead.aspx", "bob.aspx", "errorPage.aspx", "errorPages.aspx",
    "fatal-erro.aspx", "log.aspx", "logg.aspx", "one.aspx", "one1.aspx", "shel.aspx",
    "shel2.aspx", "shel90.aspx", "a.aspx", "ErrorAA.aspx", "zntwv.aspx", "getpp.aspx",
    "Err0r.aspx",
)
# Source: reference b2 (helsecert China Chopper parameter "klk123456"); others random.
CHOPPER_PARAM_REAL: Final = "klk123456"

# --- Benign look-alikes (false-positive traps) ----------------------------------------------------
# Source: reference (e): CSS-Exchange #145 (vss_manifests.zip), #311 (McAfee FrameworkConfig.zip,
# engmin.zip), #328 (AppRecovery ...\configuration.zip).
BENIGN_ARCHIVES: Final = (
    "C:\\ProgramData\\VMware\\VMware Tools\\vss_manifests.zip",
    "C:\\ProgramData\\McAfee\\Agent\\FrameworkConfig.zip",
    "C:\\ProgramData\\McAfee\\Agent\\engmin.zip",
    "C:\\ProgramData\\AppRecovery\\Logs\\configuration.zip",
)

# Product pages under FrontEnd\HttpProxy\owa\auth written in every copy (names of real OWA
# files; content is this module's own short markup). TimeoutLogout.aspx is also on
# web-shell name lists (reference IOC catalogue): a name alone must not convict. The product's
# RedirSuiteServiceProxy.aspx has a look-alike shell name, RedirSuiteServerProxy.aspx (helsecert).
PRODUCT_OWA_AUTH_PAGES: Final = (
    "logon.aspx", "logoff.aspx", "errorFE.aspx", "ExpiredPassword.aspx", "TimeoutLogout.aspx",
    "RedirSuiteServiceProxy.aspx", "signout.aspx",
)

# --- People (generic, invented) ------------------------------------------------------------------
FIRST_NAMES: Final = (
    "anna", "ben", "carla", "david", "emma", "frank", "grace", "henry", "ines", "jonas", "karen",
    "liam", "maria", "nina", "oscar", "paula", "quentin", "rosa", "sam", "tina", "ulf", "vera",
    "walter", "xena", "yusuf", "zoe", "alex", "bianca", "chris", "dana",
)
LAST_NAMES: Final = (
    "adams", "baker", "clark", "diaz", "evans", "fischer", "garcia", "hansen", "ito", "jensen",
    "kim", "lopez", "moreau", "nguyen", "olsen", "petrov", "quinn", "rossi", "schmidt", "tanaka",
    "umar", "varga", "weber", "young", "zimmer",
)
# RFC 2606 / 6761 reserved names only.
ORG_DOMAINS: Final = ("example.org", "example.com", "example.net")
