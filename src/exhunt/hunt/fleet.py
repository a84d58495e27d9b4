"""A fleet's hunts compared: the figures and tables a coordinator reads over many reports.

`fleet_summary` / `fleet_html` answer a coordinator's questions about the results of
`hunt_many` (hunt/fleet_run.py): the verdict of each server, which servers share
infrastructure (the same hands, or a second group?), who was hit before the disclosure and who
after, and which files are rare among servers of the same Exchange build (stacking).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from exhunt.collect import web_relative
from exhunt.errors import UsageError
from exhunt.hunt.verdict import EXPLOITATION_STAGES, counts
from exhunt.hunt.waves import DISCLOSURE_WAVES, NOT_EXPLOITED, disclosure_wave, patch_day
from exhunt.intel import indicators
from exhunt.model import Finding, HuntReport, Verdict, iso

# Stacking needs enough servers of one build to tell "rare" from "normal".
STACK_MIN_SERVERS = 3
# A file (path and content) on at most this share of its build's servers is rare.
STACK_RARE_SHARE = 0.1


# --- Indicators of each server ------------------------------------------------------------------

IP = "attacker_ip"
USER_AGENT = "user_agent"
SHELL_NAME = "shell_name"
SHELL_PARAM = "shell_param"
FIRST_DAY = "first_exploitation_day"
KIND_LABELS: dict[str, str] = {
    IP: "attacker IP",
    USER_AGENT: "user agent",
    SHELL_NAME: "web-shell name",
    SHELL_PARAM: "web-shell parameter",
    FIRST_DAY: "first exploitation day",
}

# How the log checks quote a user agent in their evidence: `UA '...'`, `user agent '...'`.
_UA_IN_EVIDENCE = re.compile(r"\b(?:UA|user agent) '([^'\r\n]{1,512})'")
# Request data a script reads by name: Request["x"], Request.Item["x"], Request.Form("x") ...
_REQUEST_PARAM = re.compile(
    r"""Request(?:\s*\.\s*(?:Item|Form|QueryString|Params|Headers|Cookies))?\s*[\[(]\s*"""
    r"""\\?["']([^"'\\\r\n\])]{1,64})\\?["']\s*[\])]""",
    re.IGNORECASE,
)
# Addresses that repeat across organisations by chance (RFC 1918, RFC 6598, RFC 4193,
# loopback, link-local): sharing one says nothing about who attacked.
_INTERNAL_NETS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8",
    "169.254.0.0/16", "::1/128", "fc00::/7", "fe80::/10",
))


@dataclass(frozen=True, slots=True, order=True)
class Indicator:
    kind: str
    value: str


@dataclass(slots=True)
class ServerIndicators:
    """What one server's findings say about who attacked it."""

    found: set[Indicator] = field(default_factory=set)
    # IPs that reached the exploitation stage or later on this server.
    exploiting_ips: set[str] = field(default_factory=set)


def server_indicators(report: HuntReport) -> ServerIndicators:
    """Attacker IPs, user agents, shell names and parameters, and the first exploitation day."""
    out = ServerIndicators()
    for finding in report.findings:
        if not counts(finding):
            continue
        found = finding_indicators(finding)
        out.found.update(found)
        if finding.stage in EXPLOITATION_STAGES:
            out.exploiting_ips.update(i.value for i in found if i.kind == IP)
    if report.first_exploitation is not None:
        day = report.first_exploitation.astimezone(UTC).date().isoformat()
        out.found.add(Indicator(FIRST_DAY, day))
    return out


def finding_indicators(finding: Finding) -> set[Indicator]:
    """The attacker IP, user agents, shell name and shell parameters one finding names."""
    found: set[Indicator] = set()
    if finding.client_ip and finding.client_ip.strip():
        found.add(Indicator(IP, finding.client_ip.strip()))
    for agent in _UA_IN_EVIDENCE.findall(finding.evidence):
        found.add(Indicator(USER_AGENT, agent.strip()))
    if finding.webshell_path:
        name = re.split(r"[\\/]", finding.webshell_path.strip())[-1]
        if name:
            found.add(Indicator(SHELL_NAME, name.lower()))
    for param in _REQUEST_PARAM.findall(finding.evidence):
        # ASP.NET looks request data up case-insensitively.
        found.add(Indicator(SHELL_PARAM, param.lower()))
    return found


@cache
def _public_agents() -> tuple[str, ...]:
    # Exploit tools' and spoofed crawlers' agents were used by many groups (intel data).
    iis = indicators("proxylogon")["iis"]
    return tuple(a.lower() for a in (*iis["tool_user_agents"], *iis["crawler_user_agents"]))


def is_internal(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in net for net in _INTERNAL_NETS if net.version == address.version)


@cache
def public_shell_names() -> frozenset[str]:
    """Shell names on public IOC lists (intel data): many groups and copycats used them."""
    try:
        names = indicators("webshell")["names"]
    except (OSError, KeyError):
        return frozenset()
    lists = [v for v in names.values() if isinstance(v, list)]
    return frozenset(str(name).lower() for names_ in lists for name in names_)


def weak_reason(
    indicator: Indicator, exploiting_servers: int, public: Mapping[str, frozenset[str]]
) -> str | None:
    """Why a shared indicator does not link servers (None: it does)."""
    value = indicator.value.lower()
    if value in public.get(indicator.kind, frozenset()):
        return "on public indicator lists: used by many groups"
    if indicator.kind == FIRST_DAY:
        return "timing alone: many groups struck on the same days"
    if indicator.kind == USER_AGENT and any(a in value for a in _public_agents()):
        return "public tool or spoofed crawler agent: used by many groups"
    if indicator.kind == IP:
        if is_internal(indicator.value):
            return "internal address: repeats across organisations by chance"
        if exploiting_servers < 2:
            return ("only probed (all but at most one server): scanners touch every server, "
                    "and probing a server is not compromising it")
    return None


# --- Clusters (union-find) ----------------------------------------------------------------------


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:  # path compression
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def cluster_servers(links: Mapping[Any, Sequence[int]], server_count: int) -> list[list[int]]:
    """Servers (0..server_count-1) joined by any linking indicator they share.

    `links` maps each linking indicator to the servers it was seen on; an indicator seen on
    one server joins nothing. Returns clusters of two or more servers, each sorted, ordered
    by their first server; a server is in at most one cluster.
    """
    groups = _UnionFind(server_count)
    for servers in links.values():
        distinct = sorted(set(servers))
        for other in distinct[1:]:
            groups.union(distinct[0], other)
    members: dict[int, list[int]] = defaultdict(list)
    for server in range(server_count):
        members[groups.find(server)].append(server)
    return sorted((m for m in members.values() if len(m) > 1), key=lambda m: m[0])


# --- Stacking -----------------------------------------------------------------------------------

FileRecord = tuple[str, str]  # (path relative to the copy, sha256 hex)


def _stack_key(path: str, sha256: str) -> tuple[str, str]:
    # The same web file sits under another prefix in each triage layout (C/, uploads/auto/C%3A/,
    # the install root): compare from its web anchor on. Windows paths: case and slash
    # direction do not matter.
    anchored = web_relative(path) or path
    return anchored.replace("\\", "/").strip("/").lower(), sha256.strip().lower()


def rare_files(
    reports: Sequence[HuntReport],
    files: Mapping[str, Sequence[FileRecord]],
    *,
    rare_share: float = STACK_RARE_SHARE,
    min_servers: int = STACK_MIN_SERVERS,
) -> dict[str, Any]:
    """Files rare across servers of the same Exchange build (stacking).

    `files` maps a report's `source` to that server's web files as (relative path, sha256);
    servers without an entry are left out of the stacking. A file (same path, same content)
    seen on at most `rare_share` of its build's servers (and at least on one) is rare: a
    planted shell, or a product page someone changed. Builds with fewer than `min_servers`
    servers holding file records cannot be stacked and are named instead.
    """
    by_build: dict[str, list[int]] = defaultdict(list)
    for i, report in enumerate(reports):
        if report.source in files:
            by_build[report.host.exchange_build or "unknown"].append(i)
    rare: list[dict[str, Any]] = []
    too_small: list[dict[str, Any]] = []
    for build, servers in sorted(by_build.items()):
        if len(servers) < min_servers:
            too_small.append({"build": build, "servers": len(servers)})
            continue
        limit = max(1, int(len(servers) * rare_share))
        held: dict[int, dict[tuple[str, str], FileRecord]] = {}
        seen: Counter[tuple[str, str]] = Counter()
        for i in servers:
            keyed = {_stack_key(*rec): rec for rec in files[reports[i].source]}
            held[i] = keyed
            seen.update(keyed.keys())
        for i in servers:
            for key, (path, sha256) in sorted(held[i].items()):
                if seen[key] <= limit:
                    rare.append({"build": build, "servers_of_build": len(servers),
                                 "source": reports[i].source, "path": path,
                                 "sha256": sha256.lower(), "seen_on": seen[key]})
    return {"available": bool(by_build), "rare": rare, "too_few_servers": too_small}


def reported_web_files(reports: Sequence[HuntReport]) -> dict[str, list[FileRecord]]:
    """The web files (path, sha256) the engine kept in each report."""
    out: dict[str, list[FileRecord]] = {}
    for report in reports:
        held = report.web_files
        if held:
            out[report.source] = [(str(path), str(sha256)) for path, sha256 in held]
    return out


# --- The fleet summary --------------------------------------------------------------------------


def campaigns(report: HuntReport) -> list[str]:
    """The indicator sets that matched: the families of the checks that showed exploitation."""
    return sorted({f.check.split(".", 1)[0] for f in report.findings
                   if counts(f) and f.stage in EXPLOITATION_STAGES})


def _window(report: HuntReport) -> tuple[datetime | None, datetime | None]:
    firsts = [c.first for c in report.coverage.values() if c.first is not None]
    lasts = [c.last for c in report.coverage.values() if c.last is not None]
    return min(firsts, default=None), max(lasts, default=None)


def _server_row(report: HuntReport) -> dict[str, Any]:
    first, last = _window(report)
    return {
        "source": report.source,
        "host": report.host.name,
        "build": report.host.exchange_build,
        "verdict": report.verdict.label,
        "first_exploitation": iso(report.first_exploitation),
        "wave": disclosure_wave(report),
        "campaigns": campaigns(report),
        "coverage": {"first": iso(first), "last": iso(last)},
        "errors": len(report.errors),
        "unreadable": report.unreadable,
        "cluster": None,
    }


def fleet_summary(
    reports: Sequence[HuntReport],
    *,
    files: Mapping[str, Sequence[FileRecord]] | None = None,
    public: Mapping[str, frozenset[str]] | None = None,
) -> dict[str, Any]:
    """The fleet at a glance, as JSON: verdicts, waves, shared hands, rare files.

    `files` (hook for the web-shell scan): per report source, the server's web files as
    (relative path, sha256); by default each report's `web_files` if the engine keeps them;
    without any, stacking is reported as unavailable.
    `public`: per indicator kind, values known from public lists (lower case), which show
    the same toolkit rather than the same hands and therefore do not link servers; by
    default the shell names of the web-shell IOC lists (intel data `webshell.toml`).
    """
    if public is None:
        public = {SHELL_NAME: public_shell_names()}
    if files is None:
        files = reported_web_files(reports)
    rows = [_server_row(r) for r in reports]
    per_server = [server_indicators(r) for r in reports]
    seen_on: dict[Indicator, list[int]] = defaultdict(list)
    for i, found in enumerate(per_server):
        for indicator in found.found:
            seen_on[indicator].append(i)
    shared: list[dict[str, Any]] = []
    links: dict[Indicator, list[int]] = {}
    for indicator, servers in sorted(seen_on.items()):
        if len(servers) < 2:
            continue
        if indicator.kind == IP:  # an address links only servers it compromised
            servers_linked = [i for i in servers if indicator.value in per_server[i].exploiting_ips]
        else:
            servers_linked = servers
        reason = weak_reason(indicator, len(servers_linked), public)
        if reason is None:
            links[indicator] = servers_linked
        shared.append({"kind": indicator.kind, "value": indicator.value,
                       "servers": [reports[i].source for i in servers],
                       "links": reason is None, "why_not": reason})
    clusters = []
    for number, members in enumerate(cluster_servers(links, len(reports)), 1):
        for i in members:
            rows[i]["cluster"] = number
        inside = set(members)
        clusters.append({
            "id": number,
            "servers": [reports[i].source for i in members],
            "indicators": [{"kind": ind.kind, "value": ind.value, "servers": len(servers)}
                           for ind, servers in sorted(links.items()) if set(servers) <= inside],
            "waves": dict(Counter(disclosure_wave(reports[i]) for i in members)),
            "first_exploitation": iso(min(
                (when for i in members if (when := reports[i].first_exploitation) is not None),
                default=None)),
        })
    return {
        "servers": len(reports),
        # A copy that could not be read is no clean server: it is counted apart.
        "verdicts": {v.label: sum(r.verdict is v and not r.unreadable for r in reports)
                     for v in Verdict},
        "unreadable": [r.source for r in reports if r.unreadable],
        "no_logs_read": [r.source for r in reports if not r.unreadable and not r.coverage],
        "wave_boundary": iso(patch_day()),
        "waves": {w: sum(row["wave"] == w for row in rows)
                  for w in DISCLOSURE_WAVES},
        "per_server": rows,
        "clusters": clusters,
        "unlinked_compromised": [row["source"] for row in rows if row["cluster"] is None
                                 and row["wave"] != NOT_EXPLOITED],
        "shared_indicators": shared,
        "stacking": rare_files(reports, files),
    }


def answer(summary: Mapping[str, Any]) -> str:
    """The coordinator's question in one sentence: one group, several, or cannot tell."""
    clusters = summary["clusters"]
    loose = summary["unlinked_compromised"]
    if not clusters and not loose:
        return "No server shows a successful exploitation: there is no group to compare."
    if len(clusters) == 1 and not loose:
        return (f"All {len(clusters[0]['servers'])} linked servers share infrastructure: "
                "one group, as far as these indicators show.")
    parts = []
    if clusters:
        parts.append(f"{len(clusters)} group(s) of servers sharing infrastructure")
    if loose:
        parts.append(f"{len(loose)} compromised server(s) linked to no other")
    return ("; ".join(parts) + ": more than one set of hands, or the same hands changing "
            "their infrastructure (indicators cannot tell these apart).")


def write_fleet_summary(
    reports: Sequence[HuntReport],
    path: Path,
    *,
    files: Mapping[str, Sequence[FileRecord]] | None = None,
) -> None:
    """Write the fleet summary as JSON (`.json`) or one HTML file (`.html`, `.htm`)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        text = json.dumps(fleet_summary(reports, files=files), indent=2, ensure_ascii=False)
        text += "\n"
    elif suffix in (".html", ".htm"):
        text = fleet_html(reports, files=files)
    else:
        raise UsageError(f"{path}: the fleet summary is written as .json or .html")
    path.write_text(text, "utf-8")


_HTML = jinja2.Environment(
    loader=jinja2.PackageLoader("exhunt.hunt", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def fleet_html(
    reports: Sequence[HuntReport],
    *,
    files: Mapping[str, Sequence[FileRecord]] | None = None,
    public: Mapping[str, frozenset[str]] | None = None,
) -> str:
    """The fleet summary as one self-contained HTML file: no scripts, everything escaped."""
    summary = fleet_summary(reports, files=files, public=public)
    return _HTML.get_template("fleet.html.j2").render(
        s=summary, answer=answer(summary), labels=KIND_LABELS,
    )
