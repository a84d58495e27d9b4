"""The case list sorted, searched and paged in SQL: pages in a row are the whole list in the
chosen order, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from exhunt.cases.contacts import import_contacts
from exhunt.cases.ingest import Ingestor
from exhunt.lab.campaign import write_campaign
from exhunt.store.db import Store
from exhunt.web.queries import CASE_SORTS, case_page

RANK = ["clean", "patched", "exposed", "vulnerable", "exploited", "backdoor", "reentered"]


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Store:
    write_campaign(tmp_path, servers=150, days=3, seed=11, parquet=False)
    store = Store(db_url)
    import_contacts(store, tmp_path / "contacts.csv")
    ingestor = Ingestor(store)
    for day in sorted(tmp_path.glob("2021-*.csv")):
        ingestor.ingest(day)
    return store


def key(sort: str, row: dict[str, object]) -> tuple[object, ...]:
    value = row["organisation" if sort == "organisation" else sort]
    if sort == "worst":
        return (RANK.index(str(value)) if value else -1,)
    if sort == "notified":
        return (value is not None, value or "")
    return (value,)


@pytest.mark.parametrize("descending", [False, True])
def test_pages_in_a_row_are_the_list_in_order(store: Store, descending: bool) -> None:
    with store.session() as session:
        for sort in CASE_SORTS:
            total, whole = case_page(session, "", sort, descending, 10_000, 0)
            assert total == len(whole) > 50
            keys = [key(sort, r) for r in whole]
            assert keys == sorted(keys, reverse=descending), sort
            pages = []
            for offset in range(0, total, 37):
                pages.extend(case_page(session, "", sort, descending, 37, offset)[1])
            assert pages == whole, sort


def test_search_counts_and_pages_what_it_names(store: Store) -> None:
    with store.session() as session:
        total, rows = case_page(session, "10.0.0.", "reference", False, 5, 0)
        assert total > 5 and len(rows) == 5
        _, every = case_page(session, "10.0.0.", "reference", False, 10_000, 0)
        assert len(every) == total
        assert case_page(session, "Lab organisation 7", "hosts", True, 100, 0)[0] >= 1
        assert case_page(session, "no such thing", "reference", False, 100, 0) == (0, [])
