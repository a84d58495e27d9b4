"""A victim's hunt report, uploaded: read within bounds, checked against the hunt-JSON
contract (exhunt/contract.py), tied to one of the case's hosts, ingested and kept."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import HTTPException, Request
from pydantic import BaseModel
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from exhunt.cases.ingest import Ingestor
from exhunt.contract import ContractError
from exhunt.model import HuntReport
from exhunt.store.models import Case, Event, Host, utcnow
from exhunt.web.portal import PortalSettings, Web, case_named, require
from exhunt.web.security import Principal, WebReport

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
        case = case_named(session, reference)
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
        case = case_named(session, reference)
        state = session.scalar(select(Host.state).where(Host.ip == ip))
        return UploadResult(case=reference, host=ip, verdict=report.verdict.label,
                            ingest=result.status, host_state=state, case_status=case.status,
                            report_id=report_id)
