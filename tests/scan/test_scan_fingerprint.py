"""Fingerprinting from what a browser sees: real-shaped pages, headers, manifests."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from exhunt.scan.fingerprint import (
    EXPORT_TOOL,
    LOGON_PAGE,
    OWA_ROOT,
    Page,
    build_from_exporttool,
    build_from_header,
    build_from_logon_page,
    exchange_marks,
    fingerprint,
    redirect_target,
)

DATA = Path(__file__).parent.parent / "data" / "scan"


def read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def test_header_in_any_case() -> None:
    assert build_from_header([("X-OWA-Version", "15.0.1497.26")]) == "15.0.1497.26"
    assert build_from_header([("x-owa-version", "15.1.2242.12")]) == "15.1.2242.12"
    assert build_from_header({"X-Owa-VERSION": " 15.2.858.2 "}) == "15.2.858.2"
    assert build_from_header([("X-OWA-Version", "15.1.2242")]) is None  # not 4 parts
    assert build_from_header([("X-OWA-Version", "<script>alert(1)</script>")]) is None
    assert build_from_header([("Server", "Microsoft-IIS/10.0")]) is None


def test_logon_page_asset_path_gives_the_cu() -> None:
    assert build_from_logon_page(read("owa2016_cu19_logon.html")) == "15.1.2176"


def test_2010_style_paths() -> None:
    assert build_from_logon_page(read("owa2010_logon.html")) == "14.3.123.4"
    assert build_from_logon_page(read("owa2013_logon_2010style_3part.html")) == "14.3.123"


def test_export_tool_manifest_reads_its_own_assembly_identity() -> None:
    assert build_from_exporttool(read("exporttool.application")) == "15.2.986.5"
    other = '<assemblyIdentity name="something.else" version="15.2.986.5" />'
    assert build_from_exporttool(other) is None
    assert build_from_exporttool("<assemblyIdentity name='x.exporttool' version='1.2'/>") is None


def test_not_exchange_page_has_no_marks() -> None:
    page = Page(
        "/owa/auth/logon.aspx", 200, (("Server", "Microsoft-IIS/10.0"),), read("iis_default.html")
    )
    assert exchange_marks(page) == 0
    fp = fingerprint([page])
    assert fp == fingerprint([]) and not fp.exchange and fp.build is None


def test_owa_redirect_is_an_exchange_mark_and_is_reported() -> None:
    page = Page(
        OWA_ROOT,
        302,
        (
            (
                "Location",
                "https://mail.example.org/owa/auth/logon.aspx?url=https%3a%2f%2fmail.example.org%2fowa%2f&reason=0",
            ),
        ),
        "",
    )
    assert redirect_target(page) is not None and "logon.aspx" in (redirect_target(page) or "")
    fp = fingerprint([page])
    assert fp.exchange and fp.build is None and fp.build_source is None


def test_precedence_header_over_manifest_over_page() -> None:
    logon = Page(LOGON_PAGE, 200, (), read("owa2016_cu19_logon.html"))
    tool = Page(EXPORT_TOOL, 200, (), read("exporttool.application"))
    header = Page(OWA_ROOT, 302, (("x-owa-version", "15.1.2176.9"),), "")
    assert fingerprint([logon]).build_source == "logon-page"
    assert fingerprint([logon, tool]).build == "15.2.986.5"
    fp = fingerprint([logon, tool, header])
    assert (fp.build, fp.build_source) == ("15.1.2176.9", "x-owa-version")


def test_manifest_only_counts_on_200() -> None:
    tool = Page(EXPORT_TOOL, 404, (), read("exporttool.application"))
    assert fingerprint([tool]).build is None


def test_version_path_on_a_non_logon_page_is_other() -> None:
    page = Page(OWA_ROOT, 200, (), read("owa2016_cu19_logon.html"))
    assert fingerprint([page]).build_source == "other"


def test_cookie_and_proxy_headers_are_marks() -> None:
    page = Page(OWA_ROOT, 401, (("Set-Cookie", "exchangecookie=abc; path=/"),), "")
    assert exchange_marks(page) == 1
    page = Page(OWA_ROOT, 401, (("X-FEServer", "EXCH01"),), "")
    assert fingerprint([page]).exchange


headers_st = st.lists(st.tuples(st.text(max_size=30), st.text(max_size=60)), max_size=8)


@settings(max_examples=300)
@given(
    st.sampled_from([OWA_ROOT, LOGON_PAGE, EXPORT_TOOL, "/x"]),
    st.integers(0, 999),
    headers_st,
    st.text(max_size=3000),
)
def test_arbitrary_responses_never_raise(
    path: str, status: int, headers: list[tuple[str, str]], body: str
) -> None:
    page = Page(path, status, tuple(headers), body)
    fp = fingerprint([page])
    assert fp.build is None or fp.build.count(".") in (2, 3)
    exchange_marks(page)
    redirect_target(page)


@given(st.binary(max_size=4000))
def test_binary_junk_decoded_never_raises(blob: bytes) -> None:
    body = blob.decode("utf-8", errors="replace")
    fingerprint([Page(LOGON_PAGE, 200, (), body), Page(EXPORT_TOOL, 200, (), body)])


def test_huge_body_is_bounded() -> None:
    body = "<assemblyIdentity " + "a" * 5_000_000
    assert build_from_exporttool(body) is None
    assert build_from_logon_page("/owa/auth/" * 500_000) is None
