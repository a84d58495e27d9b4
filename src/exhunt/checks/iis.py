"""The request trail: IIS front-end logs (and HttpProxy) show attack paths and shells reached."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, Self

from exhunt.checks.base import Check, HuntContext
from exhunt.intel import indicators
from exhunt.model import Finding, LogRecord, RecordKind, Severity, Stage

_PL = indicators("proxylogon")
_IIS = _PL["iis"]
_URLS = _PL["webshell_urls"]
_ATTACK_PATHS = frozenset(p.lower() for p in _IIS["attack_post_paths"])
_ATTACK_PATTERN = re.compile(_IIS["attack_post_pattern"], re.IGNORECASE)
_SCRIPT_EXT = tuple(_URLS["script_extensions"])


def _served_pages() -> tuple[str, ...]:
    """Prefilter patterns of the script pages Exchange serves all day (intel data), as a
    path in a column or after a host in a referring URL."""
    before = r'(?:[ ,"]|://[^/ ,"]*)'
    owa = "|".join(re.escape(page.removesuffix(".aspx"))
                   for page in _URLS["product_owa_auth_pages"])
    ecp = "|".join(re.escape(folder) for folder in _URLS["served_ecp_folders"])
    return (f"re:{before}/owa/auth/(?:{owa})\\.aspx",
            f"re:{before}/ecp/(?:(?:{ecp})/)?[a-z0-9_-]+\\.aspx")


SERVED_PAGES = _served_pages()
_SERVED = [re.compile(f"(?:{pattern[3:]})$", re.IGNORECASE) for pattern in SERVED_PAGES]


def is_served_page(path: str) -> bool:
    """A script page Exchange serves itself (OWA's logon pages, ECP's pages)."""
    return any(served.search(" " + path) for served in _SERVED)


# The exploit tools' own user agents; crawler names on the same lists also belong to crawlers.
_TOOL_AGENTS = ("ExchangeServicesClient/0.0.0.0", "antSword/")


@dataclass(frozen=True, slots=True)
class Request:
    """The parts of a web request the trail checks judge, whichever log it came from."""

    record: LogRecord
    client: str
    method: str
    path: str
    status: str
    agent: str

    @property
    def answered_ok(self) -> bool:
        return self.status.startswith("2")


def request_of(record: LogRecord) -> Request | None:
    """The request a record shows; the last one is kept, as several checks ask in turn."""
    if record is _LAST.record:
        return _LAST.request
    _LAST.record, _LAST.request = record, _request_of(record)
    return _LAST.request


class _LastRequest:
    # Holding the record keeps its id from being reused by another one.
    record: LogRecord | None = None
    request: Request | None = None


_LAST = _LastRequest()


def _request_of(record: LogRecord) -> Request | None:
    if record.kind is RecordKind.IIS:
        path = record.get("cs-uri-stem")
        return Request(record, record.get("c-ip"), record.get("cs-method").upper(), path,
                       record.get("sc-status"), record.get("cs(User-Agent)").replace("+", " "))
    if record.kind is RecordKind.HTTPPROXY:
        return Request(record, record.get("ClientIpAddress"), record.get("Method").upper(),
                       record.get("UrlStem"), record.get("HttpStatus"), record.get("UserAgent"))
    return None


@lru_cache(maxsize=4096)
def is_shell_location(path: str) -> bool:
    """A script page where Exchange has none of its own: where shells were planted.

    Cached: a busy front end asks about the same few pages (logon, ECP) all day."""
    low = path.lower()
    if not low.endswith(_SCRIPT_EXT):
        return False
    if low.count("/") == 1:
        return True  # the web root itself holds no script pages on an Exchange server
    if any(low.startswith(folder) for folder in _URLS["suspect_folders"]):
        return True
    if any(low.startswith(folder) for folder in _URLS["auth_folders"]):
        return low.rsplit("/", 1)[-1] not in _URLS["product_owa_auth_pages"]
    return False


@dataclass(slots=True)
class _Tally:
    first: Request
    count: int = 0
    last: datetime | None = None
    statuses: set[str] = field(default_factory=set)

    def add(self, request: Request) -> None:
        self.count += 1
        self.statuses.add(request.status)
        when = request.record.timestamp
        if when is not None and (self.last is None or when > self.last):
            self.last = when
        first = self.first.record.timestamp
        if when is not None and (first is None or when < first):
            self.first = request  # the earliest, whatever order the logs were read in

    def merge(self, other: _Tally) -> None:
        """Take in the tally of requests read after this one's."""
        self.count += other.count
        self.statuses |= other.statuses
        if other.last is not None and (self.last is None or other.last > self.last):
            self.last = other.last
        first, theirs = self.first.record.timestamp, other.first.record.timestamp
        if theirs is not None and (first is None or theirs < first):
            self.first = other.first


def merge_tallies(mine: dict[Any, _Tally], theirs: dict[Any, _Tally]) -> None:
    for key, tally in theirs.items():
        if key in mine:
            mine[key].merge(tally)
        else:
            mine[key] = tally


class AttackPathPosts(Check):
    id = "iis.attack-post"
    title = "ProxyLogon: forged requests reached the back end (front-end web log)"
    severity = Severity.HIGH
    stage = Stage.EXPLOIT
    cves = ("CVE-2021-26855",)
    kinds = frozenset({RecordKind.IIS})
    literals = ("POST /ecp/", "POST /owa/auth/")

    def __init__(self, context: HuntContext) -> None:
        super().__init__(context)
        self._tallies: dict[tuple[str, bool], _Tally] = {}

    def feed(self, record: LogRecord) -> Iterable[Finding]:
        request = request_of(record)
        if request is None or request.method != "POST":
            return ()
        path = request.path.lower()
        if path not in _ATTACK_PATHS and not _ATTACK_PATTERN.match(path):
            return ()
        ok = request.status in _IIS["success_statuses"]
        tally = self._tallies.setdefault((request.client, ok), _Tally(request))
        tally.add(request)
        return ()

    def merge(self, other: Self) -> None:
        merge_tallies(self._tallies, other._tallies)

    def finalize(self) -> Iterable[Finding]:
        for (client, ok), tally in sorted(self._tallies.items()):
            first = tally.first
            text = (f"{tally.count} POSTs from {client} to static files used to carry the "
                    f"forged cookie (first: {first.method} {first.path}, UA {first.agent!r}), "
                    f"answered {', '.join(sorted(tally.statuses))}")
            if ok:
                yield self.finding(first.record, text, client_ip=client or None)
            else:
                yield self.finding(first.record, text, title="ProxyLogon attempt on the web "
                                   "front end (no success)", severity=Severity.MEDIUM,
                                   stage=Stage.PROBE, client_ip=client or None)


class AttackToolAgent(Check):
    id = "iis.tool-agent"
    title = "Requests by an Exchange exploit tool's user agent"
    severity = Severity.LOW
    stage = Stage.PROBE
    cves = ("CVE-2021-26855",)
    kinds = frozenset({RecordKind.IIS})
    literals = _TOOL_AGENTS

    def __init__(self, context: HuntContext) -> None:
        super().__init__(context)
        self._tallies: dict[str, _Tally] = {}

    def feed(self, record: LogRecord) -> Iterable[Finding]:
        request = request_of(record)
        if request is not None and any(ua in request.agent for ua in _TOOL_AGENTS):
            self._tallies.setdefault(request.client, _Tally(request)).add(request)
        return ()

    def merge(self, other: Self) -> None:
        merge_tallies(self._tallies, other._tallies)

    def finalize(self) -> Iterable[Finding]:
        for client, tally in sorted(self._tallies.items()):
            yield self.finding(tally.first.record, f"{tally.count} requests from {client} with "
                               f"user agent {tally.first.agent!r}, first to "
                               f"{tally.first.path}", client_ip=client or None)


class ShellRequests(Check):
    """Requests for script pages where Exchange has none: a planted shell used, or looked for."""

    id = "webshell.request"
    title = "A web shell was used: requests to a planted page answered with success"
    severity = Severity.CRITICAL
    stage = Stage.REENTRY
    cves = ()
    kinds = frozenset({RecordKind.IIS, RecordKind.HTTPPROXY})
    literals = tuple(_URLS["request_prefilter"])
    quiet = SERVED_PAGES  # never shell locations

    def __init__(self, context: HuntContext) -> None:
        super().__init__(context)
        self._used: dict[tuple[str, str], _Tally] = {}
        self._looked: dict[str, _Tally] = {}

    def feed(self, record: LogRecord) -> Iterable[Finding]:
        request = request_of(record)
        if request is None or not is_shell_location(request.path):
            return ()
        if request.answered_ok:
            key = (request.path.lower(), request.client)
            self._used.setdefault(key, _Tally(request)).add(request)
        else:
            self._looked.setdefault(request.client, _Tally(request)).add(request)
        return ()

    def merge(self, other: Self) -> None:
        merge_tallies(self._used, other._used)
        merge_tallies(self._looked, other._looked)

    def finalize(self) -> Iterable[Finding]:
        for (_path, client), tally in sorted(self._used.items()):
            first = tally.first
            yield self.finding(
                first.record,
                f"{tally.count} requests from {client} to {first.path} answered "
                f"{', '.join(sorted(tally.statuses))} (first {first.method}, UA "
                f"{first.agent!r}); last at {tally.last}",
                client_ip=client or None,
                webshell_path=first.path,
            )
        for client, tally in sorted(self._looked.items()):
            yield self.finding(
                tally.first.record,
                f"{tally.count} requests from {client} for script pages that are not there "
                f"(e.g. {tally.first.path}, answered {', '.join(sorted(tally.statuses))})",
                title="Someone looked for web shells (none answered)",
                severity=Severity.LOW,
                stage=Stage.PROBE,
                client_ip=client or None,
            )
