"""Signing in: a coordinator's login, a victim's token at the access form, logging out.
Every form carries a CSRF token; failed attempts are throttled by account and by address."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from exhunt.web.portal import (
    SESSION_COOKIE,
    Web,
    WebDep,
    form_csrf_ok,
    page_principal,
    refused,
    with_pre_csrf,
)
from exhunt.web.security import (
    check_password,
    check_token,
    close_session,
    open_session,
    token_account,
    token_reference,
    user_account,
)

router = APIRouter()


@router.get("/login", include_in_schema=False)
def login_form(request: Request, web: WebDep) -> HTMLResponse:
    return with_pre_csrf(web, request, "login.html.j2")


def credential_gate(web: Web, request: Request, csrf: str, client: str, account: str | None,
                    template: str, *, by_address: bool = True) -> Response | None:
    """What the login and token forms refuse before looking at a credential."""
    if not form_csrf_ok(request, csrf, None):
        return refused(web, None, "The form expired; reload the page.", 400)
    if web.limiter.account_blocked(account) or (
            by_address and web.limiter.address_blocked(client)):
        return too_many(web, request, template)
    return None


def too_many(web: Web, request: Request, template: str) -> HTMLResponse:
    return with_pre_csrf(web, request, template, 429,
                         error="Too many failed attempts; wait a few minutes.")


@router.post("/login", include_in_schema=False)
def login(request: Request, web: WebDep, username: Annotated[str, Form(max_length=64)],
          password: Annotated[str, Form(max_length=1024)],
          csrf: Annotated[str, Form(max_length=100)]) -> Response:
    client = web.client_of(request)
    if (refusal := credential_gate(web, request, csrf, client, f"user:{username[:64]}",
                                   "login.html.j2")) is not None:
        return refusal
    with web.store.transaction() as session:
        if not check_password(session, username, password):
            web.limiter.failed(client, user_account(session, username))
            return with_pre_csrf(web, request, "login.html.j2", 401,
                                 error="Wrong user name or password.")
        cookie, _ = open_session(session, "coordinator", username)
    response = RedirectResponse("/", status_code=303)
    web.set_session(response, cookie)
    return response


@router.get("/access", include_in_schema=False)
def access_form(request: Request, web: WebDep) -> HTMLResponse:
    return with_pre_csrf(web, request, "access.html.j2")


@router.post("/access", include_in_schema=False)
def access(request: Request, web: WebDep, token: Annotated[str, Form(max_length=200)],
           csrf: Annotated[str, Form(max_length=100)]) -> Response:
    client = web.client_of(request)
    named = token_reference(token)
    # a right token opens its case whatever others at this address did (160 bits of MAC
    # are not guessed); only the wrong ones from a busy address are slowed
    if (refusal := credential_gate(web, request, csrf, client, f"case:{named}" if named else None,
                                   "access.html.j2", by_address=False)) is not None:
        return refusal
    with web.store.transaction() as session:
        check = check_token(session, token, web.settings.token_grace)
        if check.refusal is not None:
            return with_pre_csrf(web, request, "access.html.j2", 403,
                                 error=web.token_refusal(check.refusal))
        case = check.case
        if case is None:
            blocked = web.limiter.address_blocked(client)
            web.limiter.failed(client, token_account(session, token))
            if blocked:
                return too_many(web, request, "access.html.j2")
            return with_pre_csrf(web, request, "access.html.j2", 401,
                                 error="That token does not open any case.")
        cookie, _ = open_session(session, "victim", case.reference)
        reference = case.reference
    response = RedirectResponse(f"/cases/{reference}", status_code=303)
    web.set_session(response, cookie)
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request, web: WebDep, csrf: Annotated[str, Form(max_length=100)]) -> Response:
    with web.store.transaction() as session:
        principal = page_principal(web, request, session)
        if principal is None or not form_csrf_ok(request, csrf, principal):
            return refused(web, principal, "The form expired; reload the page.", 400)
        close_session(session, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
