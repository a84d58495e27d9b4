"""The SMTP wire: where to send, how a notice's bytes travel (RFC 5321), and how a step can
fail (retry later, never, or another run has the notice)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from exhunt.errors import UsageError


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> SmtpTarget:
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise UsageError(f"--smtp wants HOST:PORT, got {text!r}")
        return cls(host.strip("[]"), int(port))


END_OF_DATA = b".\r\n"  # after the CRLF that ends the last line (RFC 5321 4.1.1.4)


def smtp_payload(body: bytes) -> bytes:
    """CRLF line ends, leading dots doubled (RFC 5321 4.5.2), then the end-of-data marker."""
    data = re.sub(rb"\r\n|\n|\r", b"\r\n", body)
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + END_OF_DATA


class TemporaryFailure(Exception):
    pass


class TakenElsewhere(Exception):
    pass


class PermanentFailure(Exception):
    pass
