"""Cases to notices into a loopback SMTP sink: exhunt's outbox (render + commit, then the
exactly-once send protocol, with the handover journal `exhunt notify` uses) vs a bare smtplib
loop sending the same pre-rendered messages over one connection with no bookkeeping at all.

    .venv/bin/python bench/notify/run.py [--cases 100000 --runs 3] [--db URL] [--append]

The sink is aiosmtpd's discarding handler in its own process on 127.0.0.1, offering
PIPELINING as production relays do (bench/notify/sink.py; `--no-pipelining`: the plain
handler). exhunt pipelines each notice's envelope when offered (two round trips a notice);
smtplib has no pipelining (four). Rounds alternate the two senders; before each exhunt round
the outbox is set back to pending (untimed).
"""

from __future__ import annotations

import os
import re
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import alternate, arguments, ratio_span, record, workdir

from exhunt.cases.contacts import import_contacts
from exhunt.cases.handover import HandoverJournal
from exhunt.cases.ingest import Ingestor
from exhunt.cases.notify.plan import plan_round
from exhunt.cases.notify.render import Renderer
from exhunt.cases.notify.send import Sender
from exhunt.cases.notify.smtp import SmtpTarget
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


class Senders:
    def __init__(self, store: Store, port: int, journal: Path) -> None:
        self.store, self.port, self.journal = store, port, journal
        with store.session() as session:
            # smtplib sends bytes as given: line ends made CRLF here, outside the timing
            self.messages = [(r, re.sub(rb"\r?\n", b"\r\n", b)) for r, b in
                             session.execute(sa.select(Message.recipient, Message.body))]
        self.sent: list[int] = []

    def exhunt(self) -> float:
        with self.store.transaction() as session:
            session.execute(sa.update(Message).values(status="pending", claimed_at=None,
                                                      claimed_by=None, sent_at=None))
        self.journal.unlink(missing_ok=True)
        handover = HandoverJournal(self.journal)
        start = time.perf_counter()
        sent = Sender(self.store, SmtpTarget("127.0.0.1", self.port), SENDER,
                      journal=handover).run().sent
        elapsed = time.perf_counter() - start
        handover.close()
        self.sent.append(sent)
        return elapsed

    def bare(self) -> float:
        start = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", self.port) as smtp:
            for recipient, body in self.messages:
                smtp.sendmail(SENDER, [recipient], body)
        return time.perf_counter() - start


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--db", default=None)
    parser.add_argument("--no-pipelining", action="store_true",
                        help="the sink does not offer PIPELINING")
    parser.set_defaults(runs=3)
    args = parser.parse_args()
    with workdir("notify", args.keep) as work:
        store = Store(args.db or f"sqlite:///{work / 'bench.db'}")
        contacts, feed = constituency(work, args.cases)
        start = time.perf_counter()
        import_contacts(store, contacts)
        Ingestor(store).ingest(feed)
        setup_s = time.perf_counter() - start
        port = free_port()
        handler = "aiosmtpd.handlers.Sink" if args.no_pipelining else "sink.Pipelining"
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)}
        sink = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l",
                                 f"127.0.0.1:{port}", "-c", handler], env=env)
        try:
            time.sleep(1.5)
            start = time.perf_counter()
            queued = plan_round(store, Renderer(SENDER)).queued
            plan_s = time.perf_counter() - start
            senders = Senders(store, port, work / "outbox.journal")
            series = alternate(args.runs, {"exhunt": senders.exhunt, "bare": senders.bare})
        finally:
            sink.terminate()
            sink.wait()
            store.close()
    if set(senders.sent) != {queued}:
        sys.exit(f"exhunt sent {senders.sent} of {queued} notices")
    ex, bare = series["exhunt"], series["bare"]
    body = (f"{args.cases:,} cases (contacts + ingest {setup_s:.1f} s); rendered and committed "
            f"{queued:,} notices in {plan_s:.1f} s ({queued / plan_s:,.0f}/s)\n"
            f"sink: aiosmtpd {'Sink' if args.no_pipelining else 'Sink offering PIPELINING'}\n"
            f"{args.runs} alternated rounds, median (min-max)\n"
            f"exhunt outbox, exactly-once: {ex.span()}, {queued / ex.median:,.0f} messages/s\n"
            f"bare smtplib loop          : {bare.span()}, {queued / bare.median:,.0f} messages/s\n"
            f"exhunt rate / bare rate    : {ratio_span(bare, ex)}\n")
    record(args, "Notify: exactly-once outbox vs a bare smtplib loop", body)


if __name__ == "__main__":
    main()
