"""The store's content in a form two runs can be compared by (test helper)."""

from __future__ import annotations

import sqlalchemy as sa

from exhunt.store.db import Store


def dump(store: Store) -> dict[str, list[tuple[object, ...]]]:
    """The store's content without what differs between two runs by construction: row ids
    (as such), and the ingest clock (when a case opened, when exhunt learned of a worse state)."""
    queries = {
        "hosts": "select ip, hostname, servername, o.name, network, asn, as_name, h.country,"
                 " h.sector, sector_source, naics, state, worst_state, state_since, first_seen,"
                 " last_seen, last_worse_at is null, first_vulnerable_at, first_patched_at"
                 " from hosts h left join organisations o on o.id = h.organisation_id",
        "runs": "select h.ip, f.sha256, r.source, r.seen_at, r.last_seen_at, r.state, r.port,"
                " r.build, r.evidence from observations r join hosts h on h.id = r.host_id"
                " left join ingested_files f on f.id = r.file_id",
        "cases": "select reference, o.name, status, flagged, resolved_at is null"
                 " from cases c join organisations o on o.id = c.organisation_id",
        "events": "select c.reference, h.ip, e.kind, e.detail from events e"
                  " left join cases c on c.id = e.case_id left join hosts h on h.id = e.host_id",
        "files": "select sha256, rows, added, rejected from ingested_files",
    }
    with store.session() as s:
        return {name: sorted((tuple(r) for r in s.execute(sa.text(q))), key=repr)
                for name, q in queries.items()}
