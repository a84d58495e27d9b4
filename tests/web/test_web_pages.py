"""Pages and uploads: hostile feed text stays text, the case moves on uploaded evidence."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import orjson
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from exhunt.store.db import Store
from exhunt.store.models import Event, Host
from exhunt.web.app import REPORT_CSP, create_app, parse_report
from exhunt.web.charts import Series, bar_chart, line_chart
from helpers.webworld import IMG, SCRIPT, World, hunt_report, login_coordinator


def _pages(clients: dict[str, TestClient], world: World) -> dict[str, str]:
    coordinator = clients["coordinator"]
    return {path: coordinator.get(path).text
            for path in ("/", "/cases", f"/cases/{world.case_a}", f"/hosts/{world.host_a}",
                         f"/cases?q={SCRIPT}")}


def test_script_in_feed_fields_is_rendered_as_text(clients: dict[str, TestClient],
                                                   world: World) -> None:
    for path, html in _pages(clients, world).items():
        assert "<script" not in html.lower(), path  # no page carries any script at all
        assert "<img" not in html.lower(), path
    case_page = _pages(clients, world)[f"/cases/{world.case_a}"]
    assert "feed said &lt;script&gt;alert(&#34;feed&#34;)&lt;/script&gt;" in case_page
    assert "&lt;img src=x onerror=alert(1)&gt;" in case_page  # the host name, as text
    overview = _pages(clients, world)["/"]
    assert "Hostile AS &lt;script&gt;" in overview  # the AS chart's label, escaped in SVG


def test_fleet_waves_and_clusters_on_the_overview(clients: dict[str, TestClient]) -> None:
    overview = clients["coordinator"].get("/").text
    assert "Fleet hunt: servers by wave" in overview
    assert "ip: 203.0.113.9 &lt;img src=x onerror=alert(1)&gt;" in overview
    assert "x &lt;script&gt;" in overview  # a server label from the summary, as text
    assert "not a cluster" not in overview  # malformed entries are left out


def test_every_page_has_a_strict_csp(clients: dict[str, TestClient], world: World) -> None:
    for path in ("/", "/cases", f"/cases/{world.case_a}", "/login", "/api/summary"):
        csp = clients["coordinator"].get(path).headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp
        assert "unsafe-inline" not in csp


def test_uploaded_report_is_shown_sandboxed_and_escaped(clients: dict[str, TestClient],
                                                        world: World) -> None:
    victim = clients["victim_a"]
    page = victim.get(f"/cases/{world.case_a}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    hostile = hunt_report("backdoored", title=f"</td>{SCRIPT}<iframe src=//evil>")
    sent = victim.post(f"/cases/{world.case_a}/reports", data={"csrf": csrf.group(1)},
                       files={"report": ("r.json", hostile)}, follow_redirects=True)
    assert sent.status_code == 200
    link = re.search(rf'href="(/cases/{world.case_a}/reports/\d+)"', sent.text)
    assert link is not None
    shown = clients["coordinator"].get(link.group(1))
    assert shown.headers["content-security-policy"] == REPORT_CSP
    assert "<script" not in shown.text and "<iframe" not in shown.text
    assert "&lt;iframe src=//evil&gt;" in shown.text


def test_clean_report_resolves_the_case_and_is_recorded(app: FastAPI, world: World) -> None:
    client = TestClient(app)
    a = {"Authorization": f"Bearer {world.token_a}", "content-type": "application/json"}
    before = client.get(f"/api/cases/{world.case_a}", headers=a).json()
    assert before["status"] == "open" and before["hosts"][0]["state"] == "backdoor"
    response = client.post("/api/reports", content=hunt_report("clean"), headers=a)
    assert response.status_code == 200, response.text
    assert response.json()["host_state"] == "clean"
    after = client.get(f"/api/cases/{world.case_a}", headers=a).json()
    assert after["status"] == "resolved"
    assert after["reports"][0]["verdict"] == "clean"
    assert any(e["kind"] == "report-received" for e in after["history"])
    store = Store(world.url)
    with store.session() as session:
        kinds = set(session.scalars(select(Event.kind)))
    store.close()
    assert {"report-received", "case-resolved"} <= kinds


def test_backdoored_report_keeps_the_host_compromised(app: FastAPI, world: World) -> None:
    client = TestClient(app)
    a = {"Authorization": f"Bearer {world.token_b}", "content-type": "application/json"}
    response = client.post("/api/reports", content=hunt_report("backdoored",
                                                               name="mail.b.example"), headers=a)
    assert response.status_code == 200, response.text
    store = Store(world.url)
    with store.session() as session:
        state = session.scalar(select(Host.state).where(Host.ip == world.host_b))
    store.close()
    assert state == "backdoor"


@pytest.mark.parametrize(("body", "status"), [
    (b"not json at all", 422),
    (b"[1, 2, 3]", 422),
    (orjson.dumps({"verdict": "owned", "source": "x", "host": {}}), 422),
    (orjson.dumps({"verdict": "clean", "source": "x", "host": {"name": ["nested"]}}), 422),
    (b"{" + b" " * (6 * 1024 * 1024) + b"}", 413),
])
def test_upload_limits(app: FastAPI, world: World, body: bytes, status: int) -> None:
    client = TestClient(app)
    response = client.post("/api/reports", content=body,
                           headers={"Authorization": f"Bearer {world.token_a}",
                                    "content-type": "application/json"})
    assert response.status_code == status, response.text


def test_oversized_form_upload_is_refused_before_parsing(world: World) -> None:
    client = TestClient(create_app(world.url, max_upload=1000))
    response = client.post(f"/cases/{world.case_a}/reports", data={"csrf": "x"},
                           files={"report": ("r.json", b"{" + b" " * 200_000 + b"}")})
    assert response.status_code == 413


def test_upload_for_a_host_of_another_case_is_refused(app: FastAPI, world: World) -> None:
    client = TestClient(app)
    response = client.post(f"/api/reports?host_ip={world.host_b}", content=hunt_report(),
                           headers={"Authorization": f"Bearer {world.token_a}"})
    assert response.status_code == 422
    assert "not one of this case's hosts" in response.json()["detail"]


def test_small_upload_limit_is_configurable(world: World) -> None:
    client = TestClient(create_app(world.url, max_upload=100))
    response = client.post("/api/reports", content=hunt_report(),
                           headers={"Authorization": f"Bearer {world.token_a}"})
    assert response.status_code == 413


def test_cases_search_and_sort(clients: dict[str, TestClient], world: World) -> None:
    coordinator = clients["coordinator"]
    found = coordinator.get("/api/cases", params={"q": "198.51.100"}).json()
    assert [c["reference"] for c in found] == [world.case_b]
    by_worst = coordinator.get("/api/cases", params={"sort": "worst", "desc": True}).json()
    assert by_worst[0]["worst"] == "backdoor"
    paged = coordinator.get("/api/cases", params={"limit": 1, "offset": 1}).json()
    assert [c["reference"] for c in paged] == [world.case_b]
    wildcard = coordinator.get("/api/cases", params={"q": "%"}).json()
    assert wildcard == []  # LIKE wildcards in a search are plain characters


def test_summary_counts_and_series(clients: dict[str, TestClient]) -> None:
    summary = clients["coordinator"].get("/api/summary").json()
    assert summary["by_group"]["backdoored"] == 1 and summary["by_group"]["vulnerable"] == 1
    assert summary["funnel"]["notified"] == 1 and summary["funnel"]["delivered"] == 1
    last = summary["series"][-1]
    assert last["backdoored"] == 1 and last["vulnerable"] == 1


def test_notice_text_is_readable_by_the_coordinator(clients: dict[str, TestClient],
                                                    world: World) -> None:
    page = clients["coordinator"].get(f"/cases/{world.case_a}").text
    assert "Your server &lt;script&gt;" in page
    assert "exv1." + world.case_a in page  # the token to print in the notice
    assert "exv1." not in clients["victim_b"].get(f"/cases/{world.case_b}").text


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400) | st.builds(lambda d: orjson.dumps(d), st.dictionaries(
    st.sampled_from(["verdict", "source", "host", "findings", "coverage", "errors", "x"]),
    st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
                 | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8))))
def test_report_parser_accepts_or_refuses_cleanly(data: bytes) -> None:
    try:
        report, _ = parse_report(data)
    except HTTPException as exc:
        assert exc.status_code == 422
    else:
        assert report.verdict.label in {"clean", "probed", "exploited", "backdoored", "reentered"}


TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)
SVG_ELEMENTS = {"svg", "title", "text", "rect", "line", "polyline", "circle"}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(TEXT, st.floats(0, 1e9)), max_size=8), TEXT)
def test_chart_labels_never_become_markup(items: list[tuple[str, float]], title: str) -> None:
    charts = (bar_chart(title, items, unit="hosts"),
              line_chart(title, [label for label, _ in items],
                         [Series(title, [v for _, v in items], "#000")], y_label="hosts"))
    for chart in charts:
        root = ElementTree.fromstring(str(chart))  # well-formed, whatever the labels
        tags = {element.tag.split("}")[-1] for element in root.iter()}
        assert tags <= SVG_ELEMENTS  # labels never add elements or attributes
        texts = " ".join(t for element in root.iter() for t in (element.text or "",))
        assert title in texts


def test_img_constant_is_hostile() -> None:
    assert "<" in IMG and "<" in SCRIPT  # the fixtures above really carry markup


def test_page_title_is_plain_text_and_nothing_precedes_the_header(world: World) -> None:
    client = TestClient(create_app(world.url))
    login_coordinator(client)
    page = client.get("/").text
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    assert title is not None and "<" not in title.group(1)
    body = page.split("<body>", 1)[1]
    assert body.lstrip().startswith('<header class="top">')
