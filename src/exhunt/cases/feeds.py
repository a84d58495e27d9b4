"""What the coordinator makes of each feed row: a Sighting (one thing seen about one host, with
the host state the row means) or a RowProblem (with the reason). Shadowserver scan_exchange CSV,
exhunt scan JSONL and exhunt hunt JSON are read as formats by readers/feeds.py; the rules here
say which row means which host state and which row is no evidence at all, and decide nothing
about cases.

Formats: docs/contracts.md; Shadowserver columns from
The-Shadowserver-Foundation/report_schema reports.json (2026-03-24) and the 2021 IntelMQ
fixture (certtools/intelmq `intelmq/tests/bots/parsers/shadowserver/testdata/scan_exchange.csv`,
PR #1970, removed in 473f6a64c).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from exhunt.cases.reports import (
    EVENT,
    EXCHANGE,
    NOT_A_REPORT,
    ReportKind,
    classify,
    exchange_mention,
    family_of,
    report_from_name,
)
from exhunt.contract import ContractError
from exhunt.model import HOST_STATE_OF_VERDICT, HuntReport
from exhunt.readers.feeds import (
    MAX_FIELD_CHARS,
    MAX_RAW_CHARS,
    clean_text,
    csv_records,
    json_lines,
    normalise_header,
    optional_text,
    parse_asn,
    parse_ip,
    parse_port,
    parse_time,
    target_name,
)
from exhunt.store.models import HostState

# Shadowserver tag text -> what it says about the host (IntelMQ's scan_exchange_* functions
# match 'webshell' anywhere in the tag since 2023-11-16;
# certtools/intelmq commit ac0447189).
WEBSHELL_MARK = "webshell"
CVE_MARK = "cve-"

HUNT_VERDICTS: dict[str, HostState] = {v.label: s for v, s in HOST_STATE_OF_VERDICT.items()}


@dataclass(frozen=True, slots=True)
class Sighting:
    """One thing seen about one host, normalised from any source."""

    source: str  # shadowserver | scan | hunt
    ip: str | None  # None only for a hunt report that names no address
    seen_at: datetime  # naive UTC
    state: HostState
    evidence: str
    line: int | None = None
    port: int | None = None
    hostname: str | None = None
    servername: str | None = None
    build: str | None = None
    asn: int | None = None
    country: str | None = None
    naics: str | None = None
    feed_sector: str | None = None


@dataclass(frozen=True, slots=True)
class RowProblem:
    source: str
    line: int | None
    reason: str
    raw: str


Row = Sighting | RowProblem


# --- Shadowserver -------------------------------------------------------------------------


def shadowserver_state(tag: str) -> HostState:
    lowered = tag.lower()
    if WEBSHELL_MARK in lowered:
        return HostState.BACKDOOR
    if CVE_MARK in lowered:
        return HostState.VULNERABLE
    return HostState.EXPOSED  # an Exchange server in the report without a named flaw


def _shadowserver_evidence(report: str, row: dict[str, str]) -> str:
    parts = [f"Shadowserver {report}: tag={row.get('tag', '')}"]
    for column in ("version", "servername", "url", "severity", "hostname"):
        if row.get(column):
            parts.append(f"{column}={row[column]}")
    return clean_text("; ".join(parts), MAX_FIELD_CHARS * 2)


def shadowserver_report(name: str) -> str:
    """The Exchange report a file name gives (scan_exchange when it names none)."""
    report = report_from_name(name)
    return report if report is not None and family_of(report) == EXCHANGE else "scan_exchange"


def read_shadowserver(data: bytes, name: str) -> Iterator[Row]:
    """Rows of a Shadowserver report, in any column order, extra or missing columns tolerated.
    An Exchange report (only ip and timestamp required) gives a sighting per row; any other
    scan report one per row naming Exchange; an event report none (cases/reports.py)."""
    records = csv_records(data)
    if records is None:
        yield RowProblem(name, 1, "no CSV header", "")
        return
    header, rows = records
    columns = [normalise_header(h) for h in header]
    kind = classify(columns, name)
    if kind.family == NOT_A_REPORT:
        why = f"a {kind.report}, not a report: its header has no 'ip' or 'src_ip' column"
        yield RowProblem(name, 1, why, clean_text(",".join(header)))
        return
    for line, values in rows:
        row = report_line(kind, name, line, columns, values)
        if row is not None:
            yield row


def report_line(kind: ReportKind, name: str, line: int, columns: list[str],
                values: list[str]) -> Row | None:
    """One data row of a report of any family (None for a blank one)."""
    if kind.family == EVENT:
        if not values or all(not v.strip() for v in values):
            return None
        return _event_row(kind.report, name, line, columns, values)
    return shadowserver_line(kind.report, name, line, columns, values,
                             whole=kind.family == EXCHANGE)


def shadowserver_line(
    report: str, name: str, line: int, columns: list[str], values: list[str], *,
    whole: bool = True,
) -> Row | None:
    """One data row (None for a blank one, which says nothing). `whole`: the report is about
    Exchange (else only a row naming Exchange is evidence)."""
    if not values or all(not v.strip() for v in values):
        return None
    return _shadowserver_row(report, name, line, columns, values, whole)


def _cells(columns: list[str], values: list[str]) -> dict[str, str]:
    return {col: clean_text(val).strip() for col, val in zip(columns, values, strict=False)}


def _shadowserver_row(
    report: str, name: str, line: int, columns: list[str], values: list[str], whole: bool
) -> Row:
    row = _cells(columns, values)
    raw = clean_text(",".join(values), MAX_RAW_CHARS)
    mention = None if whole else exchange_mention(row)
    if not whole and mention is None:
        return RowProblem(name, line, f"not about Exchange (Shadowserver {report})", raw)
    try:
        ip = parse_ip(row.get("ip", ""))
        seen_at = parse_time(row.get("timestamp", ""))
    except ValueError as exc:
        return RowProblem(name, line, str(exc), raw)
    tag = row.get("tag", "")
    if mention is None:
        state, evidence, build = (shadowserver_state(tag), _shadowserver_evidence(report, row),
                                  row.get("version") or None)
    else:
        column, text = mention
        state, build = shadowserver_state(f"{tag} {text}"), None
        evidence = clean_text(f"Shadowserver {report}: tag={tag}"
                              + ("" if column == "tag" else f"; {column}={text}"),
                              MAX_FIELD_CHARS * 2)
    return Sighting(
        source="shadowserver",
        ip=ip,
        seen_at=seen_at,
        state=state,
        evidence=evidence,
        line=line,
        port=parse_port(row.get("port", "")),
        hostname=row.get("hostname") or None,
        servername=row.get("servername") or None,
        build=build,
        asn=parse_asn(row.get("asn", "")),
        country=(row.get("geo") or "")[:8].upper() or None,
        naics=(row.get("naics") or "")[:16] or None,
        feed_sector=(row.get("sector") or "")[:128] or None,
    )


def _event_row(report: str, name: str, line: int, columns: list[str],
               values: list[str]) -> RowProblem:
    """An event names who did something (src_ip) to whom (dst_ip); a honeypot event names an
    attacker. Neither is an Exchange server on its owner's network: kept, never a case."""
    row = _cells(columns, values)
    raw = clean_text(",".join(values), MAX_RAW_CHARS)
    source = row.get("src_ip") or "no address"
    if "honeypot" in report and exchange_mention(row) is not None:
        why = (f"honeypot event (Shadowserver {report}): {source} attacked Exchange flaws; "
               "an attacker's address, not a victim Exchange server: no case")
    else:
        why = f"not about Exchange (Shadowserver {report} event from {source})"
    return RowProblem(name, line, clean_text(why), raw)


# --- exhunt scan JSONL ---------------------------------------------------------------------


def scan_state(vulns: dict[str, Any]) -> tuple[HostState, list[str]]:
    found = sorted(str(cve) for cve, status in vulns.items() if status == "vulnerable")
    if found:
        return HostState.VULNERABLE, found
    if vulns and all(status == "patched" for status in vulns.values()):
        return HostState.PATCHED, []
    return HostState.EXPOSED, []


def read_scan_jsonl(data: bytes, name: str) -> Iterator[Row]:
    for number, raw, record, not_json in json_lines(data):
        if not_json is not None:
            yield RowProblem(name, number, not_json, raw)
            continue
        yield _scan_row(record, name, number, raw)


def _scan_row(record: object, name: str, number: int, raw: str) -> Row:
    if not isinstance(record, dict):
        return RowProblem(name, number, "line is not a JSON object", raw)
    if not record.get("reachable", False):
        why = optional_text(record.get("error")) or "target not reachable"
        return RowProblem(name, number, f"no server seen: {why}", raw)
    if not record.get("exchange", False):
        return RowProblem(name, number, "reachable, but not an Exchange server", raw)
    try:
        ip = parse_ip(record.get("ip") or record.get("target"))
        seen_at = parse_time(record.get("time"))
    except ValueError as exc:
        return RowProblem(name, number, str(exc), raw)
    vulns = record.get("vulnerabilities")
    state, cves = scan_state(vulns if isinstance(vulns, dict) else {})
    build = optional_text(record.get("build"))
    evidence = f"exhunt scan: build {build or 'unknown'}"
    if cves:
        evidence += "; vulnerable to " + ", ".join(cves)
    elif state is HostState.PATCHED:
        evidence += "; all checked flaws patched"
    return Sighting(
        source="scan",
        ip=ip,
        seen_at=seen_at,
        state=state,
        evidence=clean_text(evidence, MAX_FIELD_CHARS * 2),
        line=number,
        port=parse_port(record.get("port")),
        hostname=target_name(record.get("target")),
        build=build,
    )


# --- exhunt hunt JSON ----------------------------------------------------------------------


def read_hunt_json(
    data: bytes, name: str, *, host_ip: str | None = None, received: datetime | None = None
) -> Iterator[Row]:
    """A hunt report (or an array of them). The report names no address; `host_ip` (or an
    'ip' key added by whoever uploads it) ties it to a host, else the host name is used."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        yield RowProblem(name, None, f"not JSON: {exc}", clean_text(data[:200], MAX_RAW_CHARS))
        return
    reports = document if isinstance(document, list) else [document]
    for index, report in enumerate(reports, start=1):
        yield _hunt_row(report, name, index, host_ip, received)


def hunt_report_row(report: object, name: str, *, host_ip: str | None,
                    received: datetime | None) -> Row:
    """One hunt report already parsed (the portal parses its upload once and reads it here)."""
    return _hunt_row(report, name, 1, host_ip, received)


def _latest_coverage(report: dict[str, Any]) -> datetime | None:
    latest: datetime | None = None
    coverage = report.get("coverage")
    for kind in coverage.values() if isinstance(coverage, dict) else []:
        try:
            last = parse_time(kind.get("last")) if isinstance(kind, dict) else None
        except ValueError:
            continue
        if last and (latest is None or last > latest):
            latest = last
    return latest


def _hunt_row(
    report: object, name: str, index: int, host_ip: str | None, received: datetime | None
) -> Row:
    raw = clean_text(orjson.dumps(report)[:MAX_RAW_CHARS].decode("utf-8", "replace"))
    try:  # the hunt-JSON contract, read by one model (exhunt/contract.py)
        parsed, _ = HuntReport.from_json(report, name)
    except ContractError as exc:
        return RowProblem(name, index, clean_text(str(exc), 300), raw)
    assert isinstance(report, dict)
    verdict, state = parsed.verdict.label, HOST_STATE_OF_VERDICT[parsed.verdict]
    hostname = optional_text(parsed.host.name)
    ip: str | None = None
    given = host_ip or report.get("ip")
    if given is not None:
        try:
            ip = parse_ip(given)
        except ValueError as exc:
            return RowProblem(name, index, str(exc), raw)
    if ip is None and hostname is None:
        return RowProblem(name, index, "hunt report names no host; give its address", raw)
    seen_at = _latest_coverage(report) or received or datetime.now(UTC).replace(tzinfo=None)
    return Sighting(
        source="hunt",
        ip=ip,
        seen_at=seen_at,
        state=state,
        evidence=_hunt_evidence(report, verdict),
        line=index,
        hostname=hostname,
        build=optional_text(parsed.host.exchange_build),
    )


def _hunt_evidence(report: dict[str, Any], verdict: str) -> str:
    findings = report.get("findings")
    items = findings if isinstance(findings, list) else []
    titles: list[str] = []
    for finding in items[:5]:
        if isinstance(finding, dict):
            titles.append(f"{finding.get('check')}: {finding.get('title')}")
    text = f"exhunt hunt report: verdict {verdict}, {len(items)} findings"
    if titles:
        text += " (" + "; ".join(titles) + ")"
    return clean_text(text, MAX_FIELD_CHARS * 2)


# --- dispatch ------------------------------------------------------------------------------


def read_any(
    data: bytes, name: str, kind: str, *, host_ip: str | None = None,
    received: datetime | None = None,
) -> Iterable[Row]:
    if kind == "shadowserver":
        return read_shadowserver(data, Path(name).name)
    if kind == "scan":
        return read_scan_jsonl(data, name)
    return read_hunt_json(data, name, host_ip=host_ip, received=received)
