"""What hunts know that is worth sharing, in one neutral shape every format writes from.

`gather(reports)` walks the findings once and keeps, for each observable (an attacker's
address, a shell's hash, name or URL path, a user agent), when and on which server it was
seen; the CVEs seen exploited; and, with several servers, the shared-infrastructure clusters
of the fleet summary. Internal addresses are kept (a timeline wants them) but are never
indicators: they repeat across organisations by chance and may be the victim's own.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from exhunt.hunt.fleet import (
    IP,
    SHELL_NAME,
    USER_AGENT,
    finding_indicators,
    fleet_summary,
    is_internal,
)
from exhunt.hunt.verdict import EXPLOITATION_STAGES, counts
from exhunt.model import Finding, HuntReport
from exhunt.share.options import ShareOptions

__all__ = ["ShareOptions"]  # with the facts, for the writers

# The kinds of observable exhunt shares and reads back (one vocabulary for every format).
IPV4 = "ipv4"
IPV6 = "ipv6"
SHA256 = "sha256"
FILE_NAME = "file-name"
USER_AGENT_KIND = "user-agent"
URL_PATH = "url-path"
KINDS = (IPV4, IPV6, SHA256, FILE_NAME, USER_AGENT_KIND, URL_PATH)
# Nothing in the evidence carries a date: exported objects still need one, and the same one.
NO_DATE = datetime(2021, 1, 1, tzinfo=UTC)
# How the web-shell checks quote a file's hash in their evidence.
_SHA256_IN_EVIDENCE = re.compile(r"\bsha256 ([0-9a-fA-F]{64})\b")


@dataclass(slots=True)
class Seen:
    """When, and in how many findings, one thing was seen on one server."""

    first: datetime | None = None
    last: datetime | None = None
    findings: int = 0

    def add(self, when: datetime | None) -> None:
        self.findings += 1
        if when is None:
            return
        when = utc(when)
        self.first = when if self.first is None or when < self.first else self.first
        self.last = when if self.last is None or when > self.last else self.last

    def merge(self, other: Seen) -> None:
        self.findings += other.findings
        for when in (other.first, other.last):
            if when is not None:
                self.first = when if self.first is None or when < self.first else self.first
                self.last = when if self.last is None or when > self.last else self.last


@dataclass(slots=True)
class Observable:
    kind: str
    value: str
    indicator: bool  # an attacker's: worth matching elsewhere (to_ids, a STIX indicator)
    on: dict[int, Seen] = field(default_factory=dict)  # server number -> sightings there
    checks: set[str] = field(default_factory=set)
    shell: bool = False  # names a web shell (its hash, name or URL)
    exploiting: bool = False  # in a finding of exploitation or later, not only probing

    @property
    def seen(self) -> Seen:
        total = Seen()
        for seen in self.on.values():
            total.merge(seen)
        return total


@dataclass(frozen=True, slots=True)
class Server:
    number: int
    source: str
    name: str | None
    build: str | None
    verdict: str


@dataclass(slots=True)
class Cluster:
    """Servers that share infrastructure (fleet summary), with the indicators linking them."""

    number: int
    servers: list[int]
    indicators: list[tuple[str, str]]  # (kind, value) in this module's vocabulary
    first_exploitation: str | None


@dataclass(slots=True)
class Facts:
    servers: list[Server]
    observables: dict[tuple[str, str], Observable]
    cves: dict[str, dict[int, Seen]]  # CVE seen exploited -> server number -> when
    clusters: list[Cluster]
    latest: datetime | None  # the newest time in the evidence: the bundles' own date

    def sorted_observables(self) -> list[Observable]:
        return [self.observables[key] for key in sorted(self.observables)]


def utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def address_kind(value: str) -> str | None:
    try:
        return IPV4 if ipaddress.ip_address(value).version == 4 else IPV6
    except ValueError:
        return None


def gather(reports: Sequence[HuntReport]) -> Facts:
    """Observables, exploited CVEs and (with several servers) clusters of these hunts."""
    facts = Facts(
        servers=[Server(i, r.source, r.host.name, r.host.exchange_build, r.verdict.label)
                 for i, r in enumerate(reports)],
        observables={}, cves={}, clusters=[], latest=None,
    )
    for number, report in enumerate(reports):
        for finding in report.findings:
            if counts(finding):
                _note_finding(facts, number, finding)
        for coverage in report.coverage.values():
            if coverage.last is not None:
                _later(facts, coverage.last)
    if len(reports) > 1:
        facts.clusters = _clusters(fleet_summary(reports), reports)
    return facts


def _later(facts: Facts, when: datetime) -> None:
    when = utc(when)
    if facts.latest is None or when > facts.latest:
        facts.latest = when


def _note_finding(facts: Facts, number: int, finding: Finding) -> None:
    if finding.timestamp is not None:
        _later(facts, finding.timestamp)
    for kind, value, indicator, shell in _observed(finding):
        key = (kind, value)
        item = facts.observables.setdefault(key, Observable(kind, value, indicator))
        item.on.setdefault(number, Seen()).add(finding.timestamp)
        item.checks.add(finding.check)
        item.shell = item.shell or shell
        item.exploiting = item.exploiting or finding.stage in EXPLOITATION_STAGES
    if finding.stage in EXPLOITATION_STAGES:
        for cve in finding.cves:
            facts.cves.setdefault(cve, {}).setdefault(number, Seen()).add(finding.timestamp)


def _observed(finding: Finding) -> list[tuple[str, str, bool, bool]]:
    """(kind, value, is an indicator, names a shell) for everything one finding names."""
    out: list[tuple[str, str, bool, bool]] = []
    shell = bool(finding.webshell_path)
    for found in sorted(finding_indicators(finding)):
        if found.kind == IP:
            kind = address_kind(found.value)
            if kind is not None:
                out.append((kind, found.value, not is_internal(found.value), False))
        elif found.kind == USER_AGENT:
            out.append((USER_AGENT_KIND, found.value, True, False))
        elif found.kind == SHELL_NAME:
            out.append((FILE_NAME, found.value, True, True))
    path = (finding.webshell_path or "").strip()
    if path.startswith("/"):
        out.append((URL_PATH, path.lower(), True, True))
    if shell:
        for digest in _SHA256_IN_EVIDENCE.findall(finding.evidence):
            out.append((SHA256, digest.lower(), True, True))
    return out


def _cluster_kind(kind: str, value: str) -> str | None:
    if kind == IP:
        return address_kind(value)
    return {USER_AGENT: USER_AGENT_KIND, SHELL_NAME: FILE_NAME}.get(kind)


def _clusters(summary: dict[str, Any], reports: Sequence[HuntReport]) -> list[Cluster]:
    index = {r.source: i for i, r in enumerate(reports)}
    out: list[Cluster] = []
    for cluster in summary["clusters"]:
        linked: list[tuple[str, str]] = []
        for item in cluster["indicators"]:
            kind = _cluster_kind(item["kind"], item["value"])
            if kind is not None:
                value = item["value"].lower() if kind == FILE_NAME else item["value"]
                linked.append((kind, value))
        out.append(Cluster(cluster["id"], [index[s] for s in cluster["servers"]],
                           sorted(set(linked)), cluster["first_exploitation"]))
    return out
