"""The bench's SMTP sink: aiosmtpd's discarding handler, offering PIPELINING (RFC 2920) in its
EHLO reply as production relays do (Postfix, Exim, Exchange); aiosmtpd reads pipelined
commands in order as it reads any. Run: python -m aiosmtpd -n -l HOST:PORT -c sink.Pipelining
"""

from __future__ import annotations

from typing import Any

from aiosmtpd.handlers import Sink


class Pipelining(Sink):
    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]
