"""Back doors on disk, and their use: judge the file stage's FILE records.

One finding per suspect file, with a score and the reasons behind it (Loki-style: reasons add
up). Strong reasons stand alone: a known-bad hash, a shell family's rule, enough heuristic
traits, a script page in aspnet_client (CERT-LV: every file there is suspect). Weak reasons
(a name on a web-shell list, a hash in no known-good baseline) only make context alone: the
product itself ships pages with names attackers copied.

`webshell.reentry` joins the shells found on disk, and those the logs name but the disk no
longer holds ("a shell was here"), with the requests that reached them answered with success.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Self
from urllib.parse import unquote

from exhunt.checks.base import Check, HuntContext
from exhunt.checks.iis import SERVED_PAGES, Request, is_served_page, request_of
from exhunt.collect import web_relative
from exhunt.intel import indicators
from exhunt.model import FileFacts, Finding, LogRecord, PageTraits, RecordKind, Severity, Stage

_WS = indicators("webshell")
_SCORE = _WS["score"]
SCRIPT_EXTENSIONS: tuple[str, ...] = tuple(_WS["locations"]["script_extensions"])
_BUILTIN_HASHES: dict[str, str] = dict(_WS["known_bad_sha256"])
_PROXYSHELL_FOLDERS = frozenset(_WS["names"]["proxyshell_programdata_folders"])


@dataclass(frozen=True, slots=True)
class Scores:
    """A typed view of `[score]` in intel/data/webshell.toml: severity steps and weights."""

    critical: int
    high: int
    medium: int
    low: int
    report: int
    known_bad_hash: int
    hash_ioc_default: int
    aspnet_client_script: int
    aspnet_client_other: int
    no_baseline_match: int
    heuristic_cap: int
    rule_default: int
    name_alone_cap: int

    @classmethod
    def load(cls) -> Scores:
        return cls(**{k: int(v) for k, v in _SCORE.items()})

    def severity(self, score: int) -> Severity | None:
        """The severity a score reaches, or None below the reporting floor."""
        for step, level in ((self.critical, Severity.CRITICAL), (self.high, Severity.HIGH),
                            (self.medium, Severity.MEDIUM), (self.low, Severity.LOW)):
            if score >= step:
                return level
        return Severity.INFO if score >= self.report else None


SCORES = Scores.load()


@dataclass(frozen=True, slots=True)
class PageWeights:
    """A typed view of `[page.weights]` in intel/data/webshell.toml."""

    capability: dict[str, int]
    tainted: int
    tainted_sql: int
    tainted_file_write: int
    tainted_file_read: int
    obfuscation: int
    obfuscation_cap: int
    directive_handler_without_type: int
    jscript_page: int
    embedded_program: int
    guard: int

    @classmethod
    def load(cls) -> PageWeights:
        raw = {k: int(v) for k, v in _WS["page"]["weights"].items()}
        capabilities = {name: raw.pop(name) for name in _WS["page"]["capabilities"]}
        return cls(capability=capabilities, **raw)


WEIGHTS = PageWeights.load()
# What each capability means to a responder (reasons are read by people).
CAPABILITY_WORDS = {
    "process": "starts processes", "powershell": "runs PowerShell in-process",
    "eval": "evaluates code (eval)", "compile": "compiles code at run time",
    "reflection": "loads or invokes assemblies by reflection", "file_write": "writes files",
    "file_browse": "lists, reads or sends files", "sql": "talks to databases",
    "socket": "opens raw sockets", "crypto_channel": "decrypts what it is sent",
}
INPUT_WORDS = {"request": "the request", "upload": "uploaded files",
               "web_method": "web-method arguments", "form_control": "form fields"}
# Capabilities the sender steers: no guard makes them harmless.
_STEERED = frozenset({"process", "powershell", "eval", "compile", "reflection", "sql_raw",
                      "file_path", "file_read_path"})


def page_score(page: PageTraits | None) -> tuple[int, list[str]]:
    """One score for what a server page can do, with its reasons (capped: never critical)."""
    if page is None:
        return 0, []
    score = 0
    reasons: list[str] = []
    if page.server_code:
        for name in page.capabilities:
            weight = WEIGHTS.capability.get(name, 0)
            fed = name in page.tainted
            if fed:
                weight += WEIGHTS.tainted
            score += weight
            reasons.append(f"{CAPABILITY_WORDS.get(name, name)}"
                           f"{' fed by ' + _inputs(page) if fed else ''} (+{weight})")
        if "sql_raw" in page.tainted:
            score += WEIGHTS.tainted_sql
            reasons.append(f"runs SQL text taken from {_inputs(page)} (+{WEIGHTS.tainted_sql})")
        if "file_path" in page.tainted:
            score += WEIGHTS.tainted_file_write
            reasons.append(f"writes where {_inputs(page)} says (+{WEIGHTS.tainted_file_write})")
        if "file_read_path" in page.tainted:
            score += WEIGHTS.tainted_file_read
            reasons.append(f"lists, reads or sends what {_inputs(page)} names "
                           f"(+{WEIGHTS.tainted_file_read})")
        if page.guarded and not _STEERED & set(page.tainted):
            score += WEIGHTS.guard
            reasons.append(f"checks its caller or input ({WEIGHTS.guard})")
        if "reflection" in page.capabilities and any(
                kind.startswith("embedded program") for kind in page.obfuscation):
            score += WEIGHTS.embedded_program
            reasons.append(f"loads a program it carries (+{WEIGHTS.embedded_program})")
        if page.language == "jscript":
            score += WEIGHTS.jscript_page
            reasons.append(f"server code in JScript (+{WEIGHTS.jscript_page})")
    if page.obfuscation and (page.server_code or page.directive):
        weight = min(WEIGHTS.obfuscation * len(page.obfuscation), WEIGHTS.obfuscation_cap)
        score += weight
        reasons.append(f"hidden: {', '.join(page.obfuscation)} (+{weight})")
    if page.directive == "-" and page.handler_class:
        score += WEIGHTS.directive_handler_without_type
        reasons.append(f"directive names class {page.handler_class} but no WebHandler or "
                       f"WebService (+{WEIGHTS.directive_handler_without_type})")
    return max(0, min(score, SCORES.heuristic_cap)), reasons


def _inputs(page: PageTraits) -> str:
    return " or ".join(INPUT_WORDS.get(name, name) for name in page.inputs) or "input"


@dataclass(slots=True)
class FileJudgement:
    """What one file adds up to."""

    score: int = 0
    strong: list[str] = field(default_factory=list)
    weak: list[str] = field(default_factory=list)
    family: str = ""

    @property
    def severity(self) -> Severity | None:
        return SCORES.severity(self.score)

    @property
    def reasons(self) -> list[str]:
        return self.strong + self.weak


def is_script(path: str) -> bool:
    return path.lower().endswith(SCRIPT_EXTENSIONS)


def in_aspnet_client(path: str) -> bool:
    return "/aspnet_client/" in "/" + path.lower().replace("\\", "/")


def judge_file(record: LogRecord) -> FileJudgement:
    """Combine a FILE record's signals into one score with reasons."""
    path = record.get("path") or record.artifact
    verdict = FileJudgement()
    if not _has_signal(record, path):
        return verdict  # the common case: a file with nothing to add up
    hash_ioc = record.get("hash_ioc")
    sha = record.get("sha256")
    strong_score = 0
    if sha and sha in _BUILTIN_HASHES and not hash_ioc:
        hash_ioc = _BUILTIN_HASHES[sha]
    if hash_ioc:
        weight = SCORES.known_bad_hash if sha in _BUILTIN_HASHES else SCORES.hash_ioc_default
        strong_score = max(strong_score, weight)
        verdict.strong.append(f"known-bad hash: {hash_ioc}")
        verdict.family = verdict.family or hash_ioc
    elif record.get("baseline") == "known-good":
        return verdict  # a file Microsoft shipped for some build: nothing to add up
    facts = record.facts or FileFacts()
    hits = facts.rules
    families = sorted((h for h in hits if h.kind != "heuristic"), key=lambda h: -h.score)
    for hit in families:
        verdict.strong.append(f"rule {hit.name} ({hit.family}, {hit.score})")
    if families:
        strong_score = max(strong_score, families[0].score) + 5 * (len(families) - 1)
        verdict.family = verdict.family or families[0].family
    traits = [h for h in hits if h.kind == "heuristic"]
    if traits:
        total = min(sum(h.score for h in traits), SCORES.heuristic_cap)
        verdict.strong.append("unknown-shell traits: " + ", ".join(
            f"{h.name.removeprefix('exhunt_h_').replace('_', ' ')} ({h.score})" for h in traits))
        strong_score = max(strong_score, total) if strong_score else total
        verdict.family = verdict.family or "unknown web shell (heuristic)"
    page, why = page_score(facts.page)
    if page >= SCORES.medium:
        verdict.strong.append(f"what the page can do, score {page}: " + "; ".join(why))
        strong_score = max(strong_score, page) if strong_score else page
        verdict.family = verdict.family or "unknown web shell (what the page can do)"
    if in_aspnet_client(path) and record.get("zone") == "web":
        if is_script(path):
            strong_score += SCORES.aspnet_client_script
            verdict.strong.append("script page in aspnet_client, where Exchange keeps none "
                                  "(CERT-LV: every file there is suspect)")
        else:
            verdict.weak.append("file in aspnet_client (CERT-LV: every file there is suspect)")
    staging = proxyshell_folder(path)
    if staging and is_script(path):
        strong_score += SCORES.aspnet_client_script
        verdict.strong.append(f"script page in ProgramData\\{staging}, a folder ProxyShell "
                              "intruders served shells from")
    weak_score, weak_kinds = _weak(record, path, verdict)
    if 0 < page < SCORES.medium and (strong_score or weak_kinds):
        # A page that can do a little is ordinary on its own; it adds to other signs.
        verdict.weak.append(f"what the page can do, score {page}: " + "; ".join(why))
        weak_score += page
        weak_kinds += 1
    if strong_score:
        verdict.score = min(strong_score + weak_score, 200)
    elif weak_kinds >= 2:
        verdict.score = min(weak_score, SCORES.low + 15)
    else:
        verdict.score = min(weak_score, SCORES.name_alone_cap + 10)
    return verdict


def proxyshell_folder(path: str) -> str | None:
    """The ProgramData folder name when a file sits in one ProxyShell intruders used."""
    parts = path.lower().replace("\\", "/").split("/")
    for i, part in enumerate(parts[:-1]):
        if part == "programdata" and i + 2 <= len(parts) - 1:
            folder = parts[i + 1]
            return folder if folder in _PROXYSHELL_FOLDERS else None
    return None


def _has_signal(record: LogRecord, path: str) -> bool:
    fields = record.fields
    facts = record.facts or FileFacts()
    return bool(facts.rules or facts.names or page_score(facts.page)[0]
                or fields.get("hash_ioc") or fields.get("baseline") == "unknown"
                or fields.get("sha256") in _BUILTIN_HASHES
                or in_aspnet_client(path) or proxyshell_folder(path) is not None)


def _weak(record: LogRecord, path: str, verdict: FileJudgement) -> tuple[int, int]:
    score = 0
    kinds = 0
    names = (record.facts or FileFacts()).names
    if names:
        best = max(names, key=lambda hit: (hit.score, hit.label))
        score += max(0, min(best.score, 100))
        kinds += 1
        verdict.weak.append(best.label)
    if record.get("baseline") == "unknown" and is_script(path):
        score += SCORES.no_baseline_match
        kinds += 1
        verdict.weak.append("in no known-good baseline (not a file Microsoft shipped)")
    elif record.get("baseline") == "unknown":
        score += 10
        verdict.weak.append("in no known-good baseline")
    if in_aspnet_client(path) and not is_script(path) and record.get("zone") == "web":
        score += SCORES.aspnet_client_other
    return score, kinds


def _evidence(record: LogRecord, judgement: FileJudgement) -> str:
    lines = [f"{record.get('path') or record.artifact}: score {judgement.score}"]
    lines.extend(f"- {reason}" for reason in judgement.reasons)
    facts = [f"size {record.get('size')}", f"modified {record.get('mtime') or '?'}"]
    if record.get("sha256"):
        facts.append(f"sha256 {record.get('sha256')}")
    if record.get("header") and record.get("header") not in ("text",):
        facts.append(f"header {record.get('header')}")
    lines.append(", ".join(facts))
    if record.get("note"):
        lines.append(f"note: {record.get('note')}")
    if record.get("unreadable"):
        lines.append(f"could not be read: {record.get('unreadable')}")
    return "\n".join(lines)


class WebShellFile(Check):
    id = "webshell.file"
    title = "Web shell on disk"
    severity = Severity.HIGH
    stage = Stage.BACKDOOR
    cves = ()
    kinds = frozenset({RecordKind.FILE})
    literals = None

    def feed(self, record: LogRecord) -> Iterable[Finding]:
        path = record.get("path") or record.artifact
        if record.get("zone") != "web" and not is_script(path) and not (
                record.facts and record.facts.rules):
            return  # ProgramData & co.: only pages and rule hits (ProxyShell shells) count here
        judgement = judge_file(record)
        severity = judgement.severity
        if severity is None:
            return
        title = f"Web shell on disk: {judgement.family}" if judgement.strong else (
            "File with weak web-shell signs (context)")
        yield self.finding(record, _evidence(record, judgement), title=title, severity=severity,
                           webshell_path=path if judgement.strong else None)


# -- re-entry -------------------------------------------------------------------------------


def url_path(disk_path: str) -> str | None:
    """The URL path (lower case) a web file is served at, or None when it is not served.

    inetpub/wwwroot/aspnet_client/x.aspx -> /aspnet_client/x.aspx;
    FrontEnd/HttpProxy/owa/auth/x.aspx -> /owa/auth/x.aspx; ClientAccess/ecp/x -> /ecp/x.
    """
    relative = web_relative(disk_path)
    if relative is None:
        return None
    parts = relative.split("/")
    low = parts[0].lower()
    if low == "frontend":
        rest = parts[2:]
    elif low == "clientaccess":
        rest = parts[1:]
    else:  # inetpub/wwwroot
        rest = parts[2:]
    if not rest:
        return None
    return "/" + "/".join(rest).lower()


def request_key(request: Request) -> str:
    return unquote(request.path).lower().replace("\\", "/")


@dataclass(slots=True)
class _Use:
    first: Request
    count: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    statuses: set[str] = field(default_factory=set)
    agents: dict[str, None] = field(default_factory=dict)  # the first five, in reading order

    def add(self, request: Request) -> None:
        self.count += 1
        self.statuses.add(request.status)
        if len(self.agents) < 5:
            self.agents.setdefault(request.agent)
        when = request.record.timestamp
        if when is not None:
            if self.first_at is None or when < self.first_at:
                self.first_at = when
                self.first = request
            if self.last_at is None or when > self.last_at:
                self.last_at = when

    def merge(self, other: _Use) -> None:
        """Take in the uses read after this one's (the hunt reads logs in parallel)."""
        self.count += other.count
        self.statuses |= other.statuses
        for agent in other.agents:
            if len(self.agents) < 5:
                self.agents.setdefault(agent)
        if other.first_at is not None and (self.first_at is None
                                           or other.first_at < self.first_at):
            self.first_at, self.first = other.first_at, other.first
        if other.last_at is not None and (self.last_at is None or other.last_at > self.last_at):
            self.last_at = other.last_at


@dataclass(frozen=True, slots=True)
class _Shell:
    path: str
    why: str
    on_disk: bool


class WebShellReentry(Check):
    id = "webshell.reentry"
    title = "A web shell found on disk was used: requests reached it and were answered"
    severity = Severity.CRITICAL
    stage = Stage.REENTRY
    cves = ()
    kinds = frozenset({RecordKind.FILE, RecordKind.IIS, RecordKind.HTTPPROXY})
    # Requests worth parsing: script pages, as the request-trail check selects them (Outlook
    # on the web calls service.svc and Outlook calls Exchange.asmx on every click).
    literals = tuple(indicators("proxylogon")["webshell_urls"]["request_prefilter"])
    # Exchange's own pages (OWA logon, ECP) are not tallied: most of a busy server's script
    # requests, and a shell only when the file behind one was judged so (quiet_after_files).
    quiet = SERVED_PAGES

    def __init__(self, context: HuntContext) -> None:
        super().__init__(context)
        self._uses: dict[tuple[str, str], _Use] = {}
        self._on_disk: dict[str, _Shell] = {}
        self._files_seen: set[str] = set()
        self._files_scanned = False

    def feed(self, record: LogRecord) -> Iterable[Finding]:
        if record.kind is RecordKind.FILE:
            self._file(record)
            return ()
        request = request_of(record)
        if request is None or not request.answered_ok:
            return ()
        key = request_key(request)
        if not key.endswith(SCRIPT_EXTENSIONS):
            return ()
        self._uses.setdefault((key, request.client), _Use(request)).add(request)
        return ()

    def quiet_after_files(self) -> tuple[str, ...]:
        if any(is_served_page(url) for url in self._on_disk):
            return ()  # a page Exchange serves was replaced by a shell: read every request
        return self.quiet

    def merge(self, other: Self) -> None:
        """Uses of pages come from the log workers; files are fed to this instance."""
        for key, use in other._uses.items():
            if key in self._uses:
                self._uses[key].merge(use)
            else:
                self._uses[key] = use

    def _file(self, record: LogRecord) -> None:
        if record.get("zone") != "web":
            return
        self._files_scanned = True
        path = record.get("path") or record.artifact
        url = record.get("served_at").lower() or url_path(path)
        if url is None:
            return
        self._files_seen.add(url)
        judgement = judge_file(record)
        severity = judgement.severity
        if judgement.strong and severity is not None and severity >= Severity.LOW:
            self._on_disk[url] = _Shell(path, f"on disk, score {judgement.score} "
                                              f"({judgement.family})", True)

    def finalize(self) -> Iterable[Finding]:
        shells = dict(self._on_disk)
        for named, finding in sorted(self.context.shells_named.items()):
            url = url_path(named)
            if url is None or url in shells:
                continue
            gone = self._files_scanned and url not in self._files_seen
            where = ("no longer on disk" if gone else "on disk but not judged a shell"
                     if self._files_scanned else "web files not collected")
            shells[url] = _Shell(named, f"named by {finding.check} ({where})", False)
        for (url, client), use in sorted(self._uses.items()):
            shell = shells.get(url)
            if shell is None:
                continue
            yield self._used(url, client, use, shell)

    def _used(self, url: str, client: str, use: _Use, shell: _Shell) -> Finding:
        first = use.first
        text = (f"{use.count} requests from {client or '?'} to {first.path} answered "
                f"{', '.join(sorted(use.statuses))}, {use.first_at} to {use.last_at}; "
                f"user agents: {'; '.join(sorted(use.agents))}\n"
                f"the shell: {shell.path} ({shell.why})")
        title = self.title if shell.on_disk else (
            "A web shell named in the logs was used (a shell was here)")
        return self.finding(first.record, text, title=title, timestamp=use.first_at,
                            client_ip=client or None, webshell_path=shell.path)

