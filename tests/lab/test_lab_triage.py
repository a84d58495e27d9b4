"""Synthetic triage copies: layout, exact formats, size, determinism, and what each scenario
holds (the lead's hunt tests rely on these facts)."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import zipfile
from pathlib import Path

import pytest

from exhunt.errors import UsageError
from exhunt.lab import catalog
from exhunt.lab.triage import Scenario, TriageSpec, build_triage, truth_path, zip_triage
from helpers.lab_triage import V15, Builder, all_bytes, csv_rows, line_time, log_files

DOC_NETS = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24",
                                              "203.0.113.0/24")]
ALL = list(Scenario)


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(p.relative_to(root).as_posix().encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def text_of(root: Path, pattern: str) -> str:
    return "".join(p.read_text("utf-8") for p in sorted(root.glob(pattern)))


def httpproxy_rows(root: Path, protocol: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for lf in log_files(root / V15 / "Logging" / "HttpProxy" / protocol):
        rows += [dict(zip(lf.fields, r, strict=True)) for r in csv_rows(lf)]
    return rows


def iis_lines(root: Path, site: str = "W3SVC1") -> list[list[str]]:
    out: list[list[str]] = []
    for lf in log_files(root / "inetpub" / "logs" / "LogFiles" / site):
        out += [line.split(" ") for line in lf.lines]
    return out


# --- structure ------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ALL)
def test_every_scenario_builds_with_all_log_families(triage_copy: Builder,
                                                     scenario: Scenario) -> None:
    built = triage_copy(scenario)
    kinds = {lf.kind for lf in log_files(built.out)}
    assert kinds == {"httpproxy", "rps", "ecp", "oab", "iis"}
    protocols = {p.name for p in (built.out / V15 / "Logging" / "HttpProxy").iterdir()}
    assert {"Autodiscover", "Eas", "Ecp", "Ews", "Mapi", "Owa"} <= protocols
    assert protocols <= set(catalog.HTTPPROXY_PROTOCOLS)
    assert built.truth.scenario == scenario
    evtx = built.out / "Windows" / "System32" / "winevt" / "Logs"
    assert (evtx / "Application.evtx").read_bytes()[:8] == b"ElfFile\x00"
    assert (evtx / "MSExchange Management.evtx").read_bytes()[:8] == b"ElfFile\x00"
    assert (evtx / "Security.evtx").read_bytes()[:8] == b"ElfFile\x00"


@pytest.mark.parametrize("scenario", ALL)
def test_csv_logs_have_as_many_columns_as_their_fields_line(triage_copy: Builder,
                                                            scenario: Scenario) -> None:
    built = triage_copy(scenario)
    checked = 0
    for lf in log_files(built.out):
        if lf.kind == "iis":
            assert lf.header[0] == "#Software: Microsoft Internet Information Services 10.0"
            for line in lf.lines:
                assert len(line.split(" ")) == len(lf.fields), (lf.path, line)
        else:
            assert [h.split(":")[0] for h in lf.header] == [
                "#Software", "#Version", "#Log-type", "#Date", "#Fields"]
            if lf.kind == "httpproxy":
                assert lf.fields == list(catalog.HTTPPROXY_FIELDS)
                assert len(lf.fields) == 74
            for row in csv_rows(lf):
                assert len(row) == len(lf.fields), (lf.path, row)
        checked += len(lf.lines)
    assert checked > 500


@pytest.mark.parametrize("scenario", ALL)
def test_lines_are_in_time_order_within_each_file(triage_copy: Builder,
                                                  scenario: Scenario) -> None:
    for lf in log_files(triage_copy(scenario).out):
        times = [line_time(lf, line) for line in lf.lines]
        assert times == sorted(times), lf.path
        assert lf.lines, lf.path


def test_hourly_and_daily_file_names_match_their_lines(triage_copy: Builder) -> None:
    for lf in log_files(triage_copy(Scenario.REENTERED).out):
        first = line_time(lf, lf.lines[0]).replace("-", "")
        name = lf.path.name
        if lf.kind in ("httpproxy", "rps"):
            assert name.endswith(f"_{first[:8]}{first[9:11]}-1.LOG"), (name, first)
        elif lf.kind == "iis":
            assert name == f"u_ex{first[2:8]}.log"
        else:
            assert f"{first[:8]}-1.LOG" in name


def test_ua_and_query_encoding_follow_the_real_logs(triage_copy: Builder) -> None:
    built = triage_copy(Scenario.PROBED)
    owa = httpproxy_rows(built.out, "Owa") + httpproxy_rows(built.out, "Mapi")
    uas = {r["UserAgent"] for r in owa}
    assert not any("," in ua for ua in uas)
    assert any("(KHTML  like Gecko)" in ua for ua in uas) or all("KHTML" not in u for u in uas)
    lines = iis_lines(built.out)
    assert all(" " not in f for line in lines for f in line)
    exchange = [line for line in lines if line[4].lower().startswith(("/mapi/", "/ews/"))]
    assert exchange
    for line in exchange:
        assert "&CorrelationID=<empty>;&cafeReqId=" in line[5] and line[5].endswith(";")


@pytest.mark.parametrize("layout,prefix", [
    ("plain", ""), ("kape", "C/"), ("velociraptor", "uploads/auto/C%3A/"),
])
def test_layouts_put_the_drive_where_the_collector_does(triage_copy: Builder, layout: str,
                                                        prefix: str) -> None:
    built = triage_copy(Scenario.REENTERED, layout=layout)
    root = built.out / prefix
    assert (root / V15 / "Logging" / "HttpProxy" / "Ecp").is_dir()
    assert (root / "inetpub" / "logs" / "LogFiles" / "W3SVC1").is_dir()
    assert (root / "inetpub" / "logs" / "LogFiles" / "W3SVC2").is_dir()
    assert (root / "inetpub" / "wwwroot" / "aspnet_client" / "system_web").is_dir()
    assert (root / "ProgramData" / "VMware" / "VMware Tools" / "vss_manifests.zip").is_file()
    assert (root / "Windows" / "System32" / "winevt" / "Logs" / "Application.evtx").is_file()
    top = {p.name for p in built.out.iterdir()}
    assert top == {prefix.split("/")[0] or "Program Files"} or not prefix
    for shell in built.truth.shell_paths:
        assert shell.startswith(prefix)
        assert (built.out / shell).is_file()


def test_live_layout_is_the_exchange_folder_only(triage_copy: Builder) -> None:
    built = triage_copy(Scenario.REENTERED, layout="live")
    top = {p.name for p in built.out.iterdir()}
    assert "Logging" in top and "FrontEnd" in top
    assert not {"inetpub", "Windows", "ProgramData", "Program Files"} & top
    assert not list(built.out.rglob("u_ex*.log"))
    # Without IIS logs the shell must sit where HttpProxy logs its use.
    [shell] = built.truth.shell_paths
    assert shell.startswith("FrontEnd/HttpProxy/owa/auth/")
    assert (built.out / shell).is_file()
    assert not built.truth.evtx_written


@pytest.mark.parametrize("size", [600_000, 2_500_000])
def test_size_is_honoured_within_ten_percent(triage_copy: Builder, size: int) -> None:
    built = triage_copy(Scenario.BACKDOORED, size=size, seed=5)
    on_disk = all_bytes(built.out)
    assert abs(on_disk - size) <= size * 0.10, on_disk
    assert built.truth.bytes_written == on_disk


def test_same_seed_same_copy_other_seed_other_copy(tmp_path: Path) -> None:
    spec = TriageSpec(Scenario.REENTERED, size_bytes=500_000, seed=42)
    a = tmp_path / "a"
    b = tmp_path / "b"
    c = tmp_path / "c"
    ta = build_triage(a, spec)
    tb = build_triage(b, spec)
    tc = build_triage(c, TriageSpec(Scenario.REENTERED, size_bytes=500_000, seed=43))
    assert tree_digest(a) == tree_digest(b)
    assert ta.to_json() == tb.to_json()
    assert tree_digest(a) != tree_digest(c)
    assert ta.attacker_ips != tc.attacker_ips


def test_truth_is_written_beside_the_copy_never_inside(triage_copy: Builder) -> None:
    built = triage_copy(Scenario.BACKDOORED)
    truth_file = truth_path(built.out)
    assert truth_file.parent == built.out.parent
    assert not truth_file.is_relative_to(built.out)
    saved = json.loads(truth_file.read_text())
    assert saved["scenario"] == "backdoored"
    assert saved["shell_paths"] == built.truth.shell_paths
    # Nothing in the copy names the answer file or states the scenario.
    assert not [p for p in built.out.rglob("*") if "truth" in p.name.lower()]


@pytest.mark.parametrize("scenario", ALL)
def test_attacker_ips_are_documentation_addresses(triage_copy: Builder,
                                                  scenario: Scenario) -> None:
    truth = triage_copy(scenario).truth
    for ip in truth.attacker_ips:
        assert any(ipaddress.ip_address(ip) in net for net in DOC_NETS), ip
    assert bool(truth.attacker_ips) == (scenario != Scenario.CLEAN)


def test_client_addresses_are_private_or_documentation(triage_copy: Builder) -> None:
    built = triage_copy(Scenario.REENTERED)
    seen = {line[8] for line in iis_lines(built.out)}
    seen |= {r["ClientIpAddress"] for r in httpproxy_rows(built.out, "Owa")}
    for ip in seen:
        addr = ipaddress.ip_address(ip)
        assert addr.is_private or any(addr in net for net in DOC_NETS), ip


def test_zip_output_is_a_readable_copy(triage_copy: Builder, tmp_path: Path) -> None:
    built = triage_copy(Scenario.REENTERED, seed=2)
    target = tmp_path / "copy.zip"
    zip_triage(built.out, target)
    with zipfile.ZipFile(target) as zf:
        assert zf.testzip() is None
        names = set(zf.namelist())
        files = {p.relative_to(built.out).as_posix() for p in built.out.rglob("*") if p.is_file()}
        assert files <= names
        assert "inetpub/wwwroot/aspnet_client/system_web/4_0_30319/" in names
        [shell] = built.truth.shell_paths
        assert b"<script" in zf.read(shell)


def test_refuses_a_non_empty_folder_and_bad_specs(tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(UsageError, match="not an empty folder"):
        build_triage(tmp_path / "used", TriageSpec(Scenario.CLEAN))
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError):
        build_triage(tmp_path / "file", TriageSpec(Scenario.CLEAN))
    with pytest.raises(UsageError, match="days"):
        build_triage(tmp_path / "new", TriageSpec(Scenario.CLEAN, days=0))
    with pytest.raises(UsageError, match="host"):
        build_triage(tmp_path / "new", TriageSpec(Scenario.CLEAN, host="EX,01"))
    with pytest.raises(UsageError, match="build"):
        build_triage(tmp_path / "new", TriageSpec(Scenario.CLEAN, build="15.1"))
    with pytest.raises(UsageError, match="scenario"):
        build_triage(tmp_path / "new", TriageSpec("pwned"))  # type: ignore[arg-type]
    assert not (tmp_path / "new").exists()
    with pytest.raises(UsageError, match="not a folder"):
        zip_triage(tmp_path / "file", tmp_path / "z.zip")


# --- benign look-alikes, in every scenario ---------------------------------------------------


@pytest.mark.parametrize("scenario", ALL)
def test_false_positive_traps_are_in_every_copy(triage_copy: Builder, scenario: Scenario) -> None:
    root = triage_copy(scenario).out
    for archive in catalog.BENIGN_ARCHIVES:
        path = root / archive[3:].replace("\\", "/")
        with zipfile.ZipFile(path) as zf:
            assert zf.testzip() is None
    oab = text_of(root, f"{V15}/Logging/OABGeneratorLog/*.LOG")
    legit = f"Download failed and temporary file '{catalog.EXCHANGE_ROOT}ClientAccess\\OAB\\"
    assert legit in oab
    ecp = text_of(root, f"{V15}/Logging/ECP/Server/*.LOG")
    assert "'S:CMD=Set-OwaVirtualDirectory.ExternalUrl=''https://" in ecp
    assert "'S:CMD=Set-OabVirtualDirectory.ExternalUrl=''https://" in ecp
    assert any(line[4] == "/owa/auth/logon.aspx" and line[3] == "GET"
               for line in iis_lines(root))
    pages = {p.name for p in (root / V15 / "FrontEnd/HttpProxy/owa/auth").glob("*.aspx")}
    assert set(catalog.PRODUCT_OWA_AUTH_PAGES) <= pages


def test_clean_copy_has_no_serverinfo_and_no_stray_aspx(triage_copy: Builder) -> None:
    root = triage_copy(Scenario.CLEAN).out
    for path in root.rglob("*"):
        if path.is_file():
            assert b"ServerInfo~" not in path.read_bytes(), path
    aspx = {p.relative_to(root).as_posix() for p in root.rglob("*.aspx")}
    assert aspx == {f"{V15}/FrontEnd/HttpProxy/owa/auth/{n}"
                    for n in catalog.PRODUCT_OWA_AUTH_PAGES}
    assert not list(root.rglob("lsass*.dmp"))
    truth = triage_copy(Scenario.CLEAN).truth
    assert truth.first_exploitation is None and not truth.shell_paths


# --- what each scenario adds -----------------------------------------------------------------


def serverinfo_rows(root: Path) -> list[dict[str, str]]:
    rows = []
    for proto in catalog.HTTPPROXY_PROTOCOLS:
        if (root / V15 / "Logging" / "HttpProxy" / proto).is_dir():
            rows += [r for r in httpproxy_rows(root, proto)
                     if r["AnchorMailbox"].startswith("ServerInfo~")]
    return rows


def test_probed_copy_holds_only_failed_attempts(triage_copy: Builder) -> None:
    built = triage_copy(Scenario.PROBED)
    rows = serverinfo_rows(built.out)
    nmap = [r for r in rows if r["AnchorMailbox"] == "ServerInfo~localhost/ecp/default.flt?"]
    assert nmap and all(r["UrlStem"] == "/owa/auth/x.js" and r["HttpStatus"] == "500"
                        and r["Protocol"] == "Owa" for r in nmap)
    ssrf = [r for r in rows if r not in nmap]
    assert ssrf
    for r in ssrf:
        assert r["AnchorMailbox"].endswith(":444/autodiscover/autodiscover.xml?#")
        assert r["HttpStatus"] in ("401", "500")
        assert r["RoutingHint"] == "X-BEResource-Cookie"
    # Outlook mobile asks autodiscover.json all day (Email=...&Protocol=...): not an attempt.
    proxyshell = [line for line in iis_lines(built.out)
                  if line[4] == "/autodiscover/autodiscover.json"
                  and not line[5].startswith("Email=")]
    assert proxyshell and all(line[11] == "401" and "/mapi/nspi" in line[5]
                              for line in proxyshell)
    assert built.truth.first_exploitation is None


def chain(root: Path) -> list[dict[str, str]]:
    return [r for r in serverinfo_rows(root) if r["HttpStatus"] in ("200", "241")]


def test_exploited_copy_has_the_full_ssrf_chain_but_no_backdoor(triage_copy: Builder) -> None:
    built = triage_copy(Scenario.EXPLOITED, seed=3)
    rows = chain(built.out)
    steps = [r["AnchorMailbox"].split(":444/", 1)[1] for r in rows]
    assert steps[0] == "autodiscover/autodiscover.xml?#"
    assert steps[1] == "mapi/emsmdb/?#"
    assert steps[2] == "ecp/proxyLogon.ecp?#" and rows[2]["HttpStatus"] == "241"
    assert "GetObject" in steps[3] and steps[3].endswith("schema=OABVirtualDirectory#")
    assert len(rows) == 4 and len({r["ClientIpAddress"] for r in rows}) == 1
    assert all(r["UrlStem"].startswith("/ecp/") and r["UrlStem"].endswith(".js") for r in rows)
    ip = rows[0]["ClientIpAddress"]
    posts = [line for line in iis_lines(built.out) if line[8] == ip]
    assert [line[11] for line in posts] == ["200", "200", "241", "200"]
    # The front end's cafeReqId is the HttpProxy RequestId of the same request.
    assert [line[5].split("cafeReqId=")[1].rstrip(";") for line in posts] == \
        [r["RequestId"] for r in rows]
    assert built.truth.first_exploitation is not None
    assert built.truth.first_exploitation.isoformat()[:19] == rows[0]["DateTime"][:19]
    ecp = text_of(built.out, f"{V15}/Logging/ECP/Server/*.LOG")
    assert "<script" not in ecp
    assert not built.truth.shell_paths
    assert not [p for p in built.out.rglob("*.aspx") if "aspnet_client" in p.as_posix()]


def test_backdoored_copy_has_the_oab_web_shell(triage_copy: Builder) -> None:
    built = triage_copy(Scenario.BACKDOORED, seed=4)
    steps = [r["AnchorMailbox"] for r in chain(built.out)]
    assert any("SetObject" in s and s.endswith("&schema=OABVirtualDirectory#") for s in steps)
    assert any(s.endswith("&schema=ResetOABVirtualDirectory#") for s in steps)
    ecp = text_of(built.out, f"{V15}/Logging/ECP/Server/*.LOG")
    assert ("'S:CMD=Set-OabVirtualDirectory.ExternalUrl=''http://" in ecp
            and '<script language=""JScript"" runat=""server"">function Page_Load(){eval(Request['
            '""' in ecp and '""],""unsafe"");}</script>\'\'.Identity=\'\'' in ecp)
    assert "'S:CMD=Set-OabVirtualDirectory.ExternalUrl=$null.Identity=''" in ecp
    [shell] = built.truth.shell_paths
    content = (built.out / shell).read_text()
    assert "OfflineAddressBooks" in content and "InternalAuthenticationMethods" in content
    assert "ExternalUrl" in content and "<script language=\"JScript\"" in content
    winpath = "C:\\" + shell.replace("/", "\\")
    oab = text_of(built.out, f"{V15}/Logging/OABGeneratorLog/*.LOG")
    assert f"Download failed and temporary file '{winpath}' needs to be removed" in oab
    url_name = shell.rsplit("/", 1)[1]
    assert not [line for line in iis_lines(built.out) if line[4].endswith("/" + url_name)]


def test_reentered_copy_shows_the_shell_used_and_post_exploitation(
        triage_copy: Builder) -> None:
    built = triage_copy(Scenario.REENTERED, seed=6)
    [shell] = built.truth.shell_paths
    url = "/" + shell.split("wwwroot/", 1)[-1] if "wwwroot/" in shell else \
        "/owa/auth/" + shell.split("owa/auth/", 1)[1]
    hits = [line for line in iis_lines(built.out) if line[4] == url]
    assert hits and all(line[3] == "POST" and line[11] == "200" for line in hits)
    assert {line[8] for line in hits} <= set(built.truth.attacker_ips)
    assert built.truth.first_exploitation is not None
    first_hit = f"{hits[0][0]}T{hits[0][1]}"
    assert first_hit > built.truth.first_exploitation.isoformat()[:19]
    dump = built.out / "Windows" / "Temp" / "lsass.dmp"
    assert dump.read_bytes()[:4] == b"MDMP"
    staged = list((built.out / "ProgramData").glob("it.zip")) + \
        list((built.out / "ProgramData").glob("pst/*.7z"))
    assert len(staged) == 1


def test_first_exploitation_falls_on_both_sides_of_the_first_wave(tmp_path: Path) -> None:
    import random

    from exhunt.lab.attacks import FIRST_WAVE_MS, pick_time
    from exhunt.lab.formats import DAY_MS, to_ms

    start = to_ms(TriageSpec(Scenario.EXPLOITED).start)
    times = [pick_time(random.Random(s), start, start + 14 * DAY_MS) for s in range(40)]
    assert any(t < FIRST_WAVE_MS for t in times) and any(t >= FIRST_WAVE_MS for t in times)
    assert all(start <= t < start + 14 * DAY_MS for t in times)


def test_management_events_carry_the_script_when_backdoored(triage_copy: Builder) -> None:
    import evtx

    built = triage_copy(Scenario.BACKDOORED, seed=4)
    path = built.out / "Windows/System32/winevt/Logs/MSExchange Management.evtx"
    records = [r["data"] for r in evtx.PyEvtxParser(str(path)).records_json()]
    assert any("Set-OabVirtualDirectory" in r and "<script" in r for r in records)
    clean = triage_copy(Scenario.CLEAN).out / "Windows/System32/winevt/Logs"
    records = [r["data"] for r in
               evtx.PyEvtxParser(str(clean / "MSExchange Management.evtx")).records_json()]
    assert any("Set-OabVirtualDirectory" in r and "https://" in r for r in records)
    assert not any("<script" in r for r in records)
    app = [r["data"] for r in
           evtx.PyEvtxParser(str(clean / "Application.evtx")).records_json()]
    assert app and not any("InvalidCastException" in r for r in app)
    security = [r["data"] for r in
                evtx.PyEvtxParser(str(clean / "Security.evtx")).records_json()]
    assert any("csc.exe" in r and "w3wp.exe" in r for r in security)
    assert not any("echo [S]" in r or "MiniDump" in r for r in security)


def test_reentered_security_log_shows_chopper_commands_and_the_dump(
        triage_copy: Builder) -> None:
    import evtx

    built = triage_copy(Scenario.REENTERED, seed=6)
    path = built.out / "Windows/System32/winevt/Logs/Security.evtx"
    records = [json.loads(r["data"])["Event"]["EventData"]
               for r in evtx.PyEvtxParser(str(path)).records_json()]
    chopper = [d for d in records if "&echo [S]&cd&echo [E]" in d["CommandLine"]]
    assert chopper and all(d["ParentProcessName"].endswith("\\w3wp.exe") for d in chopper)
    assert any("comsvcs.dll, MiniDump" in d["CommandLine"] and "lsass.dmp" in d["CommandLine"]
               for d in records)


def _share_of_lines(root: Path, literal: bytes) -> float:
    lines = [line for f in root.rglob("*.log") for line in f.read_bytes().lower().splitlines()]
    return sum(literal in line for line in lines) / len(lines)


def test_busy_traffic_holds_the_everyday_lines_that_carry_the_checks_literals(
        tmp_path: Path) -> None:
    shares = {}
    for mix in ("busy", "quiet"):
        build_triage(tmp_path / mix, TriageSpec(Scenario.CLEAN, size_bytes=1_500_000, seed=5,
                                                days=1, traffic=mix))
        shares[mix] = {lit: _share_of_lines(tmp_path / mix, lit)
                       for lit in (b".aspx", b"autodiscover.json", b"/powershell")}
    # A busy front end: logon and ECP pages, Outlook mobile's autodiscover, remote PowerShell.
    assert shares["busy"][b".aspx"] > 0.10 > 0.01 > shares["quiet"][b".aspx"]
    assert shares["busy"][b"autodiscover.json"] > 0.04 > shares["quiet"][b"autodiscover.json"]
    assert shares["busy"][b"/powershell"] > 0.04
    with pytest.raises(UsageError, match="traffic"):
        build_triage(tmp_path / "x", TriageSpec(Scenario.CLEAN, traffic="rush"))
