"""The JSON API (`/api/...`): the campaign's figures, cases and hosts for coordinators; a
case's own view and the report upload for the holder of its token."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from exhunt import contract
from exhunt.web import queries
from exhunt.web.portal import (
    SESSION_COOKIE,
    WebDep,
    case_named,
    host_for,
    principal_of,
    require,
)
from exhunt.web.uploads import UploadResult, accept_report, read_limited

router = APIRouter()


@router.get("/api/openapi.json", include_in_schema=False)
def api_description(request: Request, web: WebDep) -> dict[str, Any]:
    """The OpenAPI description, for coordinators only (it maps the whole surface)."""
    with web.store.session() as session:
        require(principal_of(web, session, request), coordinator=True)
    app: FastAPI = request.app
    return app.openapi()


@router.get("/api/summary", tags=["api"])
def api_summary(request: Request, web: WebDep) -> dict[str, Any]:
    """Counts by state, by country, sector and AS, the notice funnel, states over time."""
    with web.store.session() as session:
        require(principal_of(web, session, request), coordinator=True)
        return queries.summary(session)


@router.get("/api/uptake", tags=["api"])
def api_uptake(request: Request, web: WebDep) -> list[dict[str, Any]]:
    """The patch-uptake curve by day: of the hosts ever seen vulnerable, the share confirmed
    patched or clean (`patched_share`) and the share no longer reported
    (`unreported_share`)."""
    with web.store.session() as session:
        require(principal_of(web, session, request), coordinator=True)
        return queries.uptake(session)


@router.get("/api/cases", tags=["api"])
def api_cases(request: Request, web: WebDep, q: Annotated[str, Query(max_length=200)] = "",
              sort: Annotated[str, Query(max_length=32)] = "reference",
              desc: bool = False,
              limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
              offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
              ) -> list[dict[str, Any]]:
    """Cases, searchable by reference, organisation, host address or name; one page of
    `limit` rows from `offset` in the chosen order."""
    with web.store.session() as session:
        require(principal_of(web, session, request), coordinator=True)
        return queries.case_page(session, q, sort, desc, limit, offset)[1]


@router.get("/api/hosts", tags=["api"])
def api_hosts(request: Request, web: WebDep,
              group: Annotated[str, Query(max_length=32)] = "",
              limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
              offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
              ) -> dict[str, Any]:
    """Hosts in a headline group (exposed, vulnerable, unreported, backdoored, clean) or
    state, or all: `total` and one page of `limit` hosts from `offset`, by address."""
    with web.store.session() as session:
        require(principal_of(web, session, request), coordinator=True)
        total, rows = queries.host_page(session, group, limit, offset)
        return {"total": total, "offset": offset, "hosts": rows}


@router.get("/api/cases/{reference}", tags=["api"])
def api_case(request: Request, web: WebDep, reference: str,
             host_offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
             ) -> dict[str, Any]:
    """One case: hosts (`hosts_total`, 500 from `host_offset`) and their evidence,
    notices, history, reports received."""
    with web.store.session() as session:
        principal = require(principal_of(web, session, request), case_reference=reference)
        return queries.case_detail(session, case_named(session, reference),
                                   with_bodies=principal.coordinator,
                                   host_offset=host_offset)


@router.get("/api/hosts/{ip}", tags=["api"])
def api_host(request: Request, web: WebDep, ip: str) -> dict[str, Any]:
    """One host and every observation of it over time."""
    with web.store.session() as session:
        principal = require(principal_of(web, session, request))
        return queries.host_detail(session, host_for(session, principal, ip))


@router.post("/api/reports", tags=["api"], response_model=UploadResult,
          openapi_extra={"requestBody": {"required": True, "content": {
              "application/json": {"schema": contract.JSON_SCHEMA}}}})
async def api_report(request: Request, web: WebDep,
                     case: Annotated[str | None, Query(max_length=64)] = None,
                     host_ip: Annotated[str | None, Query(max_length=64)] = None,
                     ) -> UploadResult:
    """A victim uploads `exhunt hunt --format json` output with the token from the notice
    (`Authorization: Bearer <token>`); the case's host moves on that evidence."""
    with web.store.session() as session:
        principal = require(principal_of(web, session, request))
    if request.cookies.get(SESSION_COOKIE) and principal.csrf and not hmac.compare_digest(
            request.headers.get("x-csrf-token", ""), principal.csrf):
        raise HTTPException(403, "missing or wrong X-CSRF-Token header")
    reference = case or (None if principal.coordinator else principal.subject)
    if reference is None:
        raise HTTPException(422, "coordinators name the case (?case=REFERENCE)")
    require(principal, case_reference=reference)
    data = await read_limited(request, web.max_upload)
    return await run_in_threadpool(accept_report, web, principal, reference, data, host_ip)
