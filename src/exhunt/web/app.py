"""The dashboard and victim portal: FastAPI over the coordination store.

Every page is rendered by Jinja2 with autoescaping; every response carries a strict
Content-Security-Policy (no scripts at all, styles only from /static). Uploaded hunt reports
are attacker-controlled HTML-to-be: they are shown only through a separate response whose CSP
sandboxes it (no scripts, no same origin, no network).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader
from pydantic import (
    BaseModel,
)
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exhunt import contract
from exhunt.cases.ingest import Ingestor
from exhunt.contract import ContractError
from exhunt.model import RANK, HuntReport
from exhunt.store.db import Store
from exhunt.store.models import Case, Event, Host, utcnow
from exhunt.web import queries
from exhunt.web.charts import PALETTE, Series, bar_chart, line_chart
from exhunt.web.hunt_view import uploaded_report_html
from exhunt.web.security import (
    DEFAULT_TOKEN_GRACE,
    FailureLimiter,
    IPNetwork,
    Principal,
    WebReport,
    case_token_lapsed,
    check_password,
    check_token,
    client_address,
    close_session,
    create_web_tables,
    current_token,
    open_session,
    session_principal,
    token_account,
    token_reference,
    trusted_networks,
    user_account,
)

SESSION_COOKIE = "exhunt_session"
PRE_CSRF_COOKIE = "exhunt_csrf"
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_FINDINGS = 20_000
CASES_PER_PAGE = 200
FORM_OVERHEAD = 64 * 1024  # multipart framing and the small fields around an uploaded file
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")
# an uploaded report: its own inline styles only; sandbox = unique origin, no scripts, no forms
REPORT_CSP = ("sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
              "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")



# keys that mark another kind of evidence: an `exhunt scan` line, a Shadowserver row, or an
# address the uploader wants the report tied to; a hunt report never carries them
OTHER_EVIDENCE_KEYS = frozenset({
    "ip", "address", "target", "reachable", "exchange", "vulnerabilities", "port", "time",
    "timestamp", "tag", "asn", "geo", "naics", "sector", "hostname", "servername", "version",
})
MAX_EXTRA_KEYS = 32  # the hunt adds keys over time (attackers, next_steps, waves, ...)


def _no_other_evidence(value: Any, where: str) -> None:
    if isinstance(value, dict):
        other = sorted(OTHER_EVIDENCE_KEYS & set(value))
        if other:
            raise ContractError(f"{where}carries {', '.join(other)}, which a hunt report never "
                                "has (a scan line or feed row is not a hunt report)")
        if len(value) > MAX_EXTRA_KEYS + 8:
            raise ContractError(f"{where}has more than {MAX_EXTRA_KEYS + 8} keys")


class UploadResult(BaseModel):
    case: str
    host: str
    verdict: str
    ingest: str
    host_state: str | None
    case_status: str
    report_id: int


SECURITY_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
HSTS = "max-age=31536000"  # sent when served over HTTPS (Secure cookies)
OWN_CHOICE = {"content-security-policy", "cache-control"}  # a route may set a stricter one


class SecurityHeaders:
    """Outermost ASGI layer: every answer the application gives carries the security headers,
    whoever made it (a route, an early refusal, a validation error, a server error)."""

    def __init__(self, app: ASGIApp, extra: dict[str, str] | None = None) -> None:
        self.app = app
        self.headers = SECURITY_HEADERS | (extra or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    if name.lower() in OWN_CHOICE:
                        headers.setdefault(name, value)
                    else:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class PortalApp(FastAPI):
    https = False

    def build_middleware_stack(self) -> ASGIApp:
        extra = {"Strict-Transport-Security": HSTS} if self.https else None
        return SecurityHeaders(super().build_middleware_stack(), extra)


def _templates() -> Environment:
    env = Environment(loader=PackageLoader("exhunt.web", "templates"), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True)
    return env


@dataclass(frozen=True, slots=True)
class PortalSettings:
    """What the operator sets about victim tokens and uploads."""

    contact: str = "the CERT that sent your notice"
    token_grace: timedelta = DEFAULT_TOKEN_GRACE  # tokens open resolved cases this long
    case_reports: int = 50  # uploads a token holder may make to one case
    case_bytes: int = 50 * 1024 * 1024


class Web:
    """State shared by the routes: the store, templates, throttles."""

    def __init__(self, store: Store, *, secure_cookies: bool, max_upload: int,
                 limiter: FailureLimiter, trusted_proxies: Sequence[IPNetwork] = (),
                 settings: PortalSettings | None = None) -> None:
        self.store = store
        self.settings = settings or PortalSettings()
        self.templates = _templates()
        self.secure_cookies = secure_cookies
        self.max_upload = max_upload
        self.limiter = limiter
        self.trusted_proxies = list(trusted_proxies)

    def session_of(self, session: Session, request: Request) -> Principal | None:
        """The session cookie's principal; a victim's only while the case's token still
        opens the case (it may have expired since)."""
        found = session_principal(session, request.cookies.get(SESSION_COOKIE))
        if found is None:
            return None
        if found.kind == "victim" and case_token_lapsed(session, found.subject,
                                                        self.settings.token_grace):
            return None
        if found.coordinator and user_account(session, found.subject) is None:
            return None  # removed meanwhile
        return found

    def token_refusal(self, why: str) -> str:
        """What the holder of a once-good token is told, and whom to ask."""
        contact = self.settings.contact
        return {
            "revoked": f"This token was revoked. Contact {contact} for a new one.",
            "expired": f"This token has expired: its case was closed. Contact {contact} if "
                       "your server needs the case again.",
            "replaced": "This token was replaced by a newer one: use the token in the latest "
                        f"notice, or contact {contact}.",
        }[why]

    def client_of(self, request: Request) -> str:
        """The client's address, through the operator's trusted proxies only."""
        return client_address(request.client.host if request.client else None,
                              request.headers.get("x-forwarded-for"), self.trusted_proxies)

    def page(self, name: str, principal: Principal | None, status: int = 200,
             **context: Any) -> HTMLResponse:
        html = self.templates.get_template(name).render(me=principal, **context)
        return HTMLResponse(html, status_code=status)

    def set_session(self, response: Response, cookie: str) -> None:
        response.set_cookie(SESSION_COOKIE, cookie, httponly=True, samesite="strict",
                            secure=self.secure_cookies, path="/",
                            max_age=12 * 3600)


def create_app(db_url: str | None = None, *, secure_cookies: bool = False,
               max_upload: int = MAX_UPLOAD_BYTES, login_limit: int = 5,
               login_window: float = 300.0, address_limit: int = 50,
               trusted_proxies: Sequence[str] = (),
               settings: PortalSettings | None = None) -> FastAPI:
    """The dashboard over the store at `db_url` (SQLite path or URL, PostgreSQL URL).
    `trusted_proxies`: CIDRs of the reverse proxies whose X-Forwarded-For is believed."""
    store = Store(db_url)
    create_web_tables(store.engine)
    web = Web(store, secure_cookies=secure_cookies, max_upload=max_upload,
              limiter=FailureLimiter(login_limit, login_window, address_limit=address_limit),
              trusted_proxies=trusted_networks(trusted_proxies), settings=settings)
    app = PortalApp(title="exhunt dashboard", version="1",
                  description="Campaign dashboard and victim portal for exhunt.",
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.web = web
    app.https = secure_cookies

    @app.middleware("http")
    async def refuse_early(request: Request,
                           call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if _has_nul(request):  # no store text column takes NUL (PostgreSQL refuses it)
            return JSONResponse({"detail": "NUL characters are not accepted"}, status_code=400)
        if request.method == "POST":
            refused = _body_refusal(request, web.max_upload)
            if refused is not None:
                return refused
        return await call_next(request)

    _api_routes(app, web)
    _page_routes(app, web)
    return app


def _has_nul(request: Request) -> bool:
    query = request.scope.get("query_string", b"")
    return "\x00" in request.url.path or b"%00" in query or b"\x00" in query


def _body_refusal(request: Request, limit: int) -> Response | None:
    """Refuse an oversized POST before any form parsing spools it; forms must say their size
    (browsers always do); the JSON upload route also counts the bytes as they arrive."""
    declared = request.headers.get("content-length")
    if declared is None:
        if request.url.path == "/api/reports":
            return None
        return JSONResponse({"detail": "Content-Length required"}, status_code=411)
    if not declared.isdigit() or int(declared) > limit + FORM_OVERHEAD:
        return JSONResponse({"detail": f"request body larger than {limit} bytes"},
                            status_code=413)
    return None


# --- who is asking ----------------------------------------------------------------------------


def principal_of(web: Web, session: Session, request: Request) -> Principal | None:
    """From the session cookie, else from a victim token in `Authorization: Bearer`."""
    found = web.session_of(session, request)
    if found is not None:
        return found
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        client = web.client_of(request)
        token = header[7:]
        named = token_reference(token)
        if web.limiter.account_blocked(f"case:{named}" if named else None):
            raise HTTPException(429, "too many failed attempts; wait a few minutes")
        check = check_token(session, token, web.settings.token_grace)
        if check.refusal is not None:
            raise HTTPException(403, web.token_refusal(check.refusal))
        case = check.case
        if case is None:
            blocked = web.limiter.address_blocked(client)
            web.limiter.failed(client, token_account(session, token))
            if blocked:
                raise HTTPException(429, "too many failed attempts; wait a few minutes")
            raise HTTPException(401, "token not valid")
        return Principal("victim", case.reference, csrf="")
    return None


def require(principal: Principal | None, *, coordinator: bool = False,
            case_reference: str | None = None) -> Principal:
    if principal is None:
        raise HTTPException(401, "log in, or give the token from your notice",
                            headers={"WWW-Authenticate": "Bearer"})
    if coordinator and not principal.coordinator:
        raise HTTPException(403, "coordinators only")
    if case_reference is not None and not principal.may_see_case(case_reference):
        raise HTTPException(403, "this token does not open that case")
    return principal


def host_case_reference(session: Session, host: Host) -> str | None:
    if host.organisation_id is None:
        return None
    return session.scalar(select(Case.reference)
                          .where(Case.organisation_id == host.organisation_id))


def _case(session: Session, reference: str) -> Case:
    case = session.scalar(select(Case).where(Case.reference == reference[:64]))
    if case is None:
        raise HTTPException(404, "no such case")
    return case


def _host(session: Session, principal: Principal, ip: str) -> Host:
    host = session.scalar(select(Host).where(Host.ip == ip[:64]))
    if host is None:
        if principal.coordinator:
            raise HTTPException(404, "no such host")
        raise HTTPException(403, "this token does not open that host")
    if not principal.coordinator and host_case_reference(session, host) != principal.subject:
        raise HTTPException(403, "this token does not open that host")
    return host


# --- uploads --------------------------------------------------------------------------------


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"report larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"report larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_report(data: bytes) -> tuple[HuntReport, dict[str, Any]]:
    """The upload as one hunt report (checked) and the document it was parsed from; parsed
    once, here. Anything else is refused with a plain reason."""
    if data.startswith(b"\x1f\x8b"):
        raise HTTPException(422, "this is a gzip file; upload the JSON report exhunt hunt wrote,"
                                 " uncompressed")
    if data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        raise HTTPException(422, "the report starts with a byte-order mark; upload the file "
                                 "exhunt hunt wrote, unchanged")
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(422, "not one JSON document (a scan JSONL file or a CSV feed is "
                                 f"not a hunt report): {exc}") from exc
    if not isinstance(document, dict):
        raise HTTPException(422, "a hunt report is one JSON object, not a list or a value; "
                                 "upload one report per host")
    try:
        _no_other_evidence(document, "")
        _no_other_evidence(document.get("host"), "host ")
        report, _ = HuntReport.from_json(document, "upload")
    except ContractError as exc:
        raise HTTPException(422, f"not an exhunt hunt report: {exc}") from exc
    return report, document


def _names(host: Host) -> set[str]:
    return {n.lower() for n in (host.hostname, host.servername) if n}


def choose_host(session: Session, case: Case, report: HuntReport, host_ip: str | None) -> str:
    """The case's host the report is about: the address given, else the one whose name the
    report carries, else the case's only host. Never a host of another case: a report whose
    host name is known only for another case's host is refused."""
    hosts = list(session.scalars(select(Host).where(Host.organisation_id == case.organisation_id)))
    name = (report.host.name or "").strip().lower()
    named = [h for h in hosts if name and name in _names(h)]
    # a name with NUL matches no stored host (no store text holds NUL; PostgreSQL refuses it)
    if name and "\x00" not in name and not named and session.scalar(select(Host.id).where(
            or_(func.lower(Host.hostname) == name, func.lower(Host.servername) == name))):
        raise HTTPException(422, "the report is about a host that is not one of this case's "
                                 "hosts; upload the report of your own server")
    if host_ip:
        chosen = [h for h in hosts if h.ip == host_ip.strip()]
        if not chosen:
            raise HTTPException(422, "that address is not one of this case's hosts")
        if named and chosen[0] not in named:
            raise HTTPException(422, "the report names another of this case's hosts than the "
                                     "address given")
        return chosen[0].ip
    if len(named) == 1:
        return named[0].ip
    if len(hosts) == 1:
        return hosts[0].ip
    raise HTTPException(422, "say which of this case's hosts the report is about (host_ip)")


def check_quota(session: Session, settings: PortalSettings, case_id: int, size: int) -> None:
    """A token holder's uploads to one case are bounded in number and bytes; the reports
    already received stay."""
    count, stored = session.execute(
        select(func.count(WebReport.id), func.coalesce(func.sum(func.length(WebReport.body)), 0))
        .where(WebReport.case_id == case_id)).one()
    if count >= settings.case_reports or stored + size > settings.case_bytes:
        raise HTTPException(413, f"this case's upload quota is reached ({count} reports, "
                                 f"{stored} bytes received, at most {settings.case_reports} "
                                 f"reports and {settings.case_bytes} bytes); the reports already "
                                 f"received are kept. Contact {settings.contact} to send more")


def accept_report(web: Web, principal: Principal, reference: str, data: bytes,
                  host_ip: str | None) -> UploadResult:
    """Check, ingest (the case moves on it), keep the report and note it in the history.
    Every refusal comes before anything is written."""
    require(principal, case_reference=reference)
    report, document = parse_report(data)
    with web.store.session() as session:
        case = _case(session, reference)
        ip = choose_host(session, case, report, host_ip)
        case_id = case.id
        if not principal.coordinator:
            check_quota(session, web.settings, case_id, len(data))
    result = Ingestor(web.store).ingest_report(document, data, f"portal upload for {reference}",
                                               host_ip=ip)
    if result.rejected:
        raise HTTPException(422, "the report could not be used; see the rejects list")
    with web.store.transaction() as session:
        stored = WebReport(case_id=case_id, host_ip=ip, verdict=report.verdict.label, body=data,
                           uploaded_by=principal.kind, received_at=utcnow())
        session.add(stored)
        session.add(Event(case_id=case_id, kind="report-received", at=utcnow(),
                          detail=f"hunt report for {ip} uploaded by the {principal.kind}: "
                                 f"verdict {report.verdict.label} ({result.status})"))
        session.flush()
        report_id = stored.id
    with web.store.session() as session:
        case = _case(session, reference)
        state = session.scalar(select(Host.state).where(Host.ip == ip))
        return UploadResult(case=reference, host=ip, verdict=report.verdict.label,
                            ingest=result.status, host_state=state, case_status=case.status,
                            report_id=report_id)


# --- JSON API -------------------------------------------------------------------------------


def _api_routes(app: FastAPI, web: Web) -> None:
    def who(request: Request, session: Session) -> Principal | None:
        return principal_of(web, session, request)

    @app.get("/api/openapi.json", include_in_schema=False)
    def api_description(request: Request) -> dict[str, Any]:
        """The OpenAPI description, for coordinators only (it maps the whole surface)."""
        with web.store.session() as session:
            require(who(request, session), coordinator=True)
        return app.openapi()

    @app.get("/api/summary", tags=["api"])
    def api_summary(request: Request) -> dict[str, Any]:
        """Counts by state, by country, sector and AS, the notice funnel, states over time."""
        with web.store.session() as session:
            require(who(request, session), coordinator=True)
            return queries.summary(session)

    @app.get("/api/uptake", tags=["api"])
    def api_uptake(request: Request) -> list[dict[str, Any]]:
        """The patch-uptake curve by day: of the hosts ever seen vulnerable, the share confirmed
        patched or clean (`patched_share`) and the share no longer reported
        (`unreported_share`)."""
        with web.store.session() as session:
            require(who(request, session), coordinator=True)
            return queries.uptake(session)

    @app.get("/api/cases", tags=["api"])
    def api_cases(request: Request, q: Annotated[str, Query(max_length=200)] = "",
                  sort: Annotated[str, Query(max_length=32)] = "reference",
                  desc: bool = False,
                  limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
                  offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                  ) -> list[dict[str, Any]]:
        """Cases, searchable by reference, organisation, host address or name; one page of
        `limit` rows from `offset` in the chosen order."""
        with web.store.session() as session:
            require(who(request, session), coordinator=True)
            return queries.case_page(session, q, sort, desc, limit, offset)[1]

    @app.get("/api/hosts", tags=["api"])
    def api_hosts(request: Request,
                  group: Annotated[str, Query(max_length=32)] = "",
                  limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
                  offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                  ) -> dict[str, Any]:
        """Hosts in a headline group (exposed, vulnerable, unreported, backdoored, clean) or
        state, or all: `total` and one page of `limit` hosts from `offset`, by address."""
        with web.store.session() as session:
            require(who(request, session), coordinator=True)
            total, rows = queries.host_page(session, group, limit, offset)
            return {"total": total, "offset": offset, "hosts": rows}

    @app.get("/api/cases/{reference}", tags=["api"])
    def api_case(request: Request, reference: str,
                 host_offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                 ) -> dict[str, Any]:
        """One case: hosts (`hosts_total`, 500 from `host_offset`) and their evidence,
        notices, history, reports received."""
        with web.store.session() as session:
            principal = require(who(request, session), case_reference=reference)
            return queries.case_detail(session, _case(session, reference),
                                       with_bodies=principal.coordinator,
                                       host_offset=host_offset)

    @app.get("/api/hosts/{ip}", tags=["api"])
    def api_host(request: Request, ip: str) -> dict[str, Any]:
        """One host and every observation of it over time."""
        with web.store.session() as session:
            principal = require(who(request, session))
            return queries.host_detail(session, _host(session, principal, ip))

    upload_schema = contract.JSON_SCHEMA

    @app.post("/api/reports", tags=["api"], response_model=UploadResult,
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": upload_schema}}}})
    async def api_report(request: Request,
                         case: Annotated[str | None, Query(max_length=64)] = None,
                         host_ip: Annotated[str | None, Query(max_length=64)] = None,
                         ) -> UploadResult:
        """A victim uploads `exhunt hunt --format json` output with the token from the notice
        (`Authorization: Bearer <token>`); the case's host moves on that evidence."""
        with web.store.session() as session:
            principal = require(who(request, session))
        if request.cookies.get(SESSION_COOKIE) and principal.csrf and not hmac.compare_digest(
                request.headers.get("x-csrf-token", ""), principal.csrf):
            raise HTTPException(403, "missing or wrong X-CSRF-Token header")
        reference = case or (None if principal.coordinator else principal.subject)
        if reference is None:
            raise HTTPException(422, "coordinators name the case (?case=REFERENCE)")
        require(principal, case_reference=reference)
        data = await read_limited(request, web.max_upload)
        return await run_in_threadpool(accept_report, web, principal, reference, data, host_ip)


# --- pages ----------------------------------------------------------------------------------


def _overview_charts(data: dict[str, Any], uptake: list[dict[str, Any]]) -> dict[str, Any]:
    series = data["series"]
    days = [row["day"] for row in series]
    colours = dict(zip(queries.OVERVIEW_STATES, (PALETTE[5], PALETTE[1], PALETTE[4], PALETTE[2],
                                                 PALETTE[3]), strict=True))
    states = line_chart("Hosts by state over time", days,
                        [Series(g, [row[g] for row in series], colours[g])
                         for g in queries.OVERVIEW_STATES], y_label="hosts")
    curve = line_chart("Patch uptake", [row["day"] for row in uptake],
                       [Series("confirmed patched or clean",
                               [row["patched_share"] for row in uptake], PALETTE[3]),
                        Series("no longer reported",
                               [row["unreported_share"] for row in uptake], PALETTE[4])],
                       y_label="% of once-vulnerable hosts", percent=True)
    funnel = data["funnel"]
    steps = [(k, float(funnel[k])) for k in ("cases", "notified", "delivered", "bounced",
                                              "acknowledged", "unconfirmed", "remediated")]
    return {
        "states": states, "uptake": curve,
        "funnel": bar_chart("Notification funnel", steps, unit="cases"),
        "country": bar_chart("Hosts by country", list(data["by_country"].items()), unit="hosts"),
        "sector": bar_chart("Hosts by sector", list(data["by_sector"].items()), unit="hosts"),
        "as": bar_chart("Hosts by AS", [(f"AS{r['asn']} {r['as_name'] or ''}".strip()
                                         if r["asn"] is not None else "unknown", r["hosts"])
                                        for r in data["by_as"]], unit="hosts"),
    }


def _change(series: list[dict[str, Any]]) -> dict[str, int]:
    """Change of each headline count over the last week of the series."""
    if not series:
        return {}
    now, before = series[-1], series[max(0, len(series) - 8)]
    return {g: now[g] - before[g] for g in queries.OVERVIEW_STATES}


def _page_routes(app: FastAPI, web: Web) -> None:
    def page_principal(request: Request, session: Session) -> Principal | None:
        return web.session_of(session, request)

    def login_redirect() -> RedirectResponse:
        return RedirectResponse("/login", status_code=303)

    def refused(principal: Principal | None, why: str, status: int = 403) -> HTMLResponse:
        return web.page("error.html.j2", principal, status=status, message=why)

    def form_csrf_ok(request: Request, given: str, principal: Principal | None) -> bool:
        expected = principal.csrf if principal else request.cookies.get(PRE_CSRF_COOKIE, "")
        return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())

    def with_pre_csrf(request: Request, name: str, status: int = 200,
                      **context: Any) -> HTMLResponse:
        token = request.cookies.get(PRE_CSRF_COOKIE) or secrets.token_urlsafe(24)
        response = web.page(name, None, status=status, csrf=token, **context)
        response.set_cookie(PRE_CSRF_COOKIE, token, httponly=True, samesite="strict",
                            secure=web.secure_cookies, path="/")
        return response

    @app.get("/static/style.css", include_in_schema=False)
    def stylesheet() -> Response:
        css = (resources.files("exhunt.web") / "static" / "style.css").read_text()
        return Response(css, media_type="text/css",
                        headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/login", include_in_schema=False)
    def login_form(request: Request) -> HTMLResponse:
        return with_pre_csrf(request, "login.html.j2")

    def credential_gate(request: Request, csrf: str, client: str, account: str | None,
                        template: str, *, by_address: bool = True) -> Response | None:
        """What the login and token forms refuse before looking at a credential."""
        if not form_csrf_ok(request, csrf, None):
            return refused(None, "The form expired; reload the page.", 400)
        if web.limiter.account_blocked(account) or (
                by_address and web.limiter.address_blocked(client)):
            return too_many(request, template)
        return None

    def too_many(request: Request, template: str) -> HTMLResponse:
        return with_pre_csrf(request, template, 429,
                             error="Too many failed attempts; wait a few minutes.")

    @app.post("/login", include_in_schema=False)
    def login(request: Request, username: Annotated[str, Form(max_length=64)],
              password: Annotated[str, Form(max_length=1024)],
              csrf: Annotated[str, Form(max_length=100)]) -> Response:
        client = web.client_of(request)
        if (refusal := credential_gate(request, csrf, client, f"user:{username[:64]}",
                                       "login.html.j2")) is not None:
            return refusal
        with web.store.transaction() as session:
            if not check_password(session, username, password):
                web.limiter.failed(client, user_account(session, username))
                return with_pre_csrf(request, "login.html.j2", 401,
                                     error="Wrong user name or password.")
            cookie, _ = open_session(session, "coordinator", username)
        response = RedirectResponse("/", status_code=303)
        web.set_session(response, cookie)
        return response

    @app.get("/access", include_in_schema=False)
    def access_form(request: Request) -> HTMLResponse:
        return with_pre_csrf(request, "access.html.j2")

    @app.post("/access", include_in_schema=False)
    def access(request: Request, token: Annotated[str, Form(max_length=200)],
               csrf: Annotated[str, Form(max_length=100)]) -> Response:
        client = web.client_of(request)
        named = token_reference(token)
        # a right token opens its case whatever others at this address did (160 bits of MAC
        # are not guessed); only the wrong ones from a busy address are slowed
        if (refusal := credential_gate(request, csrf, client, f"case:{named}" if named else None,
                                       "access.html.j2", by_address=False)) is not None:
            return refusal
        with web.store.transaction() as session:
            check = check_token(session, token, web.settings.token_grace)
            if check.refusal is not None:
                return with_pre_csrf(request, "access.html.j2", 403,
                                     error=web.token_refusal(check.refusal))
            case = check.case
            if case is None:
                blocked = web.limiter.address_blocked(client)
                web.limiter.failed(client, token_account(session, token))
                if blocked:
                    return too_many(request, "access.html.j2")
                return with_pre_csrf(request, "access.html.j2", 401,
                                     error="That token does not open any case.")
            cookie, _ = open_session(session, "victim", case.reference)
            reference = case.reference
        response = RedirectResponse(f"/cases/{reference}", status_code=303)
        web.set_session(response, cookie)
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, csrf: Annotated[str, Form(max_length=100)]) -> Response:
        with web.store.transaction() as session:
            principal = page_principal(request, session)
            if principal is None or not form_csrf_ok(request, csrf, principal):
                return refused(principal, "The form expired; reload the page.", 400)
            close_session(session, request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/", include_in_schema=False)
    def overview(request: Request) -> Response:
        with web.store.session() as session:
            principal = page_principal(request, session)
            if principal is None:
                return login_redirect()
            if not principal.coordinator:
                return RedirectResponse(f"/cases/{principal.subject}", status_code=303)
            data = queries.summary(session)
            curve = queries.uptake(session)
            fleet = queries.fleet_view(session)
        waves = (bar_chart("Fleet hunt: servers by wave", [(k, float(v)) for k, v in
                                                           fleet["waves"].items()],
                           unit="servers") if fleet else None)
        return web.page("overview.html.j2", principal, data=data, fleet=fleet, waves=waves,
                        charts=_overview_charts(data, curve), change=_change(data["series"]))

    @app.get("/cases", include_in_schema=False)
    def cases(request: Request, q: Annotated[str, Query(max_length=200)] = "",
              sort: Annotated[str, Query(max_length=32)] = "reference",
              desc: bool = False,
              page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
        with web.store.session() as session:
            principal = page_principal(request, session)
            if principal is None:
                return login_redirect()
            if not principal.coordinator:
                return refused(principal, "Coordinators only.")
            total, shown = queries.case_page(session, q, sort, desc, CASES_PER_PAGE,
                                             (page - 1) * CASES_PER_PAGE)
        pages = max(1, -(-total // CASES_PER_PAGE))
        return web.page("cases.html.j2", principal, rows=shown, total=total, q=q,
                        sort=sort, desc=desc, sorts=queries.CASE_SORTS, page=page, pages=pages)

    @app.get("/cases/{reference}", include_in_schema=False)
    def case_page(request: Request, reference: str) -> Response:
        with web.store.transaction() as session:
            principal = page_principal(request, session)
            if principal is None:
                return login_redirect()
            if not principal.may_see_case(reference):
                return refused(principal, "Your token does not open that case.")
            case = session.scalar(select(Case).where(Case.reference == reference[:64]))
            if case is None:
                return refused(principal, "No such case.", 404)
            detail = queries.case_detail(session, case, with_bodies=principal.coordinator)
            token = current_token(session, case.reference) if principal.coordinator else None
        return web.page("case.html.j2", principal, case=detail, token=token)

    @app.post("/cases/{reference}/reports", include_in_schema=False)
    async def upload_page(request: Request, reference: str, report: UploadFile,
                          csrf: Annotated[str, Form(max_length=100)],
                          host_ip: Annotated[str, Form(max_length=64)] = "") -> Response:
        with web.store.session() as session:
            principal = page_principal(request, session)
        if principal is None:
            return login_redirect()
        if not form_csrf_ok(request, csrf, principal):
            return refused(principal, "The form expired; reload the page.", 400)
        if not principal.may_see_case(reference):
            return refused(principal, "Your token does not open that case.")
        data = await report.read(web.max_upload + 1)
        if len(data) > web.max_upload:
            return refused(principal, f"Report larger than {web.max_upload} bytes.", 413)
        try:
            await run_in_threadpool(accept_report, web, principal, reference, data,
                                    host_ip or None)
        except HTTPException as exc:
            return refused(principal, f"Report not accepted: {exc.detail}", exc.status_code)
        return RedirectResponse(f"/cases/{reference}#reports", status_code=303)

    @app.get("/cases/{reference}/reports/{report_id}", include_in_schema=False)
    def report_view(request: Request, reference: str,
                    report_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> Response:
        with web.store.session() as session:
            principal = page_principal(request, session)
            if principal is None:
                return login_redirect()
            if not principal.may_see_case(reference):
                return refused(principal, "Your token does not open that case.")
            case = session.scalar(select(Case).where(Case.reference == reference[:64]))
            stored = session.get(WebReport, report_id) if case else None
            if case is None or stored is None or stored.case_id != case.id:
                return refused(principal, "No such report.", 404)
            try:
                document = orjson.loads(stored.body)
            except orjson.JSONDecodeError:
                document = {}
        # the hunt's own one-file HTML when the upload rebuilds into a report, else a plain
        # escaped view of its main fields; either way under the sandboxing CSP
        html = uploaded_report_html(document) or web.templates.get_template(
            "report_view.html.j2").render(reference=reference, report=document,
                                          host_ip=stored.host_ip,
                                          received=stored.received_at.isoformat())
        return HTMLResponse(html, headers={"Content-Security-Policy": REPORT_CSP})

    @app.get("/hosts/{ip}", include_in_schema=False)
    def host_page(request: Request, ip: str) -> Response:
        with web.store.session() as session:
            principal = page_principal(request, session)
            if principal is None:
                return login_redirect()
            try:
                host = _host(session, principal, ip)
            except HTTPException as exc:
                return refused(principal, str(exc.detail), exc.status_code)
            detail = queries.host_detail(session, host)
        ranks = {state.value: rank for state, rank in RANK.items()}
        timeline = line_chart(
            "Observed state over time (0 clean … 6 re-entered)",
            [o["seen_at"][:10] for o in detail["observations"]],
            [Series("state rank", [float(ranks.get(o["state"], 0))
                                   for o in detail["observations"]], PALETTE[2])],
            y_label="state rank (higher is worse)", x_label="observation date (UTC)")
        return web.page("host.html.j2", principal, host=detail, timeline=timeline)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                                headers=exc.headers)
        return web.page("error.html.j2", None, status=exc.status_code, message=str(exc.detail))

