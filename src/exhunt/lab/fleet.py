"""A simulated fleet of OWA front ends on loopback, for tests, the demo and benchmarks.

Every server listens on a 127.x.y.z address (many per address, by port, ports chosen by the
OS); nothing listens beyond loopback. Each host shows one Exchange build in one exposure mode,
or misbehaves the way real servers on the internet do.

Use as a library::

    async with Fleet(count=50) as hosts:
        for h in hosts: ...            # FleetHost(host, port, scheme, mode, build, expected)

``fleet.hits`` counts requests per (host, port); ``fleet.canary_hits`` counts connections to
the out-of-scope canary that the "redirect-out" hosts point at.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import socket
import ssl
import struct
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from aiohttp import web

from exhunt.intel.builds import load_table, parse_build

WELL_BEHAVED = ("header", "logon", "exporttool", "not-exchange")
MISBEHAVING = ("tarpit", "reset", "huge", "broken-tls", "redirect-loop", "redirect-out")
ALL_MODES = WELL_BEHAVED + MISBEHAVING

HUGE_BODY_BYTES = 50 * 1024 * 1024
_CHUNK = b"A" * 65536


@dataclass(frozen=True)
class FleetHost:
    host: str
    port: int
    scheme: str  # the scheme the server speaks ("https" or "http")
    mode: str
    build: str | None  # the build the server runs
    expected: str | None  # the build a non-intrusive scanner can read from it

    def as_dict(self) -> dict[str, object]:
        return {
            "host": self.host,
            "port": self.port,
            "scheme": self.scheme,
            "mode": self.mode,
            "build": self.build,
            "expected": self.expected,
        }


@dataclass
class _Spec:
    host: FleetHost
    header_name: str = "X-OWA-Version"


def expected_build(build: str, mode: str) -> str | None:
    """What the scanner should report for a server in `mode` running `build`."""
    parsed = parse_build(build)
    if parsed is None:
        return None
    v, _ = parsed
    if mode in ("header", "exporttool"):
        return build
    if mode in ("logon", "huge"):
        # 2010 shows the full build in asset paths, 2013+ only the CU.
        return build if v[0] == 14 else ".".join(str(p) for p in v[:3])
    return None


def fleet_builds() -> list[str]:
    """Every distinct build in the table (2010 through 2019), lowest first."""
    table = load_table()
    seen = sorted({r.version for r in table.rows})
    return [".".join(str(p) for p in v) for v in seen]


def make_self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate made with the openssl CLI."""
    key, cert = directory / "lab.key", directory / "lab.crt"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-nodes", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=exhunt-lab.invalid",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return key, cert


def _logon_page(build: str) -> str:
    v, _ = parse_build(build) or ((15, 1, 0, 0), True)
    if v[0] == 14:
        base = f"/owa/{build}"
        title = "Outlook Web App"
    else:
        base = f"/owa/auth/{v[0]}.{v[1]}.{v[2]}"
        title = "Outlook"
    return (
        "<!DOCTYPE HTML>\n<!-- OwaPage = ASP.auth_logon_aspx -->\n"
        "<!-- {57A118C6-2DA9-419d-BE9A-F92B0F9A418B} -->\n"
        f"<html><head><title>{title}</title>\n"
        f'<link rel="shortcut icon" href="{base}/themes/resources/favicon.ico">\n'
        f'<link rel="stylesheet" href="{base}/themes/resources/logon.css">\n'
        "<script>function IsOwaPremiumBrowser() { return true; }</script>\n"
        "</head><body><noscript>To use Outlook, browser settings must allow scripts to run."
        "</noscript></body></html>\n"
    )


def _manifest(build: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<asmv1:assembly manifestVersion="1.0" xmlns:asmv1="urn:schemas-microsoft-com:asm.v1">\n'
        '  <assemblyIdentity name="microsoft.exchange.ediscovery.exporttool.application" '
        f'version="{build}" publicKeyToken="b1d1a6c45aa418ce" language="neutral" '
        'processorArchitecture="msil" xmlns="urn:schemas-microsoft-com:asm.v1" />\n'
        '  <deployment install="false" trustURLParameters="true" />\n'
        "</asmv1:assembly>\n"
    )


_IIS_PAGE = (
    "<!DOCTYPE html><html><head><title>IIS Windows Server</title></head>"
    '<body><img src="iisstart.png" alt="IIS"></body></html>'
)


class _QuietLostWrites(logging.Filter):
    """The lab's huge and tarpit servers keep writing after the scanner hangs up; that is
    the point of them, so asyncio's per-write complaint is noise here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "socket.send() raised exception" not in record.getMessage()


_QUIET = _QuietLostWrites()


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


class Fleet:
    """Start `count` loopback servers; an async context manager returning the host list."""

    def __init__(
        self,
        count: int,
        *,
        modes: tuple[str, ...] | None = None,
        seed: int = 1,
        per_address: int = 8,
        first_address: str = "127.20.0.1",
        https_share: float = 0.8,
        tarpit_seconds: float = 120.0,
        port: int = 0,
    ) -> None:
        if count < 0:
            raise ValueError("count must be >= 0")
        for m in modes or ():
            if m not in ALL_MODES:
                raise ValueError(f"unknown fleet mode {m!r}; choose from {', '.join(ALL_MODES)}")
        first = ipaddress.ip_address(first_address)
        if not first.is_loopback:
            raise ValueError("the lab fleet listens on loopback (127.0.0.0/8, ::1) only")
        self.count = count
        self.modes = modes
        self.seed = seed
        self.per_address = max(1, per_address)
        self.first = first
        self.https_share = https_share
        self.tarpit_seconds = tarpit_seconds
        self.port = port  # 0: the OS picks; fixed ports suit tools that scan one port list
        self.hosts: list[FleetHost] = []
        self.hits: Counter[tuple[str, int]] = Counter()
        self.host_headers: dict[tuple[str, int], str] = {}
        self.sni_names: list[str] = []
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self.arrivals: list[float] = []
        self.bytes_sent: Counter[tuple[str, int]] = Counter()  # body bytes of "huge" hosts
        self.canary: tuple[str, int] | None = None
        self.canary_hits = 0
        self._specs: dict[tuple[str, int], _Spec] = {}
        self._runner: web.AppRunner | None = None
        self._raw_servers: list[asyncio.Server] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- planning -------------------------------------------------------------------------

    def _plan_hosts(self) -> list[tuple[str, str | None, str]]:
        """(mode, build, scheme) per host, deterministic for a seed."""
        rng = random.Random(self.seed)
        builds = fleet_builds()
        modern = [b for b in builds if not b.startswith("14.")]
        if self.modes:
            modes = list(self.modes)
        else:
            modes = ["header"] * 8 + ["logon"] * 4 + ["exporttool"] * 3 + ["not-exchange"] * 2
            modes += list(MISBEHAVING)
        plan: list[tuple[str, str | None, str]] = []
        for i in range(self.count):
            mode = modes[i % len(modes)]
            pool = modern if mode == "exporttool" else builds
            build: str | None = pool[(i * 7 + rng.randrange(len(pool))) % len(pool)]
            if mode in ("not-exchange", "reset", "broken-tls", "redirect-loop", "tarpit"):
                build = None
            scheme = "https" if rng.random() < self.https_share else "http"
            if mode == "broken-tls":
                scheme = "https"
            plan.append((mode, build, scheme))
        return plan

    def _address(self, index: int) -> str:
        if self.first.version == 6:
            return str(self.first)  # ::1 is the only IPv6 loopback address
        address = self.first + index // self.per_address
        if not address.is_loopback:
            raise ValueError("fleet too large: it would leave 127.0.0.0/8")
        return str(address)

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> list[FleetHost]:
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise
        return self.hosts

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _start(self) -> None:
        logging.getLogger("asyncio").addFilter(_QUIET)
        self._tmp = tempfile.TemporaryDirectory(prefix="exhunt-lab-")
        key, cert = make_self_signed(Path(self._tmp.name))
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(str(cert), str(key))
        tls.sni_callback = self._record_sni

        # The canary stands for "somewhere out of scope": a different /8 corner of loopback.
        canary = await asyncio.start_server(self._canary_conn, "127.99.0.1", 0)
        self._raw_servers.append(canary)
        self.canary = canary.sockets[0].getsockname()[:2]

        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()

        for index, (mode, build, scheme) in enumerate(self._plan_hosts()):
            address = self._address(index)
            if mode == "broken-tls":
                server = await asyncio.start_server(self._broken_tls_conn, address, self.port)
                self._raw_servers.append(server)
                port = server.sockets[0].getsockname()[1]
            else:
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((address, self.port))
                sock.listen(128)
                port = sock.getsockname()[1]
                site = web.SockSite(
                    self._runner, sock, ssl_context=tls if scheme == "https" else None
                )
                await site.start()
            expected = expected_build(build, mode) if build else None
            host = FleetHost(address, port, scheme, mode, build, expected)
            header = ("X-OWA-Version", "x-owa-version", "X-Owa-Version")[index % 3]
            self._specs[(address, port)] = _Spec(host, header)
            self.hosts.append(host)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for server in self._raw_servers:
            server.close()
        for server in self._raw_servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._raw_servers.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        logging.getLogger("asyncio").removeFilter(_QUIET)

    # -- behaviour -------------------------------------------------------------------------

    def _record_sni(self, sslobj: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        if name:
            self.sni_names.append(name)

    async def _canary_conn(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.canary_hits += 1
        writer.close()

    async def _broken_tls_conn(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("sockname")
        if peer:
            self.hits[(peer[0], peer[1])] += 1
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader.read(512), 5)
            # Neither a TLS record nor HTTP: what a wedged TLS terminator sends.
            writer.write(b"\x16\x03\x01\x00\x05garbage-not-tls\r\n\r\n")
            await writer.drain()
        writer.close()

    def _spec_for(self, request: web.Request) -> _Spec | None:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        if not sockname:
            return None
        return self._specs.get((sockname[0], sockname[1]))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        spec = self._spec_for(request)
        if spec is None:
            raise web.HTTPNotFound()
        h = spec.host
        self.hits[(h.host, h.port)] += 1
        self.host_headers[(h.host, h.port)] = request.headers.get("Host", "")
        self.arrivals.append(asyncio.get_running_loop().time())
        self.in_flight[h.host] += 1
        self.max_in_flight[h.host] = max(self.max_in_flight[h.host], self.in_flight[h.host])
        try:
            return await self._dispatch(spec, request)
        finally:
            self.in_flight[h.host] -= 1

    async def _dispatch(self, spec: _Spec, request: web.Request) -> web.StreamResponse:
        h = spec.host
        path = request.path
        handler = {
            "header": self._exchange,
            "logon": self._exchange,
            "exporttool": self._exchange,
            "not-exchange": self._not_exchange,
            "tarpit": self._tarpit,
            "reset": self._reset,
            "huge": self._huge,
            "redirect-loop": self._redirect_loop,
            "redirect-out": self._redirect_out,
        }[h.mode]
        return await handler(spec, request, path)

    async def _exchange(self, spec: _Spec, request: web.Request, path: str) -> web.StreamResponse:
        h = spec.host
        assert h.build is not None
        headers = {"Server": "Microsoft-IIS/10.0", "X-Powered-By": "ASP.NET"}
        if h.mode == "header":
            headers[spec.header_name] = h.build
        lower = path.lower()
        exposed_pages = h.mode in ("header", "logon")
        if lower in ("/owa", "/owa/"):
            if not exposed_pages:
                return web.Response(status=403, text="Forbidden", headers=headers)
            target = f"/owa/auth/logon.aspx?url={h.scheme}%3a%2f%2f{h.host}%2fowa%2f&reason=0"
            headers["Location"] = target
            return web.Response(status=302, text="", headers=headers)
        if lower == "/owa/auth/logon.aspx":
            if not exposed_pages:
                return web.Response(status=403, text="Forbidden", headers=headers)
            return web.Response(
                text=_logon_page(h.build), content_type="text/html", headers=headers
            )
        if lower == "/ecp/current/exporttool/microsoft.exchange.ediscovery.exporttool.application":
            v = parse_build(h.build)
            if h.mode == "exporttool" or (v is not None and v[0][0] == 15 and h.mode == "header"):
                return web.Response(
                    text=_manifest(h.build), content_type="application/x-ms-application",
                    headers=headers,
                )  # fmt: skip
            return web.Response(status=404, text="Not Found", headers=headers)
        return web.Response(status=404, text="Not Found", headers=headers)

    async def _not_exchange(
        self, spec: _Spec, request: web.Request, path: str
    ) -> web.StreamResponse:
        if path == "/":
            return web.Response(text=_IIS_PAGE, content_type="text/html")
        return web.Response(status=404, text="Not Found", headers={"Server": "Microsoft-IIS/10.0"})

    async def _tarpit(self, spec: _Spec, request: web.Request, path: str) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/html"})
        await resp.prepare(request)
        loop = asyncio.get_running_loop()
        end = loop.time() + self.tarpit_seconds
        # Trickle one byte at a time: a read timeout alone never fires.
        with contextlib.suppress(ConnectionError):
            while loop.time() < end and not _gone(request):
                await resp.write(b"<")
                await asyncio.sleep(0.2)
        return resp

    async def _reset(self, spec: _Spec, request: web.Request, path: str) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # Linger 0: close() sends a TCP RST instead of a FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        raise asyncio.CancelledError

    async def _huge(self, spec: _Spec, request: web.Request, path: str) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/html"})
        resp.content_length = HUGE_BODY_BYTES
        await resp.prepare(request)
        head = _logon_page(spec.host.build or "15.1.2176.2").encode()
        with contextlib.suppress(ConnectionError):
            await resp.write(head)
            sent = len(head)
            while sent < HUGE_BODY_BYTES and not _gone(request):
                chunk = _CHUNK[: HUGE_BODY_BYTES - sent]
                await resp.write(chunk)
                sent += len(chunk)
                self.bytes_sent[(spec.host.host, spec.host.port)] += len(chunk)
        return resp

    async def _redirect_loop(
        self, spec: _Spec, request: web.Request, path: str
    ) -> web.StreamResponse:
        nxt = "/owa/b/" if path.rstrip("/").endswith("/a") else "/owa/a/"
        return web.Response(status=302, headers={"Location": nxt})

    async def _redirect_out(
        self, spec: _Spec, request: web.Request, path: str
    ) -> web.StreamResponse:
        assert self.canary is not None
        c_host, c_port = self.canary
        return web.Response(
            status=302, headers={"Location": f"http://{c_host}:{c_port}/owa/auth/logon.aspx"}
        )
