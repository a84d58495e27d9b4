"""ProxyShell (Aug 2021), ProxyNotShell and OWASSRF (late 2022): their own trails.

- autodiscover.json requests carrying `@` and a back-end target (`/powershell`, `/mapi/nspi`,
  ...): 401 and friends are failed attempts, 200/301/302 successes (Sigma, signature-base).
  Without a user name it is ProxyShell; with one (ProxyNotShell needs a mailbox login) the
  later flaw.
- OWASSRF: `POST /owa/<x>@<y>/powershell` answered 200.
- Rps_Http logs: remote PowerShell rows whose ClientInfo is not Exchange's own (CrowdStrike).
- The cmdlets ProxyShell used to write a shell: a mailbox export or a certificate request
  saved as a script page into a web folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import ClassVar, Self
from urllib.parse import unquote

from exhunt.checks.base import Check, HuntContext
from exhunt.checks.iis import Request, request_of
from exhunt.intel import indicators
from exhunt.model import Finding, LogRecord, RecordKind, Severity, Stage
from exhunt.readers.events import EventSelection

_PS = indicators("proxyshell")
_AD = _PS["autodiscover"]
_OWASSRF = re.compile(_PS["owassrf"]["pattern"], re.IGNORECASE)
_RPS = _PS["rps_http"]
_CMD = _PS["cmdlets"]
# Parameters longer than this are cut before matching (a hostile event can be megabytes).
_MAX_PARAMS = 16 << 10
# -FilePath '<path>' (quoted or not), up to the next parameter or the end.
_PATH_ARG = re.compile(
    r"""-\s*(?:FilePath|RequestFile|Path|FileName)\s*[:=]?\s*(['"]?)(.+?)\1"""
    r"""(?=\s+-\w|\s*$|\.\s*$)""",
    re.IGNORECASE | re.DOTALL,
)


def full_url(record: LogRecord) -> str:
    """Stem and query joined, decoded, lower case: rules match on both (SigmaHQ/sigma PR #471)."""
    if record.kind is RecordKind.IIS:
        stem, query = record.get("cs-uri-stem"), record.get("cs-uri-query")
    else:
        stem, query = record.get("UrlStem"), record.get("UrlQuery")
    query = "" if query == "-" else query
    text = f"{stem}?{query}" if query else stem
    return unquote(unquote(text)).lower()


def user_of(record: LogRecord) -> str:
    if record.kind is RecordKind.IIS:
        user = record.get("cs-username")
    else:
        user = record.get("AuthenticatedUser")
    return "" if user == "-" else user


@dataclass(slots=True)
class _Tally:
    first: Request
    count: int = 0
    first_at: datetime | None = None
    statuses: set[str] = field(default_factory=set)
    users: list[str] = field(default_factory=list)     # the first five, in reading order
    samples: list[str] = field(default_factory=list)   # likewise

    def add(self, request: Request, url: str, user: str) -> None:
        self.count += 1
        self.statuses.add(request.status)
        if user:
            _keep_five(self.users, user)
        _keep_five(self.samples, url[:300])
        when = request.record.timestamp
        if when is not None and (self.first_at is None or when < self.first_at):
            self.first_at = when
            self.first = request

    def merge(self, other: _Tally) -> None:
        """Take in the tally of requests read after this one's."""
        self.count += other.count
        self.statuses |= other.statuses
        for user in other.users:
            _keep_five(self.users, user)
        for sample in other.samples:
            _keep_five(self.samples, sample)
        if other.first_at is not None and (self.first_at is None
                                           or other.first_at < self.first_at):
            self.first_at, self.first = other.first_at, other.first


def _keep_five(kept: list[str], value: str) -> None:
    if len(kept) < 5 and value not in kept:
        kept.append(value)


def autodiscover_attempt(url: str, *, slack: bool = False) -> bool:
    """autodiscover.json with `@` and a back-end target: the ProxyShell/ProxyNotShell SSRF.

    `slack`: `url` is a whole decoded log line, where the stem and the query are apart (the
    `?` between them is not there), so targets are matched without their last character.
    """
    if _AD["marker"] not in url or "@" not in url:
        return False
    targets = _TARGET_STEMS if slack else _AD["targets"]
    return any(target in url for target in targets)


_TARGET_STEMS = tuple({t[:-1] if t[-1] in "/?&@" else t for t in _AD["targets"]})
# Escapes an Outlook client writes, undone by hand; anything else is decoded in full.
_COMMON_ESCAPES = ((b"%40", b"@"), (b"%2f", b"/"), (b"%3f", b"?"), (b"%26", b"&"),
                   (b"%3d", b"="), (b"%3a", b":"))


def _attempt_lines() -> str:
    """The prefilter pattern of a line that may hold an attempt: the marker and, on the same
    line, a back-end target or a percent-escape other than %40 (which decoding could turn
    into one). Outlook mobile's everyday lookups (`?Email=user%40domain&Protocol=...`) hold
    neither, and are never parsed."""
    targets = "|".join(re.escape(t) for t in sorted(_TARGET_STEMS))
    other = f"(?:{targets}|%(?:[0-35-9a-f][0-9a-f]|4[1-9a-f]))"
    marker = re.escape(_AD["marker"])
    return f"re:{marker}[^\\n]*{other}|{other}[^\\n]*{marker}"


def _decoded(line: bytes) -> str:
    """A raw line, lower case, percent-decoded twice as full_url decodes a URL."""
    low = line.lower()
    if b"%" in low:
        for escape, char in _COMMON_ESCAPES:
            low = low.replace(escape, char)
    text = low.decode("latin-1")
    return unquote(unquote(text)).lower() if "%" in text else text


class _Tallies(dict[tuple[str, bool, bool], _Tally]):
    """Requests grouped by (client, answered with success, authenticated)."""

    def count(self, request: Request, url: str, ok: bool, authenticated: bool) -> None:
        key = (request.client, ok, authenticated)
        self.setdefault(key, _Tally(request)).add(request, url, user_of(request.record))

    def merge(self, other: _Tallies) -> None:
        for key, tally in other.items():
            if key in self:
                self[key].merge(tally)
            else:
                self[key] = tally


class AutodiscoverSsrf(Check):
    id = "proxyshell.autodiscover"
    title = "ProxyShell: requests through autodiscover.json reached the back end"
    severity = Severity.CRITICAL
    stage = Stage.EXPLOIT
    cves = tuple(_AD["proxyshell_cves"])
    kinds = frozenset({RecordKind.IIS, RecordKind.HTTPPROXY})
    literals: ClassVar[tuple[str, ...] | None]  # set below, after the helpers it uses

    def __init__(self, context: HuntContext) -> None:
        super().__init__(context)
        self._tallies = _Tallies()

    @classmethod
    def wants_line(cls, line: bytes) -> bool:
        # Outlook mobile asks autodiscover.json all day, with an address but no back-end
        # target: whatever the columns, an attempt's line holds "@" and a target once decoded.
        return autodiscover_attempt(_decoded(line), slack=True)

    def feed(self, record: LogRecord) -> Iterable[Finding]:
        request = request_of(record)
        if request is None:
            return ()
        url = full_url(record)
        if not autodiscover_attempt(url):
            return ()
        if any(probe in url for probe in _AD["probe_markers"]):
            ok = False  # Nessus and similar scanners (signature-base note)
        else:
            ok = request.status in _AD["success_statuses"]
        self._tallies.count(request, url, ok, bool(user_of(record)))
        return ()

    def merge(self, other: Self) -> None:
        self._tallies.merge(other._tallies)

    def finalize(self) -> Iterable[Finding]:
        for (client, ok, authenticated), tally in sorted(self._tallies.items()):
            later = authenticated
            flaw = "ProxyNotShell" if later else "ProxyShell"
            cves = tuple(_AD["proxynotshell_cves"]) if later else self.cves
            text = (f"{tally.count} requests from {client or '?'} through autodiscover.json "
                    f"answered {', '.join(sorted(tally.statuses))}"
                    + (f" as {', '.join(sorted(tally.users))}" if tally.users else "")
                    + ":\n" + "\n".join(tally.samples))
            if ok:
                yield self._with(cves, self.finding(
                    tally.first.record, text, title=f"{flaw}: requests through "
                    "autodiscover.json reached the back end", timestamp=tally.first_at,
                    client_ip=client or None))
            else:
                yield self._with(cves, self.finding(
                    tally.first.record, text, title=f"{flaw} attempt (no success)",
                    severity=Severity.MEDIUM, stage=Stage.PROBE, timestamp=tally.first_at,
                    client_ip=client or None))

    @staticmethod
    def _with(cves: tuple[str, ...], finding: Finding) -> Finding:
        return replace(finding, cves=cves)


AutodiscoverSsrf.literals = (_attempt_lines(),)


class OwaSsrf(Check):
    id = "proxyshell.owassrf"
    title = "OWASSRF: remote PowerShell reached through /owa/<mailbox>/powershell"
    severity = Severity.CRITICAL
    stage = Stage.EXPLOIT
    cves = tuple(_PS["owassrf"]["cves"])
    kinds = frozenset({RecordKind.IIS, RecordKind.HTTPPROXY})
    # Remote PowerShell itself is every line of the PowerShell protocol log: only the
    # mailbox-in-path form of OWASSRF is worth parsing.
    literals = ("re:/owa/[^ ,\"]*(@|%40)[^ ,\"]*/powershell",)

    def __init__(self, context: HuntContext) -> None:
        super().__init__(context)
        self._tallies = _Tallies()

    def feed(self, record: LogRecord) -> Iterable[Finding]:
        request = request_of(record)
        if request is None:
            return ()
        path = unquote(request.path).lower()
        if not _OWASSRF.match(path):
            return ()
        self._tallies.count(request, full_url(record), request.answered_ok, False)
        return ()

    def merge(self, other: Self) -> None:
        self._tallies.merge(other._tallies)

    def finalize(self) -> Iterable[Finding]:
        for (client, ok, _), tally in sorted(self._tallies.items()):
            text = (f"{tally.count} requests from {client or '?'} answered "
                    f"{', '.join(sorted(tally.statuses))}:\n" + "\n".join(tally.samples))
            if ok:
                yield self.finding(tally.first.record, text, timestamp=tally.first_at,
                                   client_ip=client or None)
            else:
                yield self.finding(tally.first.record, text, title="OWASSRF attempt (no "
                                   "success)", severity=Severity.MEDIUM, stage=Stage.PROBE,
                                   timestamp=tally.first_at, client_ip=client or None)


class RpsHttp(Check):
    id = "proxyshell.rps-http"
    title = "Remote PowerShell from an unknown client (ProxyNotShell / OWASSRF)"
    severity = Severity.HIGH
    stage = Stage.EXPLOIT
    cves = tuple(_RPS["cves"])
    kinds = frozenset({RecordKind.RPS_HTTP})
    literals = None

    def __init__(self, context: HuntContext) -> None:
        super().__init__(context)
        # (client, answered 200): first record, count, first five users and client infos.
        self._tallies: dict[tuple[str, bool], tuple[LogRecord, int, list[str], list[str]]] = {}

    def feed(self, record: LogRecord) -> Iterable[Finding]:
        row = record.fields
        info = row.get("ClientInfo", "").strip()
        if not info or info in _RPS["benign_client_info"] or info.startswith("#"):
            return ()
        ok = row.get("HttpStatus", "").strip() == _RPS["success_status"]
        client = row.get("ClientIpAddress", "").strip()
        key = (client, ok)
        chain = " -> ".join(x for x in (client, row.get("FrontEndServer", "").strip(),
                                        row.get("ServerHostName", "").strip()) if x)
        user = row.get("AuthenticatedUser", "").strip()
        if key not in self._tallies:
            self._tallies[key] = (record, 0, [], [])
        first, count, users, infos = self._tallies[key]
        if user:
            _keep_five(users, user)
        _keep_five(infos, f"{info[:120]} via {chain}")
        self._tallies[key] = (first, count + 1, users, infos)
        return ()

    def merge(self, other: Self) -> None:
        for key, (first, count, users, infos) in other._tallies.items():
            if key not in self._tallies:
                self._tallies[key] = (first, count, users, infos)
                continue
            mine, total, my_users, my_infos = self._tallies[key]
            for user in users:
                _keep_five(my_users, user)
            for info in infos:
                _keep_five(my_infos, info)
            self._tallies[key] = (mine, total + count, my_users, my_infos)

    def finalize(self) -> Iterable[Finding]:
        for (client, ok), (first, count, users, infos) in sorted(
                self._tallies.items(), key=lambda kv: kv[0]):
            text = (f"{count} remote PowerShell requests from {client or '?'}"
                    + (f" as {', '.join(sorted(users))}" if users else "")
                    + "; client: " + "; ".join(sorted(infos)))
            if ok:
                yield self.finding(first, text + "\nHTTP 200: possibly successful",
                                   client_ip=client or None)
            else:
                yield self.finding(first, text + "\nnot answered 200: failed",
                                   title="Remote PowerShell attempt from an unknown client "
                                   "(failed)", severity=Severity.MEDIUM, stage=Stage.PROBE,
                                   client_ip=client or None)


def cmdlet_call(record: LogRecord) -> tuple[str, str, bool] | None:
    """(cmdlet, parameters text, failed) from a management event or an Rps_Cmdlet row."""
    if record.kind is RecordKind.EVENT:
        if record.get("Provider") not in _CMD["management_providers"]:
            return None
        return (record.get("Data[0]"), record.get("Data[1]") or record.get("Message"),
                record.get("EventID") == _CMD["failed_event"])
    if record.kind is RecordKind.RPS_CMDLET:
        failed = record.get("Error").strip() not in ("", "-") if "Error" in record.fields else (
            False)
        return record.get("Cmdlet") or record.get("CmdletName"), record.get("Parameters"), failed
    if record.kind is RecordKind.ECP_SERVER:
        params = " ".join(f"-{k[6:]} '{v}'" for k, v in record.fields.items()
                          if k.startswith("Param."))
        return record.get("Cmdlet"), params, bool(record.get("S:EX").strip())
    return None


def written_page(params: str) -> str | None:
    """The path a cmdlet was told to write, when it is a script page or in a web folder."""
    for match in _PATH_ARG.finditer(params[:_MAX_PARAMS]):
        path = match.group(2).strip().strip("'\"")
        low = path.lower().replace("/", "\\")
        if low.endswith(tuple(_CMD["script_extensions"])) or any(
                folder in low for folder in _CMD["web_folders"]):
            return path
    return None


class ShellWritingCmdlet(Check):
    id = "proxyshell.cmdlet-shell"
    title = "ProxyShell: an Exchange cmdlet wrote a script page into a web folder (web shell)"
    severity = Severity.CRITICAL
    stage = Stage.BACKDOOR
    cves = ("CVE-2021-34473", "CVE-2021-34523", "CVE-2021-31207")
    kinds = frozenset({RecordKind.EVENT, RecordKind.RPS_CMDLET, RecordKind.ECP_SERVER})
    literals = (_CMD["export"], _CMD["certificate"], _CMD["role_assignment"])
    events = EventSelection(providers=frozenset(_CMD["management_providers"]))

    def feed(self, record: LogRecord) -> Iterable[Finding]:
        call = cmdlet_call(record)
        if call is None:
            return
        cmdlet, params, failed = call
        name = cmdlet.strip().lower()
        if name == _CMD["role_assignment"].lower():
            if "import export" in params.lower() and not failed:
                yield self.finding(record, f"{cmdlet} {params}", title="Mailbox Import Export "
                                   "role granted (ProxyShell step; admins also do this)",
                                   severity=Severity.INFO, stage=Stage.EXPLOIT)
            return
        if name not in (_CMD["export"].lower(), _CMD["certificate"].lower()):
            return
        page = written_page(params)
        if page is None:
            return
        what = "mailbox export" if name == _CMD["export"].lower() else "certificate request"
        if failed:
            yield self.finding(record, f"{cmdlet} {params}", title=f"Failed attempt to write a "
                               f"{what} as a web page", severity=Severity.MEDIUM,
                               stage=Stage.PROBE)
            return
        yield self.finding(record, f"{cmdlet} {params}\nthe {what} was written to {page}",
                           title=f"ProxyShell: a {what} was written as a web page (web shell)",
                           webshell_path=page)
