"""Two ingests at once (two analysts, two cron jobs, two machines on one PostgreSQL) must both
land, and leave what the same two files ingested one after the other leave."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from exhunt.cases.contacts import import_contacts
from exhunt.cases.ingest import FileResult, Ingestor
from exhunt.lab.campaign import write_campaign
from exhunt.store.db import Store
from helpers.store_dump import dump


def clear(url: str) -> None:
    store = Store(url)
    with store.transaction() as s:
        for table in ("events", "messages", "cases", "observations", "rejects", "hosts",
                      "report_days", "daily_states", "ingested_files", "contacts", "networks", "organisations"):
            s.execute(sa.text(f"delete from {table}"))
    store.close()


def at_once(url: str, files: list[Path]) -> list[FileResult | BaseException]:
    """Each file ingested by its own store (own engine, own connection), all let go at once."""
    results: list[FileResult | BaseException] = [RuntimeError("not run")] * len(files)
    stores = [Store(url) for _ in files]
    start = threading.Barrier(len(files), timeout=60)

    def work(i: int) -> None:
        try:
            start.wait()
            results[i] = Ingestor(stores[i]).ingest(files[i])
        except BaseException as exc:  # reported by the test
            results[i] = exc
    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(files))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for store in stores:
        store.close()
    return results


@pytest.mark.parametrize("same_file", [False, True], ids=["two-days", "one-file-twice"])
def test_two_ingests_at_once_both_land(db_url: str, tmp_path: Path, same_file: bool) -> None:
    # two days of the same servers: nearly every host is new to both ingests
    write_campaign(tmp_path, servers=1500, days=2, seed=21, parquet=False)
    days = sorted(tmp_path.glob("*-scan_exchange.csv"))
    files = [days[0], days[0]] if same_file else days
    outcomes = []
    for order in ([0, 1], [1, 0]):  # the two ways one after the other could have gone
        clear(db_url)
        store = Store(db_url)
        import_contacts(store, tmp_path / "contacts.csv")
        for i in dict.fromkeys(order):
            Ingestor(store).ingest(files[i])
        outcomes.append(dump(store))
        store.close()
    for _ in range(2):
        clear(db_url)
        store = Store(db_url)
        import_contacts(store, tmp_path / "contacts.csv")
        store.close()
        results = at_once(db_url, files)
        assert all(isinstance(r, FileResult) for r in results), results
        statuses = sorted(r.status for r in results if isinstance(r, FileResult))
        assert statuses == (["already ingested", "ingested"] if same_file
                            else ["ingested", "ingested"])
        store = Store(db_url)
        assert dump(store) in outcomes
        store.close()
