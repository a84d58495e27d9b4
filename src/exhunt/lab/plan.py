"""What a scene adds to a triage copy besides the bulk traffic: single lines, files, events."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from exhunt.lab import catalog
from exhunt.lab.evtx_writer import EventSpec
from exhunt.lab.formats import CRLF, Clock, exchange_ua, from_ms, guid, httpproxy_row
from exhunt.lab.traffic import Site

APPLICATION = "Application"
MANAGEMENT = "MSExchange Management"
SECURITY = "Security"
W3WP = "C:\\Windows\\System32\\inetsrv\\w3wp.exe"


@dataclass(frozen=True, slots=True)
class Injection:
    """One log line placed at time `t` (epoch ms) into a stream (see traffic stream keys)."""

    t: int
    stream: str
    line: str  # ends with CRLF


@dataclass(frozen=True, slots=True)
class Planted:
    """A file on the server's drive, by its Windows path; None data means an empty folder."""

    winpath: str
    data: bytes | None
    mtime_ms: int


@dataclass
class Plan:
    injections: list[Injection] = field(default_factory=list)
    files: list[Planted] = field(default_factory=list)
    events: list[EventSpec] = field(default_factory=list)
    attacker_ips: list[str] = field(default_factory=list)
    shell_winpaths: list[str] = field(default_factory=list)
    first_exploitation_ms: int | None = None
    notes: list[str] = field(default_factory=list)
    timeline: list[dict[str, str]] = field(default_factory=list)

    def mark(self, t: int, clock: Clock, stage: str, what: str, where: str) -> None:
        """Record what a hunter should find, for the truth file."""
        self.timeline.append({"time": clock.iso(t), "stage": stage, "what": what, "where": where})


def process_event(site: Site, t: int, image: str, command: str, parent: str,
                  pid: int, parent_pid: int) -> EventSpec:
    """Security 4688 "A new process has been created" as SYSTEM, with the command line
    (field names of the Windows Server 2016 event)."""
    return EventSpec(
        channel=SECURITY, provider="Microsoft-Windows-Security-Auditing", event_id=4688,
        level=0, time_created=from_ms(t), computer=site.fqdn,
        data={
            "SubjectUserSid": "S-1-5-18", "SubjectUserName": f"{site.host}$",
            "SubjectDomainName": site.netbios, "SubjectLogonId": "0x3e7",
            "NewProcessId": hex(pid), "NewProcessName": image, "TokenElevationType": "%%1936",
            "ProcessId": hex(parent_pid), "CommandLine": command, "TargetUserSid": "S-1-0-0",
            "TargetUserName": "-", "TargetDomainName": "-", "TargetLogonId": "0x0",
            "ParentProcessName": parent, "MandatoryLabel": "S-1-16-16384",
        },
    )


def proxy_line(site: Site, clock: Clock, rng: random.Random, t: int, total_ms: int,
               values: dict[str, str]) -> str:
    """One complete HttpProxy line of a single request (scenes, not bulk traffic)."""
    major, minor, build, rev = site.exch_version
    begin = t - total_ms
    row = {
        "DateTime": clock.iso(t), "RequestId": guid(rng), "MajorVersion": major,
        "MinorVersion": minor, "BuildVersion": build, "RevisionVersion": rev,
        "ServerHostName": site.host, "TotalRequestTime": str(total_ms),
        "ActivityContextLifeTime": str(total_ms), "RequestHandlerLatency": str(total_ms),
        "HttpPipelineLatency": "1", "TotalGlsLatency": "0", "TotalAccountForestLatency": "0",
        "TotalResourceForestLatency": "0", "ADLatency": "0", "TotalSharedCacheLatency": "0",
        "GenericInfo": (
            f"BeginRequest={clock.iso(begin)};CorrelationID=<empty>;ProxyState-Run=None;"
            f"BeginGetResponse={clock.iso(begin + 2)};OnResponseReady={clock.iso(t - 1)};"
            f"EndGetResponse={clock.iso(t - 1)};ProxyState-Complete=ProxyResponseData;"
            f"EndRequest={clock.iso(t)}"
        ),
    }
    row.update(values)
    if "UserAgent" in row:
        row["UserAgent"] = exchange_ua(row["UserAgent"])
    return httpproxy_row(row) + CRLF


def iis_fe_line(site: Site, clock: Clock, rng: random.Random, t: int, method: str, stem: str,
                query: str, user: str, ip: str, ua: str, status: int, taken: int,
                port: int = 443, exchange_vdir: bool = True, c_ip: str | None = None,
                req_id: str | None = None) -> str:
    """One IIS front-end line; `req_id` ties it to the HttpProxy line of the same request."""
    q = query.lstrip("?")
    if exchange_vdir:
        q = q + catalog.CAFE_SUFFIX + (req_id or guid(rng)) + ";"
    ua_field = ua.replace(" ", "+") if ua else "-"
    return (
        f"{clock.w3c(t)} {site.server_ip} {method} {stem} {q or '-'} {port} {user or '-'} "
        f"{c_ip or ip} {ua_field} - {status} 0 0 {taken}{CRLF}"
    )
