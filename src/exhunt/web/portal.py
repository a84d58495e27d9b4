"""What every route of the dashboard and portal shares: the settings, the state (`Web`, the
store, templates, throttles), who is asking, and the small page helpers.

Routes reach the state through the `WebDep` dependency (`request.app.state.web`), so each
group of routes is a plain FastAPI router (web/api.py, web/signin.py, web/pages.py).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader
from sqlalchemy import select
from sqlalchemy.orm import Session

from exhunt.store.db import Store
from exhunt.store.models import Case, Host
from exhunt.web.security import (
    DEFAULT_TOKEN_GRACE,
    FailureLimiter,
    IPNetwork,
    Principal,
    case_token_lapsed,
    check_token,
    client_address,
    session_principal,
    token_account,
    token_reference,
    user_account,
)

SESSION_COOKIE = "exhunt_session"
PRE_CSRF_COOKIE = "exhunt_csrf"
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
CASES_PER_PAGE = 200
FORM_OVERHEAD = 64 * 1024  # multipart framing and the small fields around an uploaded file
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")
# an uploaded report: its own inline styles only; sandbox = unique origin, no scripts, no forms
REPORT_CSP = ("sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
              "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


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



def web_of(request: Request) -> Web:
    """The state of the app serving this request."""
    web: Web = request.app.state.web
    return web


WebDep = Annotated[Web, Depends(web_of)]


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


def case_named(session: Session, reference: str) -> Case:
    case = session.scalar(select(Case).where(Case.reference == reference[:64]))
    if case is None:
        raise HTTPException(404, "no such case")
    return case


def host_for(session: Session, principal: Principal, ip: str) -> Host:
    host = session.scalar(select(Host).where(Host.ip == ip[:64]))
    if host is None:
        if principal.coordinator:
            raise HTTPException(404, "no such host")
        raise HTTPException(403, "this token does not open that host")
    if not principal.coordinator and host_case_reference(session, host) != principal.subject:
        raise HTTPException(403, "this token does not open that host")
    return host



# --- page helpers -------------------------------------------------------------------------------


def page_principal(web: Web, request: Request, session: Session) -> Principal | None:
    return web.session_of(session, request)


def login_redirect() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


def refused(web: Web, principal: Principal | None, why: str, status: int = 403) -> HTMLResponse:
    return web.page("error.html.j2", principal, status=status, message=why)


def form_csrf_ok(request: Request, given: str, principal: Principal | None) -> bool:
    expected = principal.csrf if principal else request.cookies.get(PRE_CSRF_COOKIE, "")
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def with_pre_csrf(web: Web, request: Request, name: str, status: int = 200,
                  **context: Any) -> HTMLResponse:
    token = request.cookies.get(PRE_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = web.page(name, None, status=status, csrf=token, **context)
    response.set_cookie(PRE_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=web.secure_cookies, path="/")
    return response
