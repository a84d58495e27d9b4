"""STIX 2.1 bundles of what hunts found, built with the OASIS `stix2` library.

A bundle holds: the producer's identity; one indicator per attacker address, shell hash,
shell name, user agent and shell URL path, with a STIX pattern; observed-data (addresses and
files) and sightings with first and last seen; one vulnerability per CVE seen exploited;
per shared-infrastructure cluster of the fleet summary an intrusion-set that the linking
indicators indicate and that targets the CVEs exploited on its servers; and a TLP marking on
every object. With victims (the default for a hunt, off for the coordinator's export) each
server is an identity (class `system`) where its sightings were made.

IDs are deterministic: observables use the STIX UUIDv5 of their contributing properties (the
library computes them); every other object's UUID is derived from the producer and the
object's content (SHA-256), with the version bits of a v4 UUID, because the STIX 2.1
specification and the validator's default profile ask for v4 there. The same hunt therefore
gives the same bundle, byte for byte.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

import stix2

from exhunt.model import HuntReport
from exhunt.share.facts import (
    FILE_NAME,
    IPV4,
    IPV6,
    NO_DATE,
    SHA256,
    URL_PATH,
    USER_AGENT_KIND,
    Facts,
    Observable,
    Seen,
    ShareOptions,
    gather,
)

TLP_LEVELS: dict[str, stix2.MarkingDefinition] = {
    "clear": stix2.TLP_WHITE,  # TLP 2.0's CLEAR is TLP 1.0's WHITE, the STIX 2.1 marking
    "white": stix2.TLP_WHITE,
    "green": stix2.TLP_GREEN,
    "amber": stix2.TLP_AMBER,
    "red": stix2.TLP_RED,
}
_LABELS: dict[str, str] = {
    IPV4: "attacker address",
    IPV6: "attacker address",
    SHA256: "web-shell SHA-256",
    FILE_NAME: "web-shell file name",
    USER_AGENT_KIND: "attacker user agent",
    URL_PATH: "web-shell URL path",
}


def quote(value: str) -> str:
    """A STIX pattern string literal: backslash and quote escaped (STIX 2.1 section 9.3)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def pattern_of(kind: str, value: str) -> str:
    """The STIX pattern that matches one observable."""
    literal = quote(value)
    http = "network-traffic:extensions.'http-request-ext'"
    return {
        IPV4: f"[ipv4-addr:value = {literal}]",
        IPV6: f"[ipv6-addr:value = {literal}]",
        SHA256: f"[file:hashes.'SHA-256' = {literal}]",
        FILE_NAME: f"[file:name = {literal}]",
        USER_AGENT_KIND: f"[{http}.request_header.'User-Agent' = {literal}]",
        URL_PATH: f"[{http}.request_value = {literal}]",
    }[kind]


class _Builder:
    def __init__(self, facts: Facts, options: ShareOptions) -> None:
        if options.tlp not in TLP_LEVELS:
            raise ValueError(f"unknown TLP level {options.tlp!r}: one of {', '.join(TLP_LEVELS)}")
        self.facts = facts
        self.options = options
        self.marking = TLP_LEVELS[options.tlp]
        self.when = facts.latest or NO_DATE
        self.objects: dict[str, Any] = {self.marking.id: self.marking}
        self.producer = self.add(stix2.Identity(
            id=self.sdo_id("identity", "producer"), name=options.producer,
            identity_class="organization", created=self.when, modified=self.when,
            object_marking_refs=[self.marking.id]))

    def sdo_id(self, kind: str, *content: str) -> str:
        digest = hashlib.sha256("\x1f".join((self.options.producer, kind, *content))
                                .encode("utf-8", "surrogatepass")).digest()
        return f"{kind}--{uuid.UUID(bytes=digest[:16], version=4)}"

    def common(self) -> dict[str, Any]:
        return {"created_by_ref": self.producer.id, "created": self.when,
                "modified": self.when, "object_marking_refs": [self.marking.id]}

    def add(self, obj: Any) -> Any:
        self.objects[obj.id] = obj
        return obj

    def build(self) -> stix2.Bundle:
        hosts = self.hosts() if self.options.with_victims else {}
        indicators = {}
        for item in self.facts.sorted_observables():
            if item.indicator:
                indicators[(item.kind, item.value)] = self.indicator(item, hosts)
        vulnerabilities = {cve: self.vulnerability(cve, seen, hosts)
                           for cve, seen in sorted(self.facts.cves.items())}
        for cluster in self.facts.clusters:
            self.intrusion_set(cluster.indicators, cluster.servers, indicators,
                               vulnerabilities, cluster.first_exploitation)
        ordered = [self.objects[key] for key in sorted(self.objects)]
        bundle_id = "bundle--" + str(uuid.UUID(bytes=hashlib.sha256(
            "\n".join(sorted(self.objects)).encode()).digest()[:16], version=4))
        return stix2.Bundle(objects=ordered, id=bundle_id)

    def hosts(self) -> dict[int, str]:
        out: dict[int, str] = {}
        for server in self.facts.servers:
            name = server.name or server.source
            identity = self.add(stix2.Identity(
                id=self.sdo_id("identity", "server", server.source, name), name=name,
                identity_class="system",
                description=f"Exchange server {name} (build {server.build or 'unknown'}), "
                            f"hunted from {server.source}: verdict {server.verdict}",
                **self.common()))
            out[server.number] = identity.id
        return out

    def indicator(self, item: Observable, hosts: dict[int, str]) -> str:
        pattern = pattern_of(item.kind, item.value)
        total = item.seen
        servers = len(item.on)
        stage = "exploitation or later" if item.exploiting else "probing only"
        indicator = self.add(stix2.Indicator(
            id=self.sdo_id("indicator", pattern), name=f"{_LABELS[item.kind]} {item.value}",
            description=f"Seen by exhunt on {servers} Exchange server(s), {stage}; checks: "
                        f"{', '.join(sorted(item.checks))}",
            indicator_types=["malicious-activity" if item.exploiting else "anomalous-activity"],
            pattern=pattern, pattern_type="stix", valid_from=total.first or self.when,
            **self.common()))
        observed = self.observed_data(item)
        for number, seen in sorted(item.on.items()):
            self.sighting(indicator.id, "indicator", item.kind + item.value, number, seen,
                          hosts, observed)
        return str(indicator.id)

    def observed_data(self, item: Observable) -> list[str]:
        """Addresses and files as observables; agents and paths live only in patterns."""
        seen = item.seen
        if seen.first is None or seen.last is None:
            return []
        marks = {"object_marking_refs": [self.marking.id]}
        observable: Any
        if item.kind == IPV4:
            observable = stix2.IPv4Address(value=item.value, **marks)
        elif item.kind == IPV6:
            observable = stix2.IPv6Address(value=item.value, **marks)
        elif item.kind == SHA256:
            observable = stix2.File(hashes={"SHA-256": item.value}, **marks)
        elif item.kind == FILE_NAME:
            observable = stix2.File(name=item.value, **marks)
        else:
            return []
        self.add(observable)
        observed = self.add(stix2.ObservedData(
            id=self.sdo_id("observed-data", observable.id), first_observed=seen.first,
            last_observed=seen.last, number_observed=max(1, seen.findings),
            object_refs=[observable.id], **self.common()))
        return [str(observed.id)]

    def sighting(self, of: str, what: str, key: str, number: int, seen: Seen,
                 hosts: dict[int, str], observed: list[str]) -> None:
        where = [hosts[number]] if number in hosts else []
        extra: dict[str, Any] = {}
        if where:
            extra["where_sighted_refs"] = where
        if observed:
            extra["observed_data_refs"] = observed
        if seen.first is not None and seen.last is not None:
            extra["first_seen"], extra["last_seen"] = seen.first, seen.last
        server = self.facts.servers[number].source if where else str(number)
        self.add(stix2.Sighting(
            id=self.sdo_id("sighting", what, key, server), sighting_of_ref=of,
            count=max(1, seen.findings), **extra, **self.common()))

    def vulnerability(self, cve: str, on: dict[int, Seen], hosts: dict[int, str]) -> str:
        vulnerability = self.add(stix2.Vulnerability(
            id=self.sdo_id("vulnerability", cve), name=cve,
            description=f"Seen exploited by exhunt on {len(on)} Exchange server(s).",
            external_references=[{"source_name": "cve", "external_id": cve}],
            **self.common()))
        for number, seen in sorted(on.items()):
            self.sighting(vulnerability.id, "vulnerability", cve, number, seen, hosts, [])
        return str(vulnerability.id)

    def intrusion_set(self, linking: list[tuple[str, str]], servers: list[int],
                      indicators: dict[tuple[str, str], str],
                      vulnerabilities: dict[str, str], first: str | None) -> None:
        key = "\n".join(f"{kind}={value}" for kind, value in linking)
        shown = ", ".join(value for _, value in linking[:8])
        group = self.add(stix2.IntrusionSet(
            id=self.sdo_id("intrusion-set", key),
            name=f"Exchange intruders sharing {shown or 'infrastructure'}"[:250],
            description=f"{len(servers)} hunted Exchange servers share this infrastructure "
                        f"(exhunt fleet summary); first exploitation {first or 'unknown'}.",
            **self.common()))
        for found in linking:
            if found in indicators:
                self.relate(indicators[found], "indicates", group.id)
        exploited = {cve for cve, on in self.facts.cves.items() if set(on) & set(servers)}
        for cve in sorted(exploited):
            self.relate(group.id, "targets", vulnerabilities[cve])

    def relate(self, source: str, kind: str, target: str) -> None:
        self.add(stix2.Relationship(
            id=self.sdo_id("relationship", source, kind, target), source_ref=source,
            relationship_type=kind, target_ref=target, **self.common()))


def stix_bundle(reports: Sequence[HuntReport], options: ShareOptions | None = None
                ) -> stix2.Bundle:
    """One bundle for these hunts (several reports: with the fleet's clusters)."""
    return _Builder(gather(reports), options or ShareOptions()).build()


def stix_text(reports: Sequence[HuntReport], options: ShareOptions | None = None) -> str:
    return str(stix_bundle(reports, options).serialize(pretty=True)) + "\n"
