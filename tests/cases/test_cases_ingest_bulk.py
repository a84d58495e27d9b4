"""Set-at-a-time ingest: what it writes in bulk must equal what replaying every stored
evidence run host by host gives, on SQLite and PostgreSQL, whatever order the days arrive in."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from exhunt.cases.contacts import import_contacts
from exhunt.cases.filework import HostRow
from exhunt.cases.ingest import Ingestor
from exhunt.cases.tracking import replay
from exhunt.lab.campaign import write_campaign
from exhunt.store.bulk import driver_times
from exhunt.store.db import Store
from exhunt.store.models import Case, Event, Host, Observation

TRACKED = ("state", "worst_state", "state_since", "first_vulnerable_at", "first_patched_at")


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("camp")
    write_campaign(folder, servers=250, days=5, seed=11, parquet=False)
    return folder


@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4], [4, 0, 3, 1, 2]], ids=["in-order", "late"])
def test_bulk_ingest_equals_a_replay_of_the_evidence(db_url: str, campaign: Path,
                                                     order: list[int]) -> None:
    store = Store(db_url)
    import_contacts(store, campaign / "contacts.csv")
    days = sorted(campaign.glob("*-scan_exchange.csv"))
    ingestor = Ingestor(store)
    results = [ingestor.ingest(days[i]) for i in order]
    assert all(r.status == "ingested" and 0 < r.added <= r.rows for r in results)
    if order == sorted(order):  # in time order every sighting is news: a later day
        assert all(r.added == r.rows for r in results)
    else:  # a late day inside a run already seen on both sides of it says nothing new
        assert any(r.added < r.rows for r in results)
    with store.session() as s:
        runs = s.scalar(sa.select(sa.func.count()).select_from(Observation))
        # a server seen the same way five days running is one run, not five rows
        assert 250 <= runs < sum(r.rows for r in results)
        stored = list(s.scalars(sa.select(Host)))
        assert len(stored) == 250
        for host in stored:
            again = HostRow(ip=host.ip, id=host.id, last_seen=host.last_seen)
            replay(s, again)
            assert [getattr(again, f) for f in TRACKED] == [getattr(host, f) for f in TRACKED]
            held = list(s.scalars(sa.select(Observation).where(Observation.host_id == host.id)))
            assert sum(1 for o in held if o.last_seen_at is None) == 1  # one open run
            assert host.first_seen == min(o.seen_at for o in held)
            assert host.last_seen == max(o.ended(host.last_seen) for o in held)
            assert host.organisation_id is not None  # every lab server has an owner
        # each case's history says how many hosts it gained, and they add up to every host
        added = s.scalars(sa.select(Event.detail).where(Event.kind == "hosts-added")).all()
        assert sum(int(d.split()[0]) for d in added) == len(stored)
        assert s.scalar(sa.select(sa.func.count()).select_from(Case)) == len(
            {h.organisation_id for h in stored})
    # a second pass over every day adds nothing and moves nothing
    with store.session() as s:
        events = s.scalar(sa.select(sa.func.count()).select_from(Event))
    assert all(ingestor.ingest(days[i]).status == "already ingested" for i in order)
    with store.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Event)) == events


def test_bulk_written_times_read_back_like_orm_written_ones(db_url: str, campaign: Path) -> None:
    store = Store(db_url)
    day = sorted(campaign.glob("*-scan_exchange.csv"))[0]
    Ingestor(store).ingest(day)
    with store.session() as s:
        host = s.scalars(sa.select(Host).limit(1)).one()
        first = host.first_seen
        assert first is not None
        # the ORM finds the host by the time the bulk path wrote
        assert s.scalar(sa.select(Host.id).where(Host.first_seen == first)) is not None
        if store.dialect == "sqlite":
            texts = s.execute(sa.text("select seen_at from observations")).scalars().all()
            assert texts and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", t)
                                 for t in texts)
        # times handed over from Arrow columns are stored as the ORM stores them
        moment = datetime(2021, 3, 2, 23, 59, 58, 123456)
        for when in (moment, moment.replace(microsecond=0), datetime(1999, 12, 31)):
            [value] = driver_times(s, pa.chunked_array([pa.array([when], pa.timestamp("us"))]))
            s.execute(sa.text("update hosts set last_seen = :t where id = :id"),
                      {"t": value, "id": host.id})
            host.last_worse_at = when  # through the ORM
            s.flush()
            s.expire(host)
            assert host.last_seen == when
            raw = sa.text("select last_seen, last_worse_at from hosts where id = :id")
            stored, by_orm = s.execute(raw, {"id": host.id}).one()
            assert stored == by_orm
