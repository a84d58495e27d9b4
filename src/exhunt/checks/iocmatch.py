"""Requests that match indicators shared by others (`--iocs` with a STIX bundle or MISP event).

One finding per client address: its requests whose address, user agent or URL path is on the
imported lists. Contact by known-bad infrastructure is a probe at least; what it achieved is
judged by the other checks, which see the same requests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from exhunt.checks.base import Check, HuntContext
from exhunt.checks.iis import request_of
from exhunt.model import Finding, LogRecord, RecordKind, Severity, Stage
from exhunt.share.imported import normal_address, normal_agent, normal_path

MAX_CLIENTS = 10_000  # findings; beyond this the clients are counted in the last one


@dataclass(slots=True)
class _Matches:
    first: LogRecord
    requests: int = 0
    last: datetime | None = None
    why: dict[str, str] = field(default_factory=dict)  # what matched -> the list it came from
    agent: str = ""
    statuses: set[str] = field(default_factory=set)


class ImportedIndicatorMatch(Check):
    id = "ioc.request"
    title = "Requests matching indicators from an imported STIX bundle or MISP event"
    severity = Severity.MEDIUM
    stage = Stage.PROBE
    kinds = frozenset({RecordKind.IIS, RecordKind.HTTPPROXY})

    def __init__(self, context: HuntContext) -> None:
        super().__init__(context)
        self.iocs = context.log_iocs
        # Per instance: only the lines holding an imported value reach this check.
        self.literals = self.iocs.literals()  # type: ignore[misc]
        self._by_client: dict[str, _Matches] = {}

    def feed(self, record: LogRecord) -> Iterable[Finding]:
        if not self.iocs:
            return ()
        request = request_of(record)
        if request is None:
            return ()
        why: dict[str, str] = {}
        address = normal_address(request.client)
        if address is not None and address in self.iocs.addresses:
            why[f"address {address}"] = self.iocs.addresses[address]
        agent = normal_agent(request.agent)
        if agent and agent in self.iocs.user_agents:
            why[f"user agent '{request.agent}'"] = self.iocs.user_agents[agent]
        path = normal_path(request.path)
        if path and path in self.iocs.url_paths:
            why[f"URL path {request.path}"] = self.iocs.url_paths[path]
        if why:
            self._note(address or request.client or "unknown", request.agent, record, why,
                       request.status)
        return ()

    def _note(self, client: str, agent: str, record: LogRecord, why: dict[str, str],
              status: str) -> None:
        if client not in self._by_client and len(self._by_client) >= MAX_CLIENTS:
            client = "other clients"
        seen = self._by_client.setdefault(client, _Matches(record, agent=agent))
        seen.requests += 1
        seen.statuses.add(status)
        for key, source in why.items():
            seen.why.setdefault(key, source)
        when = record.timestamp
        first = seen.first.timestamp
        if when is not None and (first is None or when < first):
            seen.first, seen.agent = record, agent
        if when is not None and (seen.last is None or when > seen.last):
            seen.last = when

    def merge(self, other: ImportedIndicatorMatch) -> None:
        """Clients matched in later-listed files join those matched here: counts add up,
        the earliest request stays the first, reasons keep their first source."""
        for client, theirs in other._by_client.items():
            if client not in self._by_client and len(self._by_client) >= MAX_CLIENTS:
                client = "other clients"
            ours = self._by_client.get(client)
            if ours is None:
                self._by_client[client] = theirs
                continue
            ours.requests += theirs.requests
            ours.statuses |= theirs.statuses
            for key, source in theirs.why.items():
                ours.why.setdefault(key, source)
            when, first = theirs.first.timestamp, ours.first.timestamp
            if when is not None and (first is None or when < first):
                ours.first, ours.agent = theirs.first, theirs.agent
            if theirs.last is not None and (ours.last is None or theirs.last > ours.last):
                ours.last = theirs.last

    def finalize(self) -> Iterable[Finding]:
        for client, seen in sorted(self._by_client.items()):
            matched = "; ".join(f"{key} (from {source})"
                                for key, source in sorted(seen.why.items())[:20])
            first = seen.first.timestamp
            evidence = (f"{seen.requests} requests from {client} matched imported indicators, "
                        f"answered {', '.join(sorted(seen.statuses))[:200]}, "
                        f"{first} to {seen.last} (first UA '{seen.agent[:300]}'): {matched}")
            address = normal_address(client)
            yield self.finding(seen.first, evidence, client_ip=address)
