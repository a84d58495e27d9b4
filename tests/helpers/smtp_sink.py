"""An aiosmtpd sink on 127.0.0.1 that keeps every message it accepts (duplicates included)."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Sink:
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    refuse_next: int = 0  # answer this many DATA with 451 (temporary failure)
    pipelining: bool = False  # offer PIPELINING (RFC 2920) in the EHLO reply, as MTAs do
    refused_addresses: set[str] = field(default_factory=set)  # answer RCPT TO with 550
    commands: Counter[str] = field(default_factory=Counter)  # EHLO/RCPT seen

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        self.commands["EHLO"] += 1
        if self.pipelining:
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        self.commands["RCPT"] += 1
        if address in self.refused_addresses:
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.refuse_next > 0:
                self.refuse_next -= 1
                return "451 try again later"
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          bytes(envelope.content)))
        return "250 OK"

    def message_ids(self) -> Counter[str]:
        """How many times each Message-ID arrived: used to COUNT duplicates, never to hide them."""
        with self.lock:
            return Counter(str(r.message["Message-ID"]) for r in self.received)

    def by_recipient(self) -> Counter[str]:
        with self.lock:
            return Counter(rcpt for r in self.received for rcpt in r.rcpt_tos)


class RunningSink:
    def __init__(self, *, pipelining: bool = False) -> None:
        self.sink = Sink(pipelining=pipelining)
        self.port = free_port()
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port,
                                     data_size_limit=50 << 20)

    def __enter__(self) -> RunningSink:
        self.controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.controller.stop()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"
