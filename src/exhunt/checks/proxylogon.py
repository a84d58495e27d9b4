"""ProxyLogon (CVE-2021-26855, -26857, -26858, -27065): the trail in Exchange's own logs."""

from __future__ import annotations

import ntpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Self

from exhunt.checks.base import Check, HuntContext
from exhunt.intel import indicators
from exhunt.model import Finding, LogRecord, RecordKind, Severity, Stage
from exhunt.readers.events import EventSelection

_PL = indicators("proxylogon")
_SSRF = _PL["ssrf"]
_MARKUP = re.compile(r"<\s*/?\s*[a-z][a-z0-9]*[^>]*>", re.IGNORECASE)
_DOWNLOAD_FAILED = re.compile(
    re.escape(_PL["oab"]["download_failed"]) + r"\s+(.*?)\s+needs to be removed", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class ForgedRequest:
    """One request whose forged cookie named a back-end target."""

    record: LogRecord
    target_host: str
    path: str          # lower-cased path the front end was asked to fetch
    status: str

    @property
    def by_scanner(self) -> bool:
        return self.target_host in _SSRF["scanner_targets"]

    @property
    def succeeded(self) -> bool:
        """The forged request reached the back end and was answered."""
        if self.by_scanner:
            return False
        if _SSRF["step_login"] in self.path:
            return self.status == str(_SSRF["login_success_status"])
        if _SSRF["step_ddi"] in self.path:
            return self.status == str(_SSRF["ddi_success_status"])
        if self.path.startswith(_SSRF["step_autodiscover"]):
            return False  # autodiscover-only chains are failed attempts (CSS-Exchange #306)
        return self.status.startswith("2")

    def describe(self) -> str:
        when = self.record.timestamp.strftime("%Y-%m-%d %H:%M:%S") if self.record.timestamp else "?"
        return f"{when}  {self.path or '/'}  -> HTTP {self.status or '?'}"


def forged_request(record: LogRecord) -> ForgedRequest | None:
    anchor = record.get("AnchorMailbox")
    cookie = record.get("BackEndCookie")
    target = ""
    if anchor[: len(_SSRF["anchor_prefix"])].lower() == _SSRF["anchor_prefix"].lower():
        target = anchor[len(_SSRF["anchor_prefix"]) :]
    elif cookie[: len(_SSRF["cookie_prefix"])].lower() == _SSRF["cookie_prefix"].lower():
        # Server~<host>/<path>~<version>: only a path makes it a forgery.
        target = cookie[len(_SSRF["cookie_prefix"]) :].rsplit("~", 1)[0]
    if "/" not in target:
        return None
    host, _, path = target.partition("/")
    host = host.rsplit("@", 1)[-1].lower()
    host = host.split("]", 1)[0] + "]" if host.startswith("[") else host.split(":", 1)[0]
    status = record.get("HttpStatus") or record.get("BackEndStatus")
    return ForgedRequest(record, host, "/" + path.lower(), status)


# Steps of one client's chain quoted in the evidence (the earliest); the rest are counted.
CHAIN_SHOWN = 40


def _when(step: ForgedRequest) -> tuple[bool, datetime | None]:
    return (step.record.timestamp is None, step.record.timestamp)


@dataclass(slots=True)
class _Chain:
    """One client's forged requests, bounded: counts, the earliest steps, the first answered."""

    first: ForgedRequest
    count: int = 0
    successes: int = 0
    all_scanner: bool = True
    earliest: list[ForgedRequest] = field(default_factory=list)  # in (time, reading) order
    first_answered: ForgedRequest | None = None  # earliest 2xx step not by a scanner

    def add(self, step: ForgedRequest) -> None:
        self.count += 1
        self.successes += step.succeeded
        self.all_scanner = self.all_scanner and step.by_scanner
        if _when(step) < _when(self.first):
            self.first = step
        if step.status.startswith("2") and not step.by_scanner and (
                self.first_answered is None or _when(step) < _when(self.first_answered)):
            self.first_answered = step
        self.earliest.append(step)
        if len(self.earliest) > 2 * CHAIN_SHOWN:
            self._trim()

    def merge(self, other: _Chain) -> None:
        """Take in the chain read after this one (ties in time keep reading order)."""
        self.count += other.count
        self.successes += other.successes
        self.all_scanner = self.all_scanner and other.all_scanner
        if _when(other.first) < _when(self.first):
            self.first = other.first
        theirs = other.first_answered
        if theirs is not None and (self.first_answered is None
                                   or _when(theirs) < _when(self.first_answered)):
            self.first_answered = theirs
        self._trim()
        other._trim()
        self.earliest += other.earliest
        self._trim()

    def _trim(self) -> None:
        self.earliest.sort(key=_when)  # stable: equal times stay in reading order
        del self.earliest[CHAIN_SHOWN:]


class ProxyLogonSsrf(Check):
    id = "proxylogon.ssrf"
    title = "ProxyLogon: forged requests reached the Exchange back end"
    severity = Severity.CRITICAL
    stage = Stage.EXPLOIT
    cves = ("CVE-2021-26855",)
    kinds = frozenset({RecordKind.HTTPPROXY})
    literals = (_SSRF["anchor_prefix"], _SSRF["cookie_prefix"])

    def __init__(self, context: HuntContext) -> None:
        super().__init__(context)
        self._by_client: dict[str, _Chain] = {}

    def feed(self, record: LogRecord) -> Iterable[Finding]:
        forged = forged_request(record)
        if forged is not None:
            client = record.get("ClientIpAddress") or "unknown"
            self._by_client.setdefault(client, _Chain(forged)).add(forged)
        return ()

    def merge(self, other: Self) -> None:
        for client, chain in other._by_client.items():
            if client in self._by_client:
                self._by_client[client].merge(chain)
            else:
                self._by_client[client] = chain

    def finalize(self) -> Iterable[Finding]:
        for client, chain in sorted(self._by_client.items()):
            chain._trim()
            yield self._judge(client, chain)

    def _judge(self, client: str, chain: _Chain) -> Finding:
        steps = chain.earliest
        text = "\n".join(step.describe() for step in steps)
        if chain.count > len(steps):
            text += f"\n... {chain.count - len(steps)} more"
        ip = None if client == "unknown" else client
        if chain.successes and chain.first_answered is not None:
            # In a chain that got through, its first answered step (the autodiscover leak
            # that precedes the rest) is where the exploitation began.
            return self.finding(
                chain.first_answered.record,
                f"{chain.successes} of {chain.count} forged requests from {client} "
                f"succeeded:\n{text}",
                client_ip=ip,
            )
        first = chain.first
        if chain.all_scanner:
            return self.finding(
                first.record,
                f"{chain.count} scanner probes (target localhost) from {client}:\n{text}",
                title="ProxyLogon scanner probe (no effect)",
                severity=Severity.LOW,
                stage=Stage.PROBE,
                client_ip=ip,
            )
        return self.finding(
            first.record,
            f"{chain.count} forged requests from {client}, none answered with success:\n{text}",
            title="Failed ProxyLogon attempt",
            severity=Severity.MEDIUM,
            stage=Stage.PROBE,
            client_ip=ip,
        )


class ProxyLogonVdirReset(Check):
    id = "proxylogon.vdir-reset"
    title = "ProxyLogon: a virtual directory reset wrote a file (the web shell)"
    severity = Severity.CRITICAL
    stage = Stage.BACKDOOR
    cves = ("CVE-2021-26855", "CVE-2021-27065")
    kinds = frozenset({RecordKind.HTTPPROXY})
    literals = (_SSRF["anchor_prefix"],)

    def feed(self, record: LogRecord) -> Iterable[Finding]:
        forged = forged_request(record)
        if forged is None or forged.by_scanner:
            return
        path = forged.path
        if "reset" in path and path.endswith(_SSRF["reset_marker"]) and forged.status == "200":
            yield self.finding(
                record,
                f"{record.get('ClientIpAddress')} reset a virtual directory through the forged "
                f"request {record.get('AnchorMailbox')} (HTTP 200): the reset writes the "
                "directory's settings, script included, to a file of the attacker's choosing",
                client_ip=record.get("ClientIpAddress") or None,
            )


class ProxyLogonVdirScript(Check):
    """Set-*VirtualDirectory with markup in a URL (CVE-2021-27065), and the resets that follow."""

    id = "proxylogon.vdir-script"
    title = "ProxyLogon: a virtual directory URL was set to carry script"
    severity = Severity.HIGH
    stage = Stage.EXPLOIT
    cves = ("CVE-2021-27065",)
    kinds = frozenset({RecordKind.ECP_SERVER, RecordKind.EVENT})
    literals = (_PL["vdir"]["cmd_suffix"],)
    events = EventSelection(providers=frozenset(_PL["vdir"]["management_providers"]))

    def feed(self, record: LogRecord) -> Iterable[Finding]:
        if record.kind is RecordKind.ECP_SERVER:
            cmdlet = record.get("Cmdlet")
            params = {k[6:]: v for k, v in record.fields.items() if k.startswith("Param.")}
            failed = bool(record.get("S:EX").strip())
        elif record.get("Provider") in _PL["vdir"]["management_providers"]:
            cmdlet, params = record.get("Data[0]"), {"parameters": record.get("Data[1]")}
            failed = record.get("EventID") == "6"
        else:
            return
        yield from self._judge(record, cmdlet, params, failed)

    def _judge(
        self, record: LogRecord, cmdlet: str, params: dict[str, str], failed: bool
    ) -> Iterable[Finding]:
        vdir = _PL["vdir"]
        name = cmdlet.lower()
        if not name.endswith(vdir["cmd_suffix"].lower()):
            return
        if name.startswith(vdir["set_cmd_prefix"].lower()):
            scripted = [k for k, v in params.items() if "url" in k.lower() or k == "parameters"
                        if _MARKUP.search(v)]
            if scripted and not failed:
                yield self.finding(record, _quote_cmd(cmdlet, params))
            elif scripted:
                yield self.finding(
                    record, _quote_cmd(cmdlet, params), title="Failed attempt to set script "
                    "into a virtual directory URL", severity=Severity.MEDIUM, stage=Stage.PROBE,
                )
        elif name.startswith(vdir["reset_cmd_prefix"].lower()) and not failed:
            target = params.get("FilePathName") or _path_in(params.get("parameters", ""))
            if target:
                yield self.finding(
                    record,
                    _quote_cmd(cmdlet, params),
                    title="A virtual directory reset wrote its settings to a file (web shell)",
                    severity=Severity.CRITICAL,
                    stage=Stage.BACKDOOR,
                    webshell_path=target,
                )


class ProxyLogonOabDownload(Check):
    id = "proxylogon.oab-download"
    title = "ProxyLogon: a file was written outside the OAB folder (probable web shell)"
    severity = Severity.CRITICAL
    stage = Stage.BACKDOOR
    cves = ("CVE-2021-26858",)
    kinds = frozenset({RecordKind.OAB_GENERATOR})
    literals = (_PL["oab"]["download_failed"],)

    def feed(self, record: LogRecord) -> Iterable[Finding]:
        match = _DOWNLOAD_FAILED.search(record.get("_raw"))
        if match is None:
            return
        path = match.group(1).strip().strip("'\"")
        if not path or _inside_oab_folder(path):
            return
        yield self.finding(
            record,
            f"The OAB generator wrote and failed to remove '{path}': outside "
            "ClientAccess\\OAB, where CVE-2021-26858 lets an attacker write any file",
            webshell_path=path,
        )


class UnifiedMessagingCrash(Check):
    id = "proxylogon.um-crash"
    title = "ProxyLogon: the Unified Messaging service crashed on a crafted request"
    severity = Severity.HIGH
    stage = Stage.EXPLOIT
    cves = ("CVE-2021-26857",)
    kinds = frozenset({RecordKind.EVENT})
    literals = (_PL["um"]["marker"],)
    events = EventSelection(providers=frozenset({_PL["um"]["provider"]}))

    def feed(self, record: LogRecord) -> Iterable[Finding]:
        um = _PL["um"]
        if record.get("Provider").lower() != um["provider"].lower():
            return
        if record.get("Level") != um["level"] or um["marker"] not in record.get("Message"):
            return
        yield self.finding(record, record.get("Message"))


def _inside_oab_folder(path: str) -> bool:
    normal = ntpath.normpath(path.replace("/", "\\")).lower()
    return (_PL["oab"]["legit_folder"].lower() + "\\") in normal + "\\"


def _path_in(text: str) -> str:
    match = re.search(r"FilePathName\W+([^'\"]+?\.\w{2,5})", text, re.IGNORECASE)
    return match.group(1) if match else ""


def _quote_cmd(cmdlet: str, params: dict[str, str]) -> str:
    shown = " ".join(f"-{k} {v!r}" for k, v in params.items())
    return f"{cmdlet} {shown}".strip()
