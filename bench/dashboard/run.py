"""The coordinator's dashboard at national scale: every page and API answer timed over a lab
campaign (250,000 servers, 30 daily reports, one partial day), beside the ingest times and
beside the old approach (every figure computed in Python over every row, old_queries.py).

Build the campaign once (it is reused by every run and both databases):

    exhunt lab campaign CAMP --servers 250000 --days 30 --partial-day 9 --no-parquet

then, per database (SQLite file by default; PostgreSQL with --db URL):

    .venv/bin/python bench/dashboard/run.py CAMP [--db URL] [--repeat 5] [--old-repeat 3]

The pages are asked in process through FastAPI's TestClient, logged in as a coordinator, so
the time is the application's (routing, queries, templates, JSON), not a network's.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient
from old_queries import case_list, summary, uptake  # beside this script
from sqlalchemy import Boolean, func, select, text

from exhunt.cases.contacts import import_contacts
from exhunt.cases.ingest import Ingestor
from exhunt.store.db import Store
from exhunt.store.models import Base, Case, Host
from exhunt.web.app import create_app
from exhunt.web.security import add_user, check_password, create_web_tables

USER = ("bench", "bench password for the dashboard")


def timed(action: Callable[[], Any], repeat: int) -> tuple[float, float, float]:
    """(median, fastest, slowest) seconds of `repeat` runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def fresh_store(url: str | None, folder: Path) -> Store:
    if url is None:
        (folder / "bench.db").unlink(missing_ok=True)
        return Store(f"sqlite:///{folder / 'bench.db'}")
    store = Store(url, migrate=False)
    with store.engine.begin() as connection:  # a throwaway database: start from nothing
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    store.close()
    return Store(url)


def load_from(store: Store, sqlite_file: Path) -> dict[str, Any]:
    """Fill the (empty, PostgreSQL) store with every row of a store a SQLite run kept, by
    COPY, table after table in foreign-key order; then ANALYZE. The pages are then timed on
    the very data the SQLite run timed, without a second 15-minute ingest."""
    source = sqlite3.connect(f"file:{sqlite_file}?mode=ro", uri=True)
    start = time.perf_counter()
    counts = {}
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for table in Base.metadata.sorted_tables:
            columns = [c[1] for c in source.execute(f"PRAGMA table_info({table.name})")]
            if not columns:
                continue
            bools = [i for i, c in enumerate(columns)
                     if c in table.c and isinstance(table.c[c].type, Boolean)]
            with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                n = 0
                for row in source.execute(f"SELECT * FROM {table.name}"):
                    values = list(row)
                    for i in bools:
                        values[i] = None if values[i] is None else bool(values[i])
                    copy.write_row(values)
                    n += 1
            counts[table.name] = n
            if "id" in columns:
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                               f"(SELECT coalesce(max(id), 1) FROM {table.name}))")
        raw.commit()
        raw.autocommit = True  # type: ignore[attr-defined]
        raw.cursor().execute("ANALYZE")
    finally:
        raw.close()
        source.close()
    print(f"loaded {counts} in {time.perf_counter() - start:.0f} s", flush=True)
    return {"loaded_from": str(sqlite_file), "rows": counts}


def ingest(store: Store, camp: Path) -> dict[str, Any]:
    start = time.perf_counter()
    import_contacts(store, camp / "contacts.csv")
    contacts = time.perf_counter() - start
    ingestor = Ingestor(store)
    days = []
    for path in sorted(camp.glob("2021-*-scan_exchange.csv")):
        start = time.perf_counter()
        result = ingestor.ingest(path)
        days.append({"file": path.name, "seconds": time.perf_counter() - start,
                     "rows": result.rows, "note": result.note})
        print(f"  {path.name}: {days[-1]['seconds']:.1f} s, {result.rows} rows"
              + (f"; {result.note}" if result.note else ""), flush=True)
    later = [d["seconds"] for d in days[1:]]
    return {"contacts_s": contacts, "first_day_s": days[0]["seconds"],
            "later_median_s": statistics.median(later), "later_min_s": min(later),
            "later_max_s": max(later), "total_s": contacts + sum(d["seconds"] for d in days),
            "days": days}


def client_for(store: Store) -> TestClient:
    create_web_tables(store.engine)
    with store.transaction() as session:
        if not check_password(session, *USER):
            add_user(session, *USER)
    client = TestClient(create_app(store.url))
    page = client.get("/login")
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    response = client.post("/login", data={"username": USER[0], "password": USER[1],
                                           "csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


def pages(store: Store, client: TestClient, repeat: int) -> dict[str, Any]:
    with store.session() as session:
        big = session.execute(select(Case.reference).order_by(Case.hosts.desc()).limit(1)
                              ).scalar_one()
        ip = session.execute(select(Host.ip).order_by(Host.id.desc()).limit(1)).scalar_one()
        cases = session.scalar(select(func.count(Case.id))) or 0
    last_page = max(1, cases // 200)
    urls = ["/", "/cases", "/cases?sort=hosts&desc=true", "/cases?sort=worst&desc=true",
            "/cases?sort=notified", f"/cases?page={last_page}", "/cases?q=10.1.2.3",
            f"/cases/{big}", f"/hosts/{ip}",
            "/api/summary", "/api/uptake", "/api/cases", "/api/cases?sort=organisation&desc=true",
            f"/api/cases?offset={max(0, cases - 1000)}&limit=1000",
            "/api/cases?q=Lab%20organisation%2012345", "/api/hosts?group=unreported",
            "/api/hosts?group=vulnerable&offset=10000", f"/api/cases/{big}",
            f"/api/hosts/{ip}"]
    results = {}
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
        median, low, high = timed(lambda url=url: client.get(url), repeat)
        results[url] = {"median_s": median, "min_s": low, "max_s": high,
                        "bytes": len(response.content)}
        print(f"  {url}: {median * 1000:.0f} ms ({low * 1000:.0f}-{high * 1000:.0f})",
              flush=True)
    return results


def old_approach(store: Store, repeat: int) -> dict[str, Any]:
    """The same answers the old way: what /api/summary, /api/uptake and /api/cases cost in
    queries before issue 13 (JSON encoding included, no HTTP or templates)."""
    def old_summary() -> None:
        with store.session() as session:
            orjson.dumps(summary(session))

    def old_uptake() -> None:
        with store.session() as session:
            orjson.dumps(uptake(session))

    def old_cases() -> None:
        with store.session() as session:
            orjson.dumps(case_list(session)[:1000])

    results = {}
    for name, action in (("summary (old /api/summary, / )", old_summary),
                         ("uptake (old /api/uptake, / )", old_uptake),
                         ("case list (old /api/cases, /cases)", old_cases)):
        median, low, high = timed(action, repeat)
        results[name] = {"median_s": median, "min_s": low, "max_s": high}
        print(f"  old {name}: {median:.2f} s ({low:.2f}-{high:.2f})", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("campaign", type=Path, help="exhunt lab campaign folder")
    parser.add_argument("--db", help="PostgreSQL URL (default: a SQLite file in a temp dir)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--old-repeat", type=int, default=3, help="0: skip the old approach")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--keep", type=Path, help="keep the SQLite store in this folder")
    parser.add_argument("--load-from", type=Path,
                        help="with --db: fill it from a SQLite store a run kept (no ingest)")
    parser.add_argument("--reuse", action="store_true",
                        help="time the pages of the store a previous run kept (no ingest)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="exhunt-bench-dashboard-") as temp:
        work = args.keep or Path(temp)
        work.mkdir(parents=True, exist_ok=True)
        figures: dict[str, Any] = {}
        if args.reuse:
            store = Store(args.db or f"sqlite:///{work / 'bench.db'}")
        elif args.load_from and args.db:
            store = fresh_store(args.db, work)
            figures["load"] = load_from(store, args.load_from)
        else:
            store = fresh_store(args.db, work)
            print(f"{store.dialect}: ingest", flush=True)
            figures["ingest"] = ingest(store, args.campaign)
        figures["database"] = store.dialect
        with store.session() as session:
            figures["hosts"] = session.scalar(select(func.count(Host.id)))
            figures["cases"] = session.scalar(select(func.count(Case.id)))
        print(f"{figures['hosts']} hosts, {figures['cases']} cases; pages", flush=True)
        figures["pages"] = pages(store, client_for(store), args.repeat)
        if args.old_repeat:
            print("old approach", flush=True)
            figures["old"] = old_approach(store, args.old_repeat)
        store.close()
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
