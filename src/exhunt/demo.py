"""`exhunt demo`: every part of exhunt working together on loopback, ending in the dashboard.

1. a lab fleet of OWA front ends on 127.20.x.y (some patched builds, some vulnerable);
2. a non-intrusive scan of it, ingested;
3. lab triage copies of some vulnerable servers, with back doors, hunted, reports ingested;
4. a synthetic Shadowserver feed (the 2021 campaign curve) and demo contacts ingested;
5. notices sent to the demo's own SMTP sink on 127.0.0.1;
6. the dashboard on http://127.0.0.1:8000 with a coordinator login printed.
Nothing leaves loopback. Ctrl-C stops the dashboard, the sink and any fleet still up.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import ipaddress
import random
import secrets
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import orjson
from rich.console import Console
from sqlalchemy import select

from exhunt.errors import UsageError
from exhunt.store.db import Store
from exhunt.store.models import Case, Host, HostState

T = TypeVar("T")
FLEET_FIRST = "127.20.0.1"
FLEET_NETWORK = "127.20.0.0/16"
SENDER = "cert@demo.lab.example"
COUNTRIES = ("NL", "DE", "FR", "GB", "US", "BE")
SECTORS = ("health", "local government", "education", "manufacturing", "legal services")
SCENARIOS = ("backdoored", "reentered", "exploited", "backdoored", "probed", "clean")
# one organisation name carries markup, to show that feed and contact text stays text
CAMPAIGN_SEED = 2021
# the checks whose status a lab rescan of a patched server reports
PATCHED_CVES = ("CVE-2021-26855", "CVE-2021-26857", "CVE-2021-26858", "CVE-2021-27065")
HOSTILE_NAME = 'Acme <script>alert("owned")</script> Ltd'


@dataclass
class DemoTimings:
    phases: dict[str, float] = field(default_factory=dict)

    def total(self) -> float:
        return sum(self.phases.values())


@dataclass
class DemoWorld:
    db_url: str
    username: str
    password: str
    example_token: str | None
    notices: int
    timings: DemoTimings


class _Sink:
    """An aiosmtpd server on 127.0.0.1 keeping every notice it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.received: list[bytes] = []
        self._lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                with sink._lock:
                    sink.received.append(bytes(envelope.content))
                return "250 OK"

        self.port = _free_port()
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


def _check_port_free(port: int) -> None:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            raise UsageError(f"127.0.0.1:{port} is in use ({exc.strerror}); "
                             "choose another port") from exc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _phase(console: Console, timings: DemoTimings, name: str) -> Iterator[None]:
    started = time.monotonic()
    with console.status(f"{name}…"):
        yield
    elapsed = time.monotonic() - started
    timings.phases[name] = elapsed
    console.print(f"[green]✓[/green] {name} ({elapsed:.1f} s)", highlight=False)


async def _fleet_and_scan(count: int, emit: Callable[[dict[str, Any]], None]) -> int:
    from exhunt.lab.fleet import WELL_BEHAVED, Fleet
    from exhunt.scan.engine import ScanOptions, run_scan
    from exhunt.scan.scope import Scope
    from exhunt.scan.targets import Endpoint

    async with Fleet(count=count, modes=WELL_BEHAVED, per_address=1,
                     first_address=FLEET_FIRST, seed=7) as hosts:
        scope = Scope(networks=[ipaddress.ip_network(FLEET_NETWORK)])
        options = ScanOptions(concurrency=64, connect_timeout=3, read_timeout=5,
                              request_timeout=8, target_timeout=20, retries=0)
        await run_scan([Endpoint(h.host, h.port) for h in hosts], scope, options, emit)
        return len(hosts)


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to its end; on Ctrl-C cancel it, let its `async with` blocks close (the
    fleet's listeners), and re-raise. (asyncio.run can swallow a Ctrl-C that lands while a
    task absorbs its cancellation; here the interrupt always wins.)"""
    loop = asyncio.new_event_loop()
    task = loop.create_task(coro)
    try:
        return loop.run_until_complete(task)
    except KeyboardInterrupt:
        task.cancel()
        with contextlib.suppress(BaseException):
            loop.run_until_complete(task)
        raise
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _fleet_contacts(path: Path, count: int) -> None:
    """One organisation per /29 of the fleet, with a contact each."""
    first = ipaddress.ip_address(FLEET_FIRST)
    networks = sorted({ipaddress.ip_network(f"{first + i}/29", strict=False)
                       for i in range(count)}, key=lambda n: int(n.network_address))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["network", "org", "country", "sector", "email"])
        for n, net in enumerate(networks):
            name = HOSTILE_NAME if n == 3 else f"Fleet organisation {n:02d}"
            writer.writerow([str(net), name, COUNTRIES[n % len(COUNTRIES)],
                             SECTORS[n % len(SECTORS)], f"it@fleet{n}.lab.example"])


def _shift_feed(source: Path, target: Path, shift: timedelta) -> list[Path]:
    """The campaign's daily CSVs moved in time so they end yesterday (the dashboard's recent
    window), otherwise unchanged."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source.glob("*-scan_exchange.csv")):
        with path.open(newline="") as src:
            rows = list(csv.reader(src))
        for row in rows[1:]:
            moved = datetime.strptime(row[0], "%Y-%m-%d %H:%M:%S") + shift
            row[0] = moved.strftime("%Y-%m-%d %H:%M:%S")
        day = datetime.strptime(path.name[:10], "%Y-%m-%d") + shift
        out = target / f"{day:%Y-%m-%d}-scan_exchange.csv"
        with out.open("w", newline="") as dst:
            csv.writer(dst).writerows(rows)
        written.append(out)
    return written


def _follow_up_scan(path: Path, servers: int, days: int, seed: int, shift: timedelta) -> None:
    """Lab rescans of the feed's servers on the day each was patched (the feed only lists
    servers still vulnerable; these give the patch-uptake curve its evidence)."""
    from exhunt.lab.campaign import START, make_servers
    from exhunt.scan.output import encode

    fleet, _ = make_servers(servers, days, random.Random(seed))  # as write_campaign draws it
    with path.open("wb") as out:
        for server in fleet:
            if server.patch_day is None:
                continue
            seen = START + shift + timedelta(days=server.patch_day, hours=12)
            out.write(encode({
                "target": server.ip, "ip": server.ip, "port": 443,
                "time": seen.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "reachable": True,
                "exchange": True, "build": f"{server.build}.lab-patched",
                "vulnerabilities": {cve: "patched" for cve in PATCHED_CVES}}))


def build_world(workdir: Path, *, servers: int = 300, feed_servers: int = 800,
                days: int = 30, compromised: int = 6,
                console: Console | None = None,
                portal_url: str = "http://127.0.0.1:8000") -> DemoWorld:
    """Build the demo's store in `workdir`; returns what the dashboard needs."""
    from exhunt.cases.contacts import import_contacts
    from exhunt.cases.ingest import Ingestor
    from exhunt.cases.notify.plan import plan_round
    from exhunt.cases.notify.render import Portal, Renderer
    from exhunt.cases.notify.send import Sender
    from exhunt.cases.notify.smtp import SmtpTarget
    from exhunt.hunt.engine import hunt
    from exhunt.hunt.fleet import answer, fleet_summary
    from exhunt.hunt.report import report_json
    from exhunt.lab.attacks import Scenario
    from exhunt.lab.campaign import START as CAMPAIGN_START
    from exhunt.lab.campaign import write_campaign
    from exhunt.lab.triage import TriageSpec, build_triage
    from exhunt.scan.output import encode
    from exhunt.web.queries import save_fleet_summary
    from exhunt.web.security import (
        add_user,
        case_token,
        server_secret,
    )

    out = console or Console(stderr=True)
    timings = DemoTimings()
    url = f"sqlite:///{workdir / 'demo.db'}"
    store = Store(url)
    ingestor = Ingestor(store)
    try:
        today = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0,
                                          microsecond=0)
        shift = today - timedelta(days=days) - CAMPAIGN_START
        with _phase(out, timings, "contacts of the fleet and of the feed"):
            write_campaign(workdir / "campaign", servers=feed_servers, days=days,
                           parquet=False, seed=CAMPAIGN_SEED)
            shutil.copy(workdir / "campaign" / "contacts.csv", workdir / "feed-contacts.csv")
            _fleet_contacts(workdir / "fleet-contacts.csv", servers)
            import_contacts(store, workdir / "fleet-contacts.csv")
            import_contacts(store, workdir / "feed-contacts.csv")

        with _phase(out, timings, f"lab fleet of {servers} servers up and scanned"):
            lines: list[bytes] = []
            _run_async(_fleet_and_scan(servers, lambda r: lines.append(encode(r))))
            (workdir / "scan.jsonl").write_bytes(b"".join(lines))
            ingestor.ingest(workdir / "scan.jsonl")

        with _phase(out, timings, f"{compromised} lab triage copies built and hunted"):
            with store.session() as session:
                victims = list(session.scalars(
                    select(Host.ip).where(Host.ip.like("127.20.%"),
                                          Host.state == HostState.VULNERABLE.value)
                    .order_by(Host.id).limit(compromised)))
            hunted = []
            for n, ip in enumerate(victims):
                copy = workdir / "triage" / f"server-{n}"
                spec = TriageSpec(scenario=Scenario(SCENARIOS[n % len(SCENARIOS)]),
                                  size_bytes=800_000, seed=n, host=f"EXCH-F{n:02d}",
                                  start=(today - timedelta(days=21)).replace(tzinfo=UTC))
                build_triage(copy, spec)
                result = hunt(str(copy), workers=1)
                path = workdir / "triage" / f"server-{n}.json"
                path.write_bytes(orjson.dumps(report_json(result)))
                ingestor.ingest(path, host_ip=ip)
                result.source = f"{ip} ({spec.host})"  # the fleet view names servers so
                hunted.append(result)
            summary = fleet_summary(hunted)
            summary["answer"] = answer(summary)
            with store.transaction() as session:
                save_fleet_summary(session, summary)

        with _phase(out, timings, f"Shadowserver-style feed ({days} daily files) and rescans "
                    "ingested"):
            for csv_file in _shift_feed(workdir / "campaign", workdir / "feed", shift):
                ingestor.ingest(csv_file)
            _follow_up_scan(workdir / "rescans.jsonl", feed_servers, days, CAMPAIGN_SEED, shift)
            ingestor.ingest(workdir / "rescans.jsonl")

        sink = _Sink()
        sink.start()
        try:
            with _phase(out, timings, "notices sent to the demo SMTP sink"):
                with store.transaction() as session:
                    secret = server_secret(session)
                portal = Portal(portal_url, lambda reference: case_token(secret, reference))
                plan_round(store, Renderer(SENDER, None, portal), renotify_after=None)
                Sender(store, SmtpTarget.parse(f"127.0.0.1:{sink.port}"), SENDER).run()
                notices = len(sink.received)
        finally:
            sink.stop()

        password = secrets.token_urlsafe(12)
        with store.transaction() as session:
            add_user(session, "coordinator", password)
            worst = session.scalar(
                select(Case.reference).join(Host, Host.organisation_id == Case.organisation_id)
                .where(Host.ip.like("127.20.%"),
                       Host.state.in_([s.value for s in (HostState.BACKDOOR,
                                                         HostState.REENTERED)]))
                .limit(1))
            token = case_token(server_secret(session), worst) if worst else None
    finally:
        store.close()
    return DemoWorld(url, "coordinator", password, token, notices, timings)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _stop_on_sigterm() -> signal.Handlers | Callable[[int, FrameType | None], Any] | int | None:
    """While the world is built, SIGTERM stops it like Ctrl-C (uvicorn handles it later)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _interrupt)


def run_demo(*, port: int = 8000, workdir: Path | None = None, servers: int = 300,
             feed_servers: int = 800, days: int = 30, compromised: int = 6,
             serve: bool = True, console: Console | None = None) -> DemoWorld:
    """Build the demo world and serve the dashboard on 127.0.0.1 until Ctrl-C."""
    out = console or Console(stderr=True)
    if serve:
        _check_port_free(port)
    own_dir = workdir is None
    folder = Path(tempfile.mkdtemp(prefix="exhunt-demo-")) if workdir is None else workdir
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    previous = _stop_on_sigterm()
    try:
        world = build_world(folder, servers=servers, feed_servers=feed_servers, days=days,
                            compromised=compromised, console=out,
                            portal_url=f"http://127.0.0.1:{port}")
        out.print(f"\nready in {time.monotonic() - started:.1f} s", highlight=False)
        out.print(f"dashboard:   http://127.0.0.1:{port}/", highlight=False)
        out.print(f"coordinator: user [bold]{world.username}[/bold]  "
                  f"password [bold]{world.password}[/bold]", highlight=False)
        if world.example_token:
            out.print(f"victim view: http://127.0.0.1:{port}/access with token "
                      f"{world.example_token}", highlight=False, markup=False, soft_wrap=True)
        out.print(f"{world.notices} notices are in the SMTP sink and on each case page.",
                  highlight=False)
        if serve:
            import uvicorn

            from exhunt.web.app import create_app

            out.print("Ctrl-C stops everything.", highlight=False)
            uvicorn.run(create_app(world.db_url), host="127.0.0.1", port=port,
                        log_level="warning", server_header=False)
        return world
    except KeyboardInterrupt:
        out.print("\nstopped", highlight=False)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if own_dir:
            shutil.rmtree(folder, ignore_errors=True)
