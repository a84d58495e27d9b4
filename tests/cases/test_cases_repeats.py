"""Rows that repeat what the store holds are settled column-wise (cases/repeats.py). Whatever
the files say (the same again, a new finding, a late or doubled sighting, another name, a
scan from another source), the store must end exactly as FileWork alone leaves it."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from test_cases_feeds import make_csv

import exhunt.cases.ingest as ingest_module
from exhunt.cases.contacts import import_contacts
from exhunt.cases.ingest import FileResult, Ingestor
from exhunt.lab.campaign import write_campaign
from exhunt.store.db import Store
from helpers.store_dump import dump

HOSTS = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "198.51.100.7", "203.0.113.9"]
COLUMNS = ["timestamp", "ip", "port", "hostname", "tag", "asn", "geo", "naics", "version",
           "servername"]
CONTACTS = ("network,org,country,sector,email\n"
            "192.0.2.0/24,Town of Example,US,local government,it@town.example\n"
            "198.51.100.0/24,First Credit Union,US,,soc@fcu.example\n")

sighting = st.fixed_dictionaries({
    "ip": st.sampled_from(HOSTS),
    "day": st.integers(1, 6),
    "second": st.sampled_from([0, 0, 7]),
    "tag": st.sampled_from(["exchange", "exchange;cve-2021-26855", "exchange;webshell"]),
    "version": st.sampled_from(["15.1.2176.9", "15.1.2176.9", "15.1.2242.4", ""]),
    "hostname": st.sampled_from(["mail.example.org", "mail.example.org", "owa.example", ""]),
    "servername": st.sampled_from(["EX01", ""]),
    "naics": st.sampled_from(["522130", "921110", ""]),
    "asn": st.sampled_from(["64500", "64501", ""]),
    "port": st.sampled_from(["443", "443", "444"]),
})
scan = st.fixed_dictionaries({
    "ip": st.sampled_from(HOSTS), "day": st.integers(1, 6),
    "status": st.sampled_from(["patched", "vulnerable"])})
report = st.one_of(st.lists(sighting, min_size=1, max_size=8).map(lambda r: ("ss", r)),
                   st.lists(scan, min_size=1, max_size=3).map(lambda r: ("scan", r)))


def shadowserver_csv(rows: list[dict[str, Any]]) -> bytes:
    return make_csv(COLUMNS, [
        r | {"timestamp": f"2021-03-{r['day']:02d} 10:00:{r['second']:02d}", "geo": "US"}
        for r in rows])


def scan_jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps({
        "ip": r["ip"], "time": f"2021-03-{r['day']:02d}T12:00:00Z", "reachable": True,
        "exchange": True, "build": "15.1.2242.4",
        "vulnerabilities": {"CVE-2021-26855": r["status"]}}) + b"\n" for r in rows)


@contextmanager
def without_repeats() -> Iterator[None]:
    """Every row through FileWork: the reference the column-wise route is held to."""
    kept = ingest_module.settle_repeats
    ingest_module.settle_repeats = lambda session, table, elsewhere, held: (0, table)
    try:
        yield
    finally:
        ingest_module.settle_repeats = kept


def run(url: str, files: list[tuple[str, bytes]]) -> tuple[list[FileResult], dict[str, Any]]:
    store = Store(url)
    ingestor = Ingestor(store)
    results = [ingestor.ingest_bytes(data, name) for name, data in files]
    content = dump(store)
    store.close()
    return results, content


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite store holding the contacts list, copied for each example."""
    folder = tmp_path_factory.mktemp("repeats")
    (folder / "contacts.csv").write_text(CONTACTS)
    store = Store(f"sqlite:///{folder / 'template.db'}")
    import_contacts(store, folder / "contacts.csv")
    store.close()
    return folder / "template.db"


def files_of(reports: list[tuple[str, list[dict[str, Any]]]]) -> list[tuple[str, bytes]]:
    return [(f"2021-03-{n:02d}-scan_exchange.csv", shadowserver_csv(rows)) if kind == "ss"
            else (f"scan-{n}.jsonl", scan_jsonl(rows)) for n, (kind, rows) in enumerate(reports)]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(report, min_size=2, max_size=5))
def test_repeats_settle_as_filework_would(
        template: Path, tmp_path: Path, reports: list[tuple[str, list[dict[str, Any]]]]) -> None:
    files = files_of(reports)
    urls = []
    for name in ("columns", "filework"):  # a fresh file each example (no stale WAL)
        target = tmp_path / f"{name}-{uuid.uuid4().hex}.db"
        shutil.copy(template, target)
        urls.append(f"sqlite:///{target}")
    fast = run(urls[0], files)
    with without_repeats():
        slow = run(urls[1], files)
    for table in fast[1]:
        note(f"{table}: column-wise only {sorted(set(fast[1][table]) - set(slow[1][table]))}")
        note(f"{table}: FileWork only {sorted(set(slow[1][table]) - set(fast[1][table]))}")
    note(repr(files))
    assert fast == slow


def test_a_campaign_settles_as_filework_would(db_url: str, tmp_path: Path) -> None:
    """Days in order, then again out of order and repeated, on both databases: most rows of
    each later day are repeats, and they must leave what FileWork leaves."""
    write_campaign(tmp_path, servers=300, days=5, seed=5, parquet=False)
    *days, last = sorted(tmp_path.glob("*-scan_exchange.csv"))
    files = [(d.name, d.read_bytes()) for d in [*days, days[1]]]
    # a late copy of a middle day under another name (other bytes: one row dropped)
    middle = days[1].read_bytes().splitlines(keepends=True)
    files.append(("late-" + days[1].name, b"".join(middle[:-1])))
    # a few rows of the next day: a small file against a large store reads only its hosts
    files.append(("head-" + last.name, b"".join(last.read_bytes().splitlines(True)[:12])))
    results = []
    for reference in (False, True):
        store = Store(db_url)
        with store.session() as s:  # the second pass starts from an empty store again
            for table in ("events", "messages", "cases", "observations", "rejects", "hosts",
                          "report_days", "daily_states",
                          "ingested_files", "contacts", "networks", "organisations"):
                s.execute(sa.text(f"delete from {table}"))
            s.commit()
        import_contacts(store, tmp_path / "contacts.csv")
        ingestor = Ingestor(store)
        if reference:
            with without_repeats():
                got = [ingestor.ingest_bytes(data, name) for name, data in files]
        else:
            got = [ingestor.ingest_bytes(data, name) for name, data in files]
        results.append((got, dump(store)))
        store.close()
    (fast, fast_store), (slow, slow_store) = results
    assert fast == slow
    assert fast_store["hosts"] == slow_store["hosts"]
    assert fast_store == slow_store
    assert fast[1].added == fast[1].rows and fast[-3].status == "already ingested"
    assert fast[-1].added == fast[-1].rows == 11


def test_repeats_route_takes_most_of_a_later_day(tmp_path: Path) -> None:
    """The column-wise route is the one a daily report takes (else this file tests nothing)."""
    write_campaign(tmp_path, servers=200, days=2, seed=9, parquet=False)
    first, second = sorted(tmp_path.glob("*-scan_exchange.csv"))
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    import_contacts(store, tmp_path / "contacts.csv")
    Ingestor(store).ingest(first)
    taken: list[int] = []
    kept = ingest_module.settle_repeats

    def counting(session: Any, table: pa.Table, elsewhere: set[str],
                 held: pa.Table | None) -> tuple[int, pa.Table]:
        settled, rest = kept(session, table, elsewhere, held)
        taken.append(table.num_rows - rest.num_rows)
        return settled, rest
    ingest_module.settle_repeats = counting
    try:
        result = Ingestor(store).ingest(second)
    finally:
        ingest_module.settle_repeats = kept
    assert result.rows > 0 and taken and taken[0] > result.rows // 2
