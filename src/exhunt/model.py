"""Plain typed records shared by every part: log records, findings, verdicts, reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum


class Severity(IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()


class Stage(StrEnum):
    PROBE = "probe"
    EXPLOIT = "exploit"
    BACKDOOR = "backdoor"
    REENTRY = "reentry"
    POST_EXPLOITATION = "post-exploitation"


class Verdict(IntEnum):
    """The verdict ladder: each step includes the one below."""

    CLEAN = 0
    PROBED = 1
    EXPLOITED = 2
    BACKDOORED = 3
    REENTERED = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: object) -> Verdict | None:
        """The verdict a report names (`backdoored`), or None for anything else."""
        if not isinstance(label, str) or not label.islower():
            return None
        return cls.__members__.get(label.upper())


VERDICT_LABELS = tuple(v.label for v in Verdict)


class HostState(StrEnum):
    """What the coordinator knows of one server, from least to most serious (see RANK).

    A host state is stored (the `hosts.state` column) and fed by every source, not only hunts;
    a verdict is what one hunt concluded. Where a hunt feeds the store, HOST_STATE_OF_VERDICT
    maps one onto the other: the names differ on purpose where the meaning differs (a probed
    server is a clean host; `backdoored` is stored as `backdoor`, a back door seen, which a
    Shadowserver webshell tag also reports without any hunt).
    """

    CLEAN = "clean"
    PATCHED = "patched"
    EXPOSED = "exposed"
    VULNERABLE = "vulnerable"
    EXPLOITED = "exploited"
    BACKDOOR = "backdoor"
    REENTERED = "reentered"


RANK: dict[HostState, int] = {state: rank for rank, state in enumerate(HostState)}
COMPROMISED = frozenset({HostState.EXPLOITED, HostState.BACKDOOR, HostState.REENTERED})

HOST_STATE_OF_VERDICT: dict[Verdict, HostState] = {
    Verdict.CLEAN: HostState.CLEAN,
    Verdict.PROBED: HostState.CLEAN,  # attempts that failed: no compromise found
    Verdict.EXPLOITED: HostState.EXPLOITED,
    Verdict.BACKDOORED: HostState.BACKDOOR,
    Verdict.REENTERED: HostState.REENTERED,
}


class Tlp(StrEnum):
    """Traffic Light Protocol levels an export can be marked with: FIRST TLP 2.0's four, and
    WHITE, TLP 1.0's name for CLEAR."""

    CLEAR = "clear"
    WHITE = "white"
    GREEN = "green"
    AMBER = "amber"
    RED = "red"


class RecordKind(StrEnum):
    """What a record was read from; checks name the kinds they read."""

    HTTPPROXY = "httpproxy"
    ECP_SERVER = "ecp-server"
    OAB_GENERATOR = "oab-generator"
    RPS_HTTP = "rps-http"
    RPS_CMDLET = "rps-cmdlet"
    IIS = "iis"
    EVENT = "event"
    FILE = "file"


@dataclass(frozen=True, slots=True)
class RuleHit:
    """One YARA rule that matched a file (its meta: kind family|heuristic, score 0-100)."""

    name: str
    kind: str
    score: int
    family: str


@dataclass(frozen=True, slots=True)
class NameHit:
    """A file's name or path on a web-shell list or filename IOC: a weak signal."""

    score: int
    label: str


@dataclass(frozen=True, slots=True)
class PageTraits:
    """What a server page can do, as read from its text (readers/page.py); never a judgement.

    directive: the type in `<%@ Type ... %>` (page, webhandler, webservice, control, ...), `-`
    for a directive with attributes only (`<%@ Language="C#" Class=... %>`), '' for none.
    capabilities: process, powershell, eval, compile, reflection, file_write, file_browse, sql,
    socket, crypto_channel (found in server-side code only). inputs: request, upload,
    web_method, form_control. tainted: capabilities whose call is reached by an input; `sql_raw`
    and `file_path` when the query or the path written is built from one.
    """

    directive: str = ""
    language: str = ""
    handler_class: str = ""
    server_code: bool = False
    capabilities: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    tainted: tuple[str, ...] = ()
    obfuscation: tuple[str, ...] = ()
    guarded: bool = False


@dataclass(frozen=True, slots=True)
class FileFacts:
    """The structured part of a FILE record: rule hits, name hits, and a page's traits."""

    rules: tuple[RuleHit, ...] = ()
    names: tuple[NameHit, ...] = ()
    page: PageTraits | None = None


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One line (or event) of a log, columns by the name its own header gives."""

    kind: RecordKind
    artifact: str
    line: int | None
    timestamp: datetime | None
    fields: Mapping[str, str]
    # FILE records only: what the file stage found, typed (hunt/files.py).
    facts: FileFacts | None = None

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    title: str
    severity: Severity
    stage: Stage
    cves: tuple[str, ...]
    timestamp: datetime | None
    artifact: str
    line: int | None
    evidence: str
    client_ip: str | None = None
    webshell_path: str | None = None
    # Context: a trace clean servers hold too (an admin added, a task); INFO until the same
    # hunt proves a compromise, then high (hunt/verdict.py, docs/verdict-ladder.md).
    context: bool = False
    # Who acted, as the record names it (an event's subject or user, IIS's cs-username): the
    # ladder ties post-exploitation by the same account (hunt/verdict.py).
    account: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "check": self.check,
            "title": self.title,
            "severity": self.severity.label,
            "stage": self.stage.value,
            "cves": list(self.cves),
            "timestamp": iso(self.timestamp),
            "artifact": self.artifact,
            "line": self.line,
            "evidence": self.evidence,
            "client_ip": self.client_ip,
            "webshell_path": self.webshell_path,
            "account": self.account,
        }


@dataclass(slots=True)
class KindCoverage:
    """How much of one log family was read, and the window it covers."""

    files: int = 0
    records: int = 0
    first: datetime | None = None
    last: datetime | None = None

    def add_window(self, first: datetime | None, last: datetime | None) -> None:
        if first is not None and (self.first is None or first < self.first):
            self.first = first
        if last is not None and (self.last is None or last > self.last):
            self.last = last

    def merge(self, other: KindCoverage) -> None:
        self.files += other.files
        self.records += other.records
        self.add_window(other.first, other.last)

    def to_json(self) -> dict[str, object]:
        return {
            "files": self.files,
            "records": self.records,
            "first": iso(self.first),
            "last": iso(self.last),
        }


@dataclass(frozen=True, slots=True)
class InputProblem:
    """Something in the input that could not be read; the run goes on."""

    artifact: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"artifact": self.artifact, "message": self.message}


@dataclass(slots=True)
class HostInfo:
    name: str | None = None
    exchange_build: str | None = None


@dataclass(slots=True)
class HuntReport:
    source: str
    host: HostInfo = field(default_factory=HostInfo)
    verdict: Verdict = Verdict.CLEAN
    first_exploitation: datetime | None = None
    coverage: dict[str, KindCoverage] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    errors: list[InputProblem] = field(default_factory=list)
    exchange_found: bool = False
    unreadable: bool = False
    # (relative path, sha256) of every web file, for stacking across servers of one build.
    web_files: list[tuple[str, str]] = field(default_factory=list)
    # Post-exploitation evidence not tied to an Exchange compromise: reported on its own,
    # with its own severity; it never moves the verdict (hunt/verdict.py).
    host_activity: list[Finding] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: object, name: str = "hunt report") -> tuple[HuntReport,
                                                                         list[InputProblem]]:
        """The report a hunt JSON object describes, and what of it was left out; raises
        contract.ContractError when it is none (exhunt/contract.py: bounded and lenient)."""
        from exhunt.contract import report_from_json

        return report_from_json(data, name)

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "host": {"name": self.host.name, "exchange_build": self.host.exchange_build},
            "verdict": self.verdict.label,
            "first_exploitation": iso(self.first_exploitation),
            "coverage": {kind: cov.to_json() for kind, cov in sorted(self.coverage.items())},
            "findings": [f.to_json() for f in self.findings],
            "errors": [e.to_json() for e in self.errors],
        }


def iso(value: datetime | None) -> str | None:
    """ISO-8601 UTC with a trailing Z, or None."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")
