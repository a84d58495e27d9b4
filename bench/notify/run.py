"""Cases to notices into a loopback SMTP sink: exhunt's outbox (render + commit, then the
exactly-once send protocol with two commits per message) vs a bare smtplib loop sending the
same pre-rendered messages over one connection with no bookkeeping at all.

    .venv/bin/python bench/notify/run.py [--cases 100000] [--db URL]

The sink is aiosmtpd's discarding handler in its own process on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import re
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from exhunt.cases.contacts import import_contacts
from exhunt.cases.ingest import Ingestor
from exhunt.cases.notify import Renderer, Sender, SmtpTarget, plan_round
from exhunt.store.db import Store
from exhunt.store.models import Message

SENDER = "cert@coord.example"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def constituency(work: Path, count: int) -> tuple[Path, Path]:
    contacts, feed = work / "contacts.csv", work / "2021-03-09-scan_exchange.csv"
    with contacts.open("w") as c, feed.open("w") as f:
        c.write("network,org,country,sector,email\n")
        f.write("timestamp,ip,port,tag,naics\n")
        for n in range(count):
            ip = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
            c.write(f"{ip}/32,Organisation {n},NL,,admin{n}@org{n}.example\n")
            tag = "exchange;webshell" if n % 7 == 0 else "exchange;cve-2021-26855"
            f.write(f"2021-03-09 00:00:00,{ip},443,{tag},921190\n")
    return contacts, feed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="exhunt-bench-notify-"))
    store = Store(args.db or f"sqlite:///{work / 'bench.db'}")
    contacts, feed = constituency(work, args.cases)
    start = time.perf_counter()
    import_contacts(store, contacts)
    Ingestor(store).ingest(feed)
    print(f"set-up (contacts + ingest of {args.cases} cases): {time.perf_counter() - start:.1f} s")

    port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                             "-c", "aiosmtpd.handlers.Sink"])
    try:
        time.sleep(1.5)
        start = time.perf_counter()
        queued = plan_round(store, Renderer(SENDER)).queued
        plan_s = time.perf_counter() - start
        start = time.perf_counter()
        sent = Sender(store, SmtpTarget("127.0.0.1", port), SENDER).run().sent
        send_s = time.perf_counter() - start
        with store.session() as s:
            # smtplib sends bytes as given: line ends made CRLF here, outside the timing
            messages = [(r, re.sub(rb"\r?\n", b"\r\n", b)) for r, b in
                        s.execute(sa.select(Message.recipient, Message.body))]
        start = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for recipient, body in messages:
                smtp.sendmail(SENDER, [recipient], body)
        bare_s = time.perf_counter() - start
    finally:
        sink.terminate()
        sink.wait()
    print(f"rendered and committed {queued} notices: {plan_s:.1f} s ({queued / plan_s:.0f}/s)")
    print(f"exhunt outbox send:  {sent} in {send_s:.1f} s ({sent / send_s:.0f} messages/s)")
    print(f"bare smtplib loop:   {len(messages)} in {bare_s:.1f} s "
          f"({len(messages) / bare_s:.0f} messages/s)")
    print(f"end to end (render + exactly-once send): {queued / (plan_s + send_s):.0f} messages/s")
    print(f"ratio outbox send / bare loop: {(sent / send_s) / (len(messages) / bare_s):.2f}x")


if __name__ == "__main__":
    main()
