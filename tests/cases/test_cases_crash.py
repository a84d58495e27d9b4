"""Exactly once across kill -9: a real `exhunt notify` subprocess is killed while planning and
again in the middle of sending to an aiosmtpd sink; the rerun finishes the job. The sink
counts every arrival (duplicates included) by recipient and Message-ID."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from exhunt.cases.contacts import import_contacts
from exhunt.cases.ingest import Ingestor
from exhunt.store.db import Store
from exhunt.store.models import Message
from helpers.smtp_sink import RunningSink


def build_constituency(store: Store, tmp_path: Path, count: int) -> set[str]:
    contacts = tmp_path / "contacts.csv"
    feed = tmp_path / "2021-03-09-scan_exchange.csv"
    emails = set()
    with contacts.open("w") as c, feed.open("w") as f:
        c.write("network,org,country,sector,email\n")
        f.write("timestamp,ip,port,tag,naics\n")
        for n in range(count):
            ip = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
            email = f"admin{n}@org{n}.example"
            emails.add(email)
            c.write(f"{ip}/32,Organisation {n},NL,,{email}\n")
            tag = "exchange;webshell" if n % 7 == 0 else "exchange;cve-2021-26855"
            f.write(f"2021-03-09 00:00:00,{ip},443,{tag},522130\n")
    import_contacts(store, contacts)
    Ingestor(store).ingest(feed)
    return emails


def run_notify(db_url: str, sink: RunningSink) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [sys.executable, "-m", "exhunt.cli", "notify", "--db", db_url, "--smtp", sink.address,
         "--sender", "cert@coord.example", "--retry-base", "0s"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_until(predicate: object, proc: subprocess.Popen[bytes], limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while not predicate() and proc.poll() is None:  # type: ignore[operator]
        assert time.monotonic() < deadline, "notify made no progress"
        time.sleep(0.005)


@pytest.mark.slow
def test_kill_9_mid_run_every_recipient_exactly_once(db_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # the sender's handover journal lives here, as it would under ~/.local/state
    monkeypatch.setenv("EXHUNT_STATE_DIR", str(tmp_path / "state"))
    # 2,000 keeps the suite quick on a shared 2-core machine; EXHUNT_CRASH_COUNT=10000 runs the
    # issue's full size (passed on SQLite, see the report)
    count = int(os.environ.get("EXHUNT_CRASH_COUNT", "2000"))
    store = Store(db_url)
    emails = build_constituency(store, tmp_path, count)
    rng = random.Random()
    with RunningSink() as sink:
        # 1: killed while rendering the outbox (nothing sent yet)
        proc = run_notify(db_url, sink)
        time.sleep(rng.uniform(0.3, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # 2: killed in the middle of sending, at a random point
        proc = run_notify(db_url, sink)
        target = rng.randint(count // 10, count // 2)
        wait_until(lambda: len(sink.sink.received) >= target, proc)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        partial = len(sink.sink.received)
        # 3: the rerun finishes
        proc = run_notify(db_url, sink)
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()
        assert 0 < partial < count
        by_recipient = sink.sink.by_recipient()
        duplicates = {r: n for r, n in by_recipient.items() if n != 1}
        assert not duplicates, f"{len(duplicates)} recipients got more than one"
        assert set(by_recipient) == emails, f"{len(emails - set(by_recipient))} never got one"
        assert set(sink.sink.message_ids().values()) == {1}
        # 4: and one more run sends nothing
        proc = run_notify(db_url, sink)
        proc.communicate(timeout=120)
        assert len(sink.sink.received) == count
    with store.session() as s:
        assert set(s.scalars(sa.select(Message.status))) == {"sent"}
