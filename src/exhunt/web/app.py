"""The dashboard and victim portal: FastAPI over the coordination store.

Every page is rendered by Jinja2 with autoescaping; every response carries a strict
Content-Security-Policy (no scripts at all, styles only from /static). Uploaded hunt reports
are attacker-controlled HTML-to-be: they are shown only through a separate response whose CSP
sandboxes it (no scripts, no same origin, no network).

Here: the app, its security headers and early refusals. The routes are routers by job:
web/api.py (JSON API), web/signin.py (login, token access, logout), web/pages.py (the
dashboard's pages); what they share is web/portal.py, the upload path web/uploads.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exhunt.store.db import Store
from exhunt.web import api, pages, signin
from exhunt.web.portal import (
    CASES_PER_PAGE as CASES_PER_PAGE,
)
from exhunt.web.portal import (
    FORM_OVERHEAD,
    MAX_UPLOAD_BYTES,
    PAGE_CSP,
    Web,
    web_of,
)
from exhunt.web.portal import PRE_CSRF_COOKIE as PRE_CSRF_COOKIE
from exhunt.web.portal import REPORT_CSP as REPORT_CSP
from exhunt.web.portal import SESSION_COOKIE as SESSION_COOKIE
from exhunt.web.portal import PortalSettings as PortalSettings
from exhunt.web.portal import principal_of as principal_of
from exhunt.web.portal import require as require
from exhunt.web.security import FailureLimiter, trusted_networks
from exhunt.web.uploads import UploadResult as UploadResult
from exhunt.web.uploads import accept_report as accept_report
from exhunt.web.uploads import choose_host as choose_host
from exhunt.web.uploads import parse_report as parse_report

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


def create_app(db_url: str | None = None, *, secure_cookies: bool = False,
               max_upload: int = MAX_UPLOAD_BYTES, login_limit: int = 5,
               login_window: float = 300.0, address_limit: int = 50,
               trusted_proxies: Sequence[str] = (),
               settings: PortalSettings | None = None) -> FastAPI:
    """The dashboard over the store at `db_url` (SQLite path or URL, PostgreSQL URL).
    `trusted_proxies`: CIDRs of the reverse proxies whose X-Forwarded-For is believed."""
    store = Store(db_url)
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

    app.include_router(api.router)
    app.include_router(signin.router)
    app.include_router(pages.router)
    app.add_exception_handler(HTTPException, http_error)  # type: ignore[arg-type]
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


async def http_error(request: Request, exc: HTTPException) -> Response:
    """An error as JSON under /api/, as the error page elsewhere."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers=exc.headers)
    return web_of(request).page("error.html.j2", None, status=exc.status_code,
                                message=str(exc.detail))
