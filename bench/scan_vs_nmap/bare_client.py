"""The physical limit of the scan benchmark: the least a client can do to read a build.

One TLS (or plain) connection per endpoint, one `GET /owa/`, the response headers read and
`X-OWA-Version` taken; no redirects, no logon page, no export tool, no scope, no retries, no
output but one line per endpoint. Whatever exhunt does beyond this is its own cost.

    python bare_client.py TARGETS.txt CONCURRENCY     (TARGETS: host:port:scheme per line)
"""

from __future__ import annotations

import asyncio
import ssl
import sys


async def one(host: str, port: int, scheme: str, ctx: ssl.SSLContext) -> str:
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ctx if scheme == "https" else None), 20)
        writer.write(f"GET /owa/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        writer.close()
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ssl.SSLError):
        return "-"
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"x-owa-version":
            return value.strip().decode("ascii", "replace")
    return "-"


async def main(path: str, concurrency: int) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    gate = asyncio.Semaphore(concurrency)
    with open(path, encoding="ascii") as listing:
        targets = [line.split(":") for line in listing.read().split()]

    async def guarded(host: str, port: str, scheme: str) -> str:
        async with gate:
            return f"{host}:{port} {await one(host, int(port), scheme, ctx)}"

    for line in await asyncio.gather(*(guarded(*t) for t in targets)):
        sys.stdout.write(line + "\n")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
