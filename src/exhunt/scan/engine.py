"""The scan engine: asyncio + aiohttp, non-intrusive, scope-bound.

Per endpoint it fetches at most the pages a browser fetches: ``/owa/`` (and its in-scope
redirects), ``/owa/auth/logon.aspx`` and the export-tool manifest, stopping as soon as a
4-part build is known. No exploit, no SSRF probe, no crafted cookie or path is ever sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ipaddress
import random
import socket
import ssl
import warnings
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from exhunt.intel.builds import TRACKED_CVES, explain
from exhunt.model import iso
from exhunt.scan.fingerprint import (
    EXPORT_TOOL,
    LOGON_PAGE,
    OWA_ROOT,
    Page,
    fingerprint,
    has_exact_build,
    redirect_target,
)
from exhunt.scan.scope import Scope
from exhunt.scan.targets import Endpoint

Result = dict[str, Any]

# The current endpoint's HTTP session (each worker task probes one endpoint at a time).
_SESSION: contextvars.ContextVar[aiohttp.ClientSession] = contextvars.ContextVar("scan_session")


@dataclass(frozen=True)
class ScanOptions:
    ports: tuple[int, ...] = (443,)
    concurrency: int = 256
    rate: float = 0.0  # requests per second over the whole run; 0 = unlimited
    per_host: int = 2  # requests in flight to one IP at a time
    host_delay: float = 0.0  # seconds between two requests to one IP
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    request_timeout: float = 20.0  # one request, headers and capped body
    target_timeout: float = 90.0  # everything for one endpoint
    max_body: int = 256 * 1024
    retries: int = 1
    backoff: float = 0.5
    max_redirects: int = 3
    resolve_timeout: float = 5.0
    user_agent: str = "Mozilla/5.0 (compatible; exhunt-scan; non-intrusive version check)"


class FetchError(Exception):
    """A request that produced no HTTP response; `kind` says why."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def client_tls_context() -> ssl.SSLContext:
    """No certificate verification (self-signed is the norm), old protocols allowed.

    Built bare rather than with create_default_context(): nothing is verified, so loading the
    system's CA store (a fifth of a second at start-up) would buy nothing."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with contextlib.suppress(ValueError, ssl.SSLError), warnings.catch_warnings():
        # Old Exchange front ends still speak TLS 1.0; reading their build needs it.
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


class RateLimiter:
    """A global pace: at most `rate` request starts per second."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            loop = asyncio.get_running_loop()
            now = loop.time()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


class HostGate:
    """Per-IP politeness: a few requests in flight and a minimum gap between them."""

    def __init__(self, per_host: int, delay: float) -> None:
        self.per_host = max(1, per_host)
        self.delay = delay
        self._gates: dict[str, tuple[asyncio.Semaphore, list[float], list[int]]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, ip: str) -> AsyncIterator[None]:
        gate = self._gates.get(ip)
        if gate is None:
            gate = (asyncio.Semaphore(self.per_host), [0.0], [0])
            self._gates[ip] = gate
        sem, last, users = gate
        users[0] += 1
        try:
            async with sem:
                if self.delay:
                    loop = asyncio.get_running_loop()
                    wait = last[0] + self.delay - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    last[0] = loop.time()
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                # Forget idle hosts so memory stays flat over millions of targets.
                self._gates.pop(ip, None)


def _host_for_url(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def _now() -> str:
    return iso(datetime.now(UTC)) or ""


def empty_result(ep: Endpoint) -> Result:
    return {
        "target": ep.target,
        "ip": None,
        "port": ep.port,
        "scheme": None,
        "time": _now(),
        "reachable": False,
        "exchange": False,
        "build": None,
        "build_source": None,
        "product": None,
        "release": None,
        "vulnerabilities": {},
        "error": None,
        "redirect": None,
    }


def _classify(exc: BaseException) -> FetchError:
    if isinstance(exc, FetchError):
        return exc
    if isinstance(exc, aiohttp.ClientConnectorSSLError | aiohttp.ClientSSLError | ssl.SSLError):
        inner = getattr(exc, "os_error", exc)
        reason = getattr(inner, "reason", None) or type(inner).__name__
        return FetchError("tls", f"TLS handshake failed ({reason})")
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_err = exc.os_error
        if isinstance(os_err, ConnectionRefusedError):
            return FetchError("refused", "connection refused")
        return FetchError("connect", f"{type(os_err).__name__}: {str(os_err)[:150]}")
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return FetchError("timeout", "no complete response in time")
    if isinstance(exc, aiohttp.ServerDisconnectedError | ConnectionResetError):
        return FetchError("reset", "connection closed by the server")
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError):
        return FetchError("protocol", str(exc)[:200])
    if isinstance(exc, aiohttp.ClientError | OSError):
        return FetchError("connection", f"{type(exc).__name__}: {str(exc)[:180]}")
    return FetchError("error", f"{type(exc).__name__}: {str(exc)[:180]}")


class Scanner:
    """One scan run: the scope and the pacing shared by every endpoint."""

    def __init__(self, scope: Scope, options: ScanOptions) -> None:
        self.scope = scope
        self.opts = options
        self.limiter = RateLimiter(options.rate)
        self.gate = HostGate(options.per_host, options.host_delay)
        self.tls = client_tls_context()
        self.requests_sent = 0

    async def __aenter__(self) -> Scanner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def _endpoint_session(self) -> aiohttp.ClientSession:
        """A session per endpoint: its 2-4 requests share a connection, and the connection
        (with its TLS buffers) is freed the moment the endpoint is done, so memory stays flat
        however many hosts the run covers."""
        connector = aiohttp.TCPConnector(
            limit=4,
            limit_per_host=0,
            ssl=self.tls,
            keepalive_timeout=15,
            use_dns_cache=False,
        )
        timeout = aiohttp.ClientTimeout(
            total=self.opts.request_timeout,
            sock_connect=self.opts.connect_timeout,
            sock_read=self.opts.read_timeout,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True,
            trust_env=False,
        )

    # -- resolution and scope ---------------------------------------------------------------

    async def resolve(self, name: str, port: int) -> list[str]:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.opts.resolve_timeout):
            infos = await loop.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        seen: list[str] = []
        for info in infos:
            addr = str(info[4][0])
            if addr not in seen:
                seen.append(addr)
        return seen

    async def admit(self, host: str, port: int) -> tuple[str | None, str | None]:
        """(ip to connect to, None) if `host` is in scope, else (None, reason)."""
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is not None:
            if self.scope.ip_allowed(str(ip)):
                return str(ip), None
            return None, f"{ip} is outside scope or excluded"
        if self.scope.name_excluded(host):
            return None, f"{host} is on the exclusion list"
        try:
            addrs = await self.resolve(host, port)
        except (OSError, TimeoutError) as e:
            return None, f"cannot resolve {host}: {str(e)[:100]}"
        ok, reason = self.scope.addresses_allowed(host, addrs)
        if not ok:
            return None, reason
        return addrs[0], None

    # -- one request ---------------------------------------------------------------------------

    async def fetch(
        self, scheme: str, ip: str, port: int, name: str | None, path_query: str
    ) -> Page:
        session = _SESSION.get()
        url = f"{scheme}://{_host_for_url(ip)}:{port}{path_query}"
        headers = {"User-Agent": self.opts.user_agent, "Accept": "text/html,*/*;q=0.8"}
        if name:
            default = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
            headers["Host"] = name if default else f"{name}:{port}"
        extra: dict[str, Any] = {}
        if scheme == "https" and name:
            extra["server_hostname"] = name  # SNI carries the name, as a browser would
        last: FetchError | None = None
        for attempt in range(self.opts.retries + 1):
            if attempt:
                await asyncio.sleep(
                    self.opts.backoff * (2 ** (attempt - 1)) * random.uniform(1, 1.5)
                )
            await self.limiter.wait()
            try:
                async with self.gate.hold(ip):
                    self.requests_sent += 1
                    async with (
                        asyncio.timeout(self.opts.request_timeout),
                        session.get(
                            url, headers=headers, allow_redirects=False, ssl=self.tls, **extra
                        ) as resp,
                    ):
                        body = await self._read_capped(resp)
                        return Page(
                            urlsplit(path_query).path,
                            resp.status,
                            tuple((str(k), str(v)) for k, v in resp.headers.items()),
                            body.decode("utf-8", errors="replace"),
                        )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                last = _classify(exc)
                if last.kind in ("tls", "refused", "protocol"):
                    break  # retrying cannot help
        assert last is not None
        raise last

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> bytes:
        cap = self.opts.max_body
        parts: list[bytes] = []
        got = 0
        while got < cap:
            chunk = await resp.content.read(min(65536, cap - got))
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)
            got += len(chunk)
        if not resp.content.at_eof():
            resp.close()  # drop the connection instead of draining a huge body
        return b"".join(parts)

    # -- one endpoint ----------------------------------------------------------------------------

    async def probe(self, ep: Endpoint) -> Result:
        result = empty_result(ep)
        session = self._endpoint_session()
        token = _SESSION.set(session)
        try:
            async with asyncio.timeout(self.opts.target_timeout):
                await self._probe(ep, result)
        except TimeoutError:
            result["error"] = _join(result["error"], "timeout: endpoint took too long")
        except Exception as e:  # a bug here must cost one endpoint, not the whole run
            result["error"] = _join(result["error"], f"internal error: {type(e).__name__}: {e}")
        finally:
            _SESSION.reset(token)
            await session.close()
        result["time"] = _now()
        return result

    async def _probe(self, ep: Endpoint, result: Result) -> None:
        ip, refusal = await self.admit(ep.target, ep.port)
        if ip is None:
            result["error"] = f"refused: {refusal}"
            return
        result["ip"] = ip
        name = None if _is_ip(ep.target) else ep.target
        schemes = ("http", "https") if ep.port == 80 else ("https", "http")
        first: Page | None = None
        errors: list[str] = []
        for scheme in schemes:
            try:
                first = await self.fetch(scheme, ip, ep.port, name, OWA_ROOT)
            except FetchError as e:
                errors.append(f"{scheme} {e}")
                if e.kind == "refused":
                    break
                continue
            result["scheme"] = scheme
            break
        if first is None:
            result["error"] = "; ".join(errors) or "no response"
            return
        result["reachable"] = True
        pages = [first]
        scheme = result["scheme"]
        notes: list[str] = []
        await self._follow(scheme, ip, ep, name, first, pages, result, notes)
        for path in (LOGON_PAGE, EXPORT_TOOL):
            if has_exact_build(pages):
                break
            if any(p.path == path and p.status == 200 for p in pages):
                continue  # already fetched through the /owa/ redirect
            try:
                pages.append(await self.fetch(scheme, ip, ep.port, name, path))
            except FetchError as e:
                notes.append(f"{path}: {e}")
        self._judge(pages, result)
        if notes:
            result["error"] = "; ".join(notes)[:500]

    async def _follow(
        self,
        scheme: str,
        ip: str,
        ep: Endpoint,
        name: str | None,
        page: Page,
        pages: list[Page],
        result: Result,
        notes: list[str],
    ) -> None:
        """Follow /owa/ redirects while they stay in scope; record the first target."""
        base = f"{scheme}://{name or _host_for_url(ip)}:{ep.port}{OWA_ROOT}"
        seen = {base}
        for _ in range(self.opts.max_redirects):
            location = redirect_target(page)
            if not location:
                return
            absolute = urljoin(base, location)
            if result["redirect"] is None:
                result["redirect"] = absolute[:2048]
            if has_exact_build(pages):
                return  # the build is known; the redirect is recorded, not needed
            if absolute in seen:
                notes.append("redirect loop")
                return
            seen.add(absolute)
            parts = urlsplit(absolute)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                notes.append("redirect to a non-web URL not followed")
                return
            try:
                port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError:
                notes.append("redirect with a bad port not followed")
                return
            host = parts.hostname
            same = host in (ep.target, ip, name) and port == ep.port
            next_ip: str | None = ip
            reason: str | None = None
            if not same:
                next_ip, reason = await self.admit(host, port)
            if next_ip is None:
                notes.append(f"redirect out of scope not followed: {reason}")
                return
            path_query = parts.path or "/"
            if parts.query:
                path_query += "?" + parts.query
            next_name = None if _is_ip(host) else host
            try:
                page = await self.fetch(parts.scheme, next_ip, port, next_name, path_query)
            except FetchError as e:
                notes.append(f"redirect target: {e}")
                return
            pages.append(page)
            base = absolute
        if redirect_target(page):
            notes.append(f"redirect loop or chain longer than {self.opts.max_redirects}")

    def _judge(self, pages: list[Page], result: Result) -> None:
        fp = fingerprint(pages)
        result["exchange"] = fp.exchange
        result["build"] = fp.build
        result["build_source"] = fp.build_source
        if fp.build is not None:
            try:
                info = explain(fp.build)
            except ValueError:
                return
            result["product"] = info.product
            result["release"] = info.release
            result["vulnerabilities"] = dict(info.vulnerabilities)
        elif fp.exchange:
            result["vulnerabilities"] = dict.fromkeys(TRACKED_CVES, "unknown")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _join(a: str | None, b: str) -> str:
    return b if not a else f"{a}; {b}"


async def run_scan(
    endpoints: Iterable[Endpoint],
    scope: Scope,
    options: ScanOptions,
    emit: Callable[[Result], None],
) -> int:
    """Probe every endpoint with a bounded pool of workers; `emit` gets each result.

    Endpoints are pulled lazily through a small queue, so memory stays flat however long
    the target list is. Returns the number of requests sent.
    """
    queue: asyncio.Queue[Endpoint | None] = asyncio.Queue(maxsize=options.concurrency * 2)
    async with Scanner(scope, options) as scanner:

        async def worker() -> None:
            while True:
                ep = await queue.get()
                if ep is None:
                    return
                emit(await scanner.probe(ep))

        workers = [asyncio.create_task(worker()) for _ in range(max(1, options.concurrency))]
        try:
            for ep in endpoints:
                await queue.put(ep)
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
        return scanner.requests_sent


def scan_list(endpoints: list[Endpoint], scope: Scope, options: ScanOptions) -> list[Result]:
    """Synchronous helper (used by Dask workers): scan a list, return results in order."""
    results: dict[tuple[str, int], Result] = {}

    def keep(r: Result) -> None:
        results[(r["target"], r["port"])] = r

    asyncio.run(run_scan(endpoints, scope, options, keep))
    return [results[ep.key] for ep in endpoints if ep.key in results]
