"""Checks judge records and never parse. A check registers itself by being defined.

A check names the record kinds it reads and the literals that a line must hold
for it to matter (the prefilter runs those before any line is parsed). `feed`
sees each record; `finalize` sees the whole picture once every record was fed,
for judgements over many records (an attacker's chain, a shell used later).

Log checks run where the bytes are read: each worker feeds its own instance with the
lines of a run of artifacts, and the hunt `merge`s those instances, in listing order,
into the one it finalizes. A check that keeps state across records must merge it as if
it had been fed every record itself, and keep it bounded by what it tracks (clients,
pages, accounts), never by lines.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Self

from exhunt.model import Finding, LogRecord, RecordKind, Severity, Stage
from exhunt.readers.events import EventSelection
from exhunt.share.imported import LogIndicators

_REGISTRY: dict[str, type[Check]] = {}
MAX_EVIDENCE_CHARS = 2000
MAX_ACCOUNT_CHARS = 256


@dataclass(slots=True)
class HuntContext:
    """What checks may know about the server besides its records."""

    exchange_roots: list[str] = field(default_factory=list)
    shells_named: dict[str, Finding] = field(default_factory=dict)
    # Indicators given with --iocs (STIX, MISP) that log lines are matched against.
    log_iocs: LogIndicators = field(default_factory=LogIndicators)
    sigma_dirs: tuple[str, ...] = ()  # --sigma folders (checks/sigma.py)


class Check(ABC):
    id: ClassVar[str]
    title: ClassVar[str]
    severity: ClassVar[Severity]
    stage: ClassVar[Stage]
    cves: ClassVar[tuple[str, ...]] = ()
    kinds: ClassVar[frozenset[RecordKind]]
    # Lines without any of these (case-insensitive) never reach the check.
    # None means the check must see every record of its kinds.
    literals: ClassVar[tuple[str, ...] | None] = ()
    # Patterns (written as literals are) of text in which a hit of the literals does not
    # count, such as a page the product serves all day: a line whose every hit is inside
    # one is never parsed for this check.
    quiet: ClassVar[tuple[str, ...]] = ()
    # The events (kind EVENT) `feed` can act on; .evtx records outside every check's
    # selection are not decoded. None: every event.
    events: ClassVar[EventSelection | None] = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "__abstractmethods__", None):
            return
        if cls.id in _REGISTRY and _REGISTRY[cls.id] is not cls:
            raise TypeError(f"two checks share the id {cls.id!r}")
        _REGISTRY[cls.id] = cls

    def __init__(self, context: HuntContext) -> None:
        self.context = context

    @classmethod
    def wants_line(cls, line: bytes) -> bool:
        """A cheap necessary condition on a raw log line holding one of the literals, asked
        before any record is built: False means `feed` would do nothing with it. A line
        none of its checks wants is never parsed."""
        del line
        return True

    def quiet_after_files(self) -> tuple[str, ...]:
        """`quiet`, or less when the files fed to this instance first (the file stage runs
        before the logs) give a reason to read those lines after all."""
        return self.quiet

    @abstractmethod
    def feed(self, record: LogRecord) -> Iterable[Finding]:
        """Findings that one record shows on its own (often none)."""

    def finalize(self) -> Iterable[Finding]:
        """Findings over everything fed."""
        return ()

    def merge(self, other: Self) -> None:
        """Take in the state `other` built from records listed after those fed to this one.

        Checks that keep nothing between records (their findings come from `feed`) need not
        override it.
        """
        del other  # nothing kept between records

    def finding(
        self,
        record: LogRecord | None,
        evidence: str,
        *,
        title: str | None = None,
        severity: Severity | None = None,
        stage: Stage | None = None,
        timestamp: datetime | None = None,
        client_ip: str | None = None,
        webshell_path: str | None = None,
    ) -> Finding:
        return Finding(
            check=self.id,
            title=title or self.title,
            severity=self.severity if severity is None else severity,
            stage=self.stage if stage is None else stage,
            cves=self.cves,
            timestamp=timestamp if timestamp is not None or record is None else record.timestamp,
            artifact=record.artifact if record else "",
            line=record.line if record else None,
            evidence=bound(evidence),
            client_ip=client_ip,
            webshell_path=webshell_path,
            account=account_of(record) if record is not None else None,
        )


# Where a record names who acted, in order: an event's subject (Security), Sysmon's user, the
# web request's authenticated user (IIS, Exchange's HttpProxy).
_ACCOUNT_FIELDS = (("Data.SubjectUserName", "Data.SubjectDomainName"), ("Data.User", ""),
                   ("Data.SourceUser", ""), ("cs-username", ""), ("AuthenticatedUser", ""))


def account_of(record: LogRecord) -> str | None:
    """The account a record says acted (`CORP\\eve`, `eve@corp.example`), or None."""
    for name, domain in _ACCOUNT_FIELDS:
        value = record.get(name).strip()
        if value and value != "-":
            where = record.get(domain).strip() if domain else ""
            account = f"{where}\\{value}" if where and where != "-" else value
            return account[:MAX_ACCOUNT_CHARS]
    return None


def registered_checks() -> Iterator[type[Check]]:
    # Importing the families defines (and so registers) their checks.
    from exhunt.checks import families  # noqa: F401

    yield from (_REGISTRY[key] for key in sorted(_REGISTRY))


def bound(text: str, limit: int = MAX_EVIDENCE_CHARS) -> str:
    """Evidence is quoted, never unbounded: a hostile line may be megabytes long."""
    return text if len(text) <= limit else text[: limit - 12] + " [truncated]"
