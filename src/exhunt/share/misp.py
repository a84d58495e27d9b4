"""A MISP event of what hunts found, built with PyMISP's `MISPEvent` (no MISP server needed).

Objects from MISP's own templates (checked strictly by PyMISP): `ip-port` per address,
`file` per shell hash and per shell name, `http-request` per shell URL path, `vulnerability`
per CVE seen exploited. User agents are `user-agent` attributes: MISP's templates have no
user-agent object. `to_ids` is set only on indicators: internal addresses (which may be the
victim's own) and the victim servers' names (`target-machine`, only with victims) are never
flagged. Tags: the TLP level and one per exploited CVE. Each indicator carries one sighting
per server it was seen on, dated at its last sighting there.

UUIDs are derived from the producer and the content, so the same hunt gives the same event.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence

from pymisp import MISPAttribute, MISPEvent, MISPObject, MISPOrganisation

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
    ShareOptions,
    gather,
)
from exhunt.share.stix import TLP_LEVELS

THREAT_HIGH, THREAT_MEDIUM, THREAT_LOW = 1, 2, 3
ANALYSIS_COMPLETE = 2
SIGHTING = "0"  # MISP sighting type 0: seen


def misp_tag_for_cve(cve: str) -> str:
    """A machine tag (namespace:predicate="value"), MISP's tag convention."""
    return f'vulnerability:cve="{cve}"'


class _Builder:
    def __init__(self, facts: Facts, options: ShareOptions) -> None:
        if options.tlp not in TLP_LEVELS:
            raise ValueError(f"unknown TLP level {options.tlp!r}: one of {', '.join(TLP_LEVELS)}")
        self.facts = facts
        self.options = options
        self.when = facts.latest or NO_DATE

    def uuid(self, *content: str) -> str:
        digest = hashlib.sha256("\x1f".join((self.options.producer, "misp", *content))
                                .encode("utf-8", "surrogatepass")).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    def build(self) -> MISPEvent:
        event = MISPEvent()
        event.uuid = self.uuid("event", *sorted(f"{k}={v}" for k, v in self.facts.observables))
        event.info = self.info()
        event.date = self.when.date()
        event.threat_level_id = self.threat_level()
        event.analysis = ANALYSIS_COMPLETE
        org = MISPOrganisation()
        org.name = self.options.producer
        org.uuid = self.uuid("org")
        event.Orgc = org
        event.add_tag("tlp:clear" if self.options.tlp == "clear" else f"tlp:{self.options.tlp}")
        for cve in sorted(self.facts.cves):
            event.add_tag(misp_tag_for_cve(cve))
        for item in self.facts.sorted_observables():
            self.observable(event, item)
        for cve in sorted(self.facts.cves):
            self.vulnerability(event, cve)
        if self.options.with_victims:
            for server in self.facts.servers:
                event.add_attribute(
                    "target-machine", server.name or server.source, category="Targeting data",
                    to_ids=False, uuid=self.uuid("server", server.source),
                    comment=f"hunted Exchange server, verdict {server.verdict}")
        return event

    def info(self) -> str:
        servers = self.facts.servers
        if len(servers) == 1 and self.options.with_victims:
            server = servers[0]
            return (f"exhunt hunt of Exchange server {server.name or server.source}: "
                    f"{server.verdict}")
        return (f"exhunt: {len(servers)} hunted Exchange servers, "
                f"{len(self.facts.clusters)} shared-infrastructure cluster(s)")

    def threat_level(self) -> int:
        if self.facts.cves:
            return THREAT_HIGH
        return THREAT_MEDIUM if self.facts.observables else THREAT_LOW

    def observable(self, event: MISPEvent, item: Observable) -> None:
        if not item.indicator and not self.options.with_victims:
            return  # an internal address may be the victim's own: it stays home
        key = f"{item.kind}={item.value}"
        comment = f"exhunt checks: {', '.join(sorted(item.checks))}"[:1000]
        seen = item.seen
        times = {"first_seen": seen.first, "last_seen": seen.last} if seen.first else {}
        flags = {"to_ids": item.indicator, "comment": comment, **times}
        if item.kind == USER_AGENT_KIND:
            attribute = event.add_attribute("user-agent", item.value, category="Network activity",
                                            uuid=self.uuid("attribute", key), **flags)
            assert isinstance(attribute, MISPAttribute)
            self.sightings(attribute, item)
            return
        template, relation = {
            IPV4: ("ip-port", "ip-src"), IPV6: ("ip-port", "ip-src"),
            SHA256: ("file", "sha256"), FILE_NAME: ("file", "filename"),
            URL_PATH: ("http-request", "uri"),
        }[item.kind]
        obj = MISPObject(template, strict=True, standalone=False)
        obj.uuid = self.uuid("object", key)
        if seen.first is not None and seen.last is not None:
            obj.first_seen, obj.last_seen = seen.first, seen.last
        added = obj.add_attribute(relation, item.value, uuid=self.uuid("attribute", key),
                                  **flags)
        obj.comment = ("indicator" if item.indicator else
                       "internal address: not an indicator (may be the victim's own)")
        event.add_object(obj)
        if added is not None:
            self.sightings(added, item)

    def sightings(self, attribute: MISPAttribute, item: Observable) -> None:
        if not item.indicator:
            return
        for number, seen in sorted(item.on.items()):
            if seen.last is None:
                continue
            where = self.facts.servers[number].source if self.options.with_victims else ""
            attribute.add_sighting({
                "type": SIGHTING, "source": self.options.producer,
                "date_sighting": str(int(seen.last.timestamp())),
                "uuid": self.uuid("sighting", item.kind, item.value, where, str(number)),
            })

    def vulnerability(self, event: MISPEvent, cve: str) -> None:
        obj = MISPObject("vulnerability", strict=True, standalone=False)
        obj.uuid = self.uuid("object", "cve", cve)
        on = self.facts.cves[cve]
        obj.add_attribute("id", cve, uuid=self.uuid("attribute", "cve", cve), to_ids=False)
        obj.add_attribute("summary", f"Seen exploited by exhunt on {len(on)} Exchange "
                                     "server(s)", uuid=self.uuid("attribute", "cve-summary", cve))
        obj.add_attribute("references", f"https://www.cve.org/CVERecord?id={cve}",
                          uuid=self.uuid("attribute", "cve-ref", cve))
        event.add_object(obj)


def misp_event(reports: Sequence[HuntReport], options: ShareOptions | None = None) -> MISPEvent:
    return _Builder(gather(reports), options or ShareOptions()).build()


def misp_text(reports: Sequence[HuntReport], options: ShareOptions | None = None) -> str:
    """The event as MISP's JSON (`{"Event": {...}}`), as a MISP server exports and imports it."""
    event = json.loads(misp_event(reports, options).to_json())
    return json.dumps({"Event": event}, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
