"""Read an Exchange build from what a browser is shown. Pure functions, no I/O.

Three places carry a version (righel/ms-exchange-version-nse, Metasploit's exchange mixin,
CSS-Exchange issue #107):
- the ``X-OWA-Version`` header: full 4-part build (any case of the name);
- the ECP export-tool ClickOnce manifest: 4-part ``assemblyIdentity version``;
- asset paths on the OWA logon page: ``/owa/auth/15.1.2176/themes/...`` (CU only on 2013+)
  or ``/owa/14.3.513.0/themes/...`` on 2010.
Every function takes bounded, possibly hostile input and never raises on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

BuildSource = Literal["x-owa-version", "exporttool", "logon-page", "other"]

# Paths a browser fetches; nothing else is ever requested.
OWA_ROOT = "/owa/"
LOGON_PAGE = "/owa/auth/logon.aspx"
EXPORT_TOOL = "/ecp/Current/exporttool/microsoft.exchange.ediscovery.exporttool.application"

MAX_SCAN_CHARS = 512 * 1024  # only the head of a body is ever inspected

_HEADER_BUILD = re.compile(r"^\s*(1[45]\.\d{1,2}\.\d{1,5}\.\d{1,5})\s*$")
_ASSET_PATH = re.compile(
    r"/owa/(?:auth/)?(1[45]\.\d{1,2}\.\d{1,5}(?:\.\d{1,5})?)/(?:themes|scripts|resources|prem)/",
    re.IGNORECASE,
)
_ASSEMBLY_ID = re.compile(r"<(?:\w+:)?assemblyIdentity\b([^>]{0,2000})>", re.IGNORECASE)
_ATTR = re.compile(r"""\b([\w:.-]{1,64})\s*=\s*(?:"([^"]{0,200})"|'([^']{0,200})')""")
_FOUR_PART = re.compile(r"^1[45]\.\d{1,2}\.\d{1,5}\.\d{1,5}$")

# Marks that only Exchange's OWA shows (mgeeky exchangeRecon.py verifyExchange, Metasploit
# exchange mixin, nuclei ms-exchange-server.yaml).
_STRONG_BODY_MARKS = (
    "<!-- owapage = asp.auth_logon_aspx -->",
    "{57a118c6-2da9-419d-be9a-f92b0f9a418b}",
    "<title>outlook web app</title>",
    "<title>outlook web access</title>",
    "<title>microsoft exchange - outlook web access</title>",
    "function isowapremiumbrowser",
    "to use outlook web app, browser settings must allow scripts to run",
    "to use outlook, browser settings must allow scripts to run",
    "/owa/auth/logon.aspx?url=",
)
_STRONG_COOKIES = ("exchangecookie=", "outlooksession=")
_EXCHANGE_HEADERS = ("x-owa-version", "x-feserver", "x-beserver", "x-calculatedbetarget")


@dataclass(frozen=True)
class Page:
    """One HTTP response as the scanner saw it (body cut to the size cap)."""

    path: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: str

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)


@dataclass(frozen=True)
class Fingerprint:
    exchange: bool
    build: str | None
    build_source: BuildSource | None


def header_value(headers: Iterable[tuple[str, str]] | Mapping[str, str], name: str) -> str | None:
    """First value of a header, matching the name in any case."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    wanted = name.lower()
    for key, value in items:
        if isinstance(key, str) and key.lower() == wanted and isinstance(value, str):
            return value
    return None


def build_from_header(headers: Iterable[tuple[str, str]] | Mapping[str, str]) -> str | None:
    """The 4-part build in ``X-OWA-Version``, whatever the case of the header name."""
    value = header_value(headers, "X-OWA-Version")
    if value is None:
        return None
    m = _HEADER_BUILD.match(value[:64])
    return m.group(1) if m else None


def build_from_logon_page(body: str) -> str | None:
    """The version in OWA asset paths: 3 parts on 2013+, 4 on 2010. Most parts wins."""
    best: str | None = None
    for m in _ASSET_PATH.finditer(body[:MAX_SCAN_CHARS]):
        found = m.group(1)
        if best is None or found.count(".") > best.count("."):
            best = found
            if best.count(".") == 3:
                break
    return best


def build_from_exporttool(body: str) -> str | None:
    """``version`` of the export tool's own ``assemblyIdentity`` in its ClickOnce manifest.

    Attributes are read by a bounded scan rather than an XML parser: the body is hostile,
    and entity expansion or deep nesting must cost nothing.
    """
    for m in _ASSEMBLY_ID.finditer(body[:MAX_SCAN_CHARS]):
        attrs = {
            a.group(1).lower(): (a.group(2) if a.group(2) is not None else a.group(3) or "")
            for a in _ATTR.finditer(m.group(1))
        }
        name = attrs.get("name", "").lower()
        version = attrs.get("version", "")
        if "exporttool" in name and _FOUR_PART.match(version):
            return version
    return None


def exchange_marks(page: Page) -> int:
    """How many definitive Exchange/OWA marks the response shows."""
    score = 0
    low = page.body[:MAX_SCAN_CHARS].lower()
    score += sum(1 for mark in _STRONG_BODY_MARKS if mark in low)
    for key, value in page.headers:
        k = key.lower()
        if k in _EXCHANGE_HEADERS or (
            k == "set-cookie" and value.lower().startswith(_STRONG_COOKIES)
        ):
            score += 1
    location = (page.header("Location") or "").lower()
    if "/owa/auth/logon.aspx" in location:
        score += 1
    if _ASSET_PATH.search(page.body[:MAX_SCAN_CHARS]):
        score += 1
    return score


def redirect_target(page: Page) -> str | None:
    if page.status in (301, 302, 303, 307, 308):
        loc = page.header("Location")
        return loc.strip()[:2048] if loc else None
    return None


def fingerprint(pages: Iterable[Page]) -> Fingerprint:
    """Combine what the fetched pages show; the most precise source wins.

    Order: X-OWA-Version (exact) > export-tool manifest (exact) > logon-page path
    (CU, or exact on 2010) > other marks (Exchange without a version).
    """
    pages = list(pages)
    exchange = False
    header_build = tool_build = page_build = None
    page_source: BuildSource = "logon-page"
    for page in pages:
        if exchange_marks(page) > 0:
            exchange = True
        header_build = header_build or build_from_header(page.headers)
        if page.status == 200 and page.path == EXPORT_TOOL:
            tool_build = tool_build or build_from_exporttool(page.body)
        elif page.status < 400 or page.status == 401:
            found = build_from_logon_page(page.body)
            on_logon = page.path.startswith(LOGON_PAGE)
            better = page_build is None or (
                found is not None
                and (found.count(".") > page_build.count(".") or (found == page_build and on_logon))
            )
            if found and better:
                page_build = found
                page_source = "logon-page" if on_logon else "other"
    if header_build:
        return Fingerprint(True, header_build, "x-owa-version")
    if tool_build:
        return Fingerprint(True, tool_build, "exporttool")
    if page_build:
        return Fingerprint(True, page_build, page_source)
    return Fingerprint(exchange, None, None)


def has_exact_build(pages: Iterable[Page]) -> bool:
    """True once a 4-part build is known, so no further page need be fetched."""
    fp = fingerprint(pages)
    return fp.build is not None and fp.build.count(".") == 3
