"""The dashboard's pages: the campaign overview, the case list, one case (with its
uploaded reports), one host. Coordinators see everything; a token holder only their case."""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from exhunt.model import RANK
from exhunt.store.models import Case
from exhunt.web import queries
from exhunt.web.charts import PALETTE, Series, bar_chart, line_chart
from exhunt.web.hunt_view import uploaded_report_html
from exhunt.web.portal import (
    CASES_PER_PAGE,
    REPORT_CSP,
    WebDep,
    form_csrf_ok,
    host_for,
    login_redirect,
    page_principal,
    refused,
)
from exhunt.web.security import WebReport, current_token
from exhunt.web.uploads import accept_report

router = APIRouter()


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


@router.get("/static/style.css", include_in_schema=False)
def stylesheet() -> Response:
    css = (resources.files("exhunt.web") / "static" / "style.css").read_text()
    return Response(css, media_type="text/css",
                    headers={"Cache-Control": "public, max-age=3600"})


@router.get("/", include_in_schema=False)
def overview(request: Request, web: WebDep) -> Response:
    with web.store.session() as session:
        principal = page_principal(web, request, session)
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


@router.get("/cases", include_in_schema=False)
def cases(request: Request, web: WebDep, q: Annotated[str, Query(max_length=200)] = "",
          sort: Annotated[str, Query(max_length=32)] = "reference",
          desc: bool = False,
          page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    with web.store.session() as session:
        principal = page_principal(web, request, session)
        if principal is None:
            return login_redirect()
        if not principal.coordinator:
            return refused(web, principal, "Coordinators only.")
        total, shown = queries.case_page(session, q, sort, desc, CASES_PER_PAGE,
                                         (page - 1) * CASES_PER_PAGE)
    pages = max(1, -(-total // CASES_PER_PAGE))
    return web.page("cases.html.j2", principal, rows=shown, total=total, q=q,
                    sort=sort, desc=desc, sorts=queries.CASE_SORTS, page=page, pages=pages)


@router.get("/cases/{reference}", include_in_schema=False)
def case_page(request: Request, web: WebDep, reference: str) -> Response:
    with web.store.transaction() as session:
        principal = page_principal(web, request, session)
        if principal is None:
            return login_redirect()
        if not principal.may_see_case(reference):
            return refused(web, principal, "Your token does not open that case.")
        case = session.scalar(select(Case).where(Case.reference == reference[:64]))
        if case is None:
            return refused(web, principal, "No such case.", 404)
        detail = queries.case_detail(session, case, with_bodies=principal.coordinator)
        token = current_token(session, case.reference) if principal.coordinator else None
    return web.page("case.html.j2", principal, case=detail, token=token)


@router.post("/cases/{reference}/reports", include_in_schema=False)
async def upload_page(request: Request, web: WebDep, reference: str, report: UploadFile,
                      csrf: Annotated[str, Form(max_length=100)],
                      host_ip: Annotated[str, Form(max_length=64)] = "") -> Response:
    with web.store.session() as session:
        principal = page_principal(web, request, session)
    if principal is None:
        return login_redirect()
    if not form_csrf_ok(request, csrf, principal):
        return refused(web, principal, "The form expired; reload the page.", 400)
    if not principal.may_see_case(reference):
        return refused(web, principal, "Your token does not open that case.")
    data = await report.read(web.max_upload + 1)
    if len(data) > web.max_upload:
        return refused(web, principal, f"Report larger than {web.max_upload} bytes.", 413)
    try:
        await run_in_threadpool(accept_report, web, principal, reference, data,
                                host_ip or None)
    except HTTPException as exc:
        return refused(web, principal, f"Report not accepted: {exc.detail}", exc.status_code)
    return RedirectResponse(f"/cases/{reference}#reports", status_code=303)


@router.get("/cases/{reference}/reports/{report_id}", include_in_schema=False)
def report_view(request: Request, web: WebDep, reference: str,
                report_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> Response:
    with web.store.session() as session:
        principal = page_principal(web, request, session)
        if principal is None:
            return login_redirect()
        if not principal.may_see_case(reference):
            return refused(web, principal, "Your token does not open that case.")
        case = session.scalar(select(Case).where(Case.reference == reference[:64]))
        stored = session.get(WebReport, report_id) if case else None
        if case is None or stored is None or stored.case_id != case.id:
            return refused(web, principal, "No such report.", 404)
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


@router.get("/hosts/{ip}", include_in_schema=False)
def host_page(request: Request, web: WebDep, ip: str) -> Response:
    with web.store.session() as session:
        principal = page_principal(web, request, session)
        if principal is None:
            return login_redirect()
        try:
            host = host_for(session, principal, ip)
        except HTTPException as exc:
            return refused(web, principal, str(exc.detail), exc.status_code)
        detail = queries.host_detail(session, host)
    ranks = {state.value: rank for state, rank in RANK.items()}
    timeline = line_chart(
        "Observed state over time (0 clean … 6 re-entered)",
        [o["seen_at"][:10] for o in detail["observations"]],
        [Series("state rank", [float(ranks.get(o["state"], 0))
                               for o in detail["observations"]], PALETTE[2])],
        y_label="state rank (higher is worse)", x_label="observation date (UTC)")
    return web.page("host.html.j2", principal, host=detail, timeline=timeline)
