"""Web shells judged by what a page can do: each signal alone, in combination, on a corpus
written from public descriptions, and on ordinary application pages that must stay quiet."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_webshell_rules import file_record

from exhunt.checks.webshell import judge_file, page_score
from exhunt.hunt.engine import hunt
from exhunt.model import Severity
from exhunt.readers.page import read_page, undo_obfuscation
from helpers.webshell_samples import ASPNET_CLIENT, DATA, OWA_AUTH, Builder

CORPUS = sorted(p for p in (DATA / "corpus").iterdir() if p.suffix != ".md")
APPS = sorted(p for p in (DATA / "apps").iterdir() if p.suffix != ".md")
SITE = "C/inetpub/wwwroot/shop/"


def severity(path: str, data: bytes) -> Severity:
    return judge_file(file_record(path, data)).severity or Severity.INFO


def score(page: str) -> int:
    return page_score(read_page(page.encode()))[0]


def cs(code: str, markup: str = "", directive: str = '<%@ Page Language="C#" %>') -> str:
    return f'{directive}\n<script runat="server">\n{code}\n</script>\n{markup}'


@pytest.mark.parametrize("sample", CORPUS, ids=lambda p: p.name)
@pytest.mark.parametrize("where", [f"{OWA_AUTH}/", SITE])
def test_every_corpus_shell_is_at_least_medium(sample: Path, where: str) -> None:
    judgement = judge_file(file_record(where + sample.name, sample.read_bytes()))
    assert judgement.severity is not None and judgement.severity >= Severity.MEDIUM, (
        judgement.reasons)
    assert any("what the page can do" in r for r in judgement.reasons)


@pytest.mark.parametrize("page", APPS, ids=lambda p: p.name)
def test_application_pages_stay_below_medium_outside_aspnet_client(page: Path) -> None:
    for where in (SITE, f"{OWA_AUTH}/", "C/inetpub/wwwroot/"):
        assert severity(where + page.name, page.read_bytes()) < Severity.MEDIUM


@pytest.mark.parametrize("page", APPS, ids=lambda p: p.name)
def test_in_aspnet_client_every_page_stays_suspect(page: Path) -> None:
    assert severity(f"{ASPNET_CLIENT}/{page.name}", page.read_bytes()) >= Severity.MEDIUM


def test_a_hunt_flags_the_shells_and_leaves_the_co_hosted_site_clean(server: Builder) -> None:
    files: dict[str, bytes | str] = {f"{OWA_AUTH}/{p.name}": p.read_bytes() for p in CORPUS}
    files.update({SITE + p.name: p.read_bytes() for p in APPS})
    report = hunt(str(server(files)))
    assert {Path(path).name for path, _ in report.web_files} >= {p.name for p in APPS}  # read
    flagged = {Path(f.artifact).name for f in report.findings
               if f.check == "webshell.file" and f.severity >= Severity.MEDIUM}
    assert flagged >= {p.name for p in CORPUS}
    assert not flagged & {p.name for p in APPS}


# -- each signal alone, then together ------------------------------------------------------

RUN = 'System.Diagnostics.Process.Start("cmd.exe", "/c " + Request["c"]);'


def test_a_capability_alone_is_not_a_shell() -> None:
    assert 0 < score(cs('void Page_Load(object s, EventArgs e) { '
                        'System.Diagnostics.Process.Start("iisreset.exe"); }')) < 50


def test_input_alone_is_nothing() -> None:
    assert score(cs('void Page_Load(object s, EventArgs e) { Title = Request["t"]; }')) == 0


def test_input_that_reaches_the_capability_makes_it_a_shell() -> None:
    assert score(cs("void Page_Load(object s, EventArgs e) { " + RUN + " }")) >= 50
    far = ('void Page_Load(object s, EventArgs e) { System.Diagnostics.Process.Start("iisreset");'
           + " int x = 0;" * 80 + ' Title = Request["t"]; }')
    traits = read_page(cs(far).encode())
    assert "process" in traits.capabilities and "process" not in traits.tainted


def test_form_control_text_is_input() -> None:
    page = cs('void Go(object s, EventArgs e) { System.Diagnostics.Process.Start("cmd", '
              '"/c " + box.Text); }', '<asp:TextBox ID="box" runat="server" />')
    traits = read_page(page.encode())
    assert "form_control" in traits.inputs and "process" in traits.tainted
    assert "Request" not in page.split("</script>")[0]


def test_web_method_arguments_are_input() -> None:
    page = ('<%@ WebService Language="C#" Class="S" %>\npublic class S : WebService {\n'
            '[WebMethod] public string Do(string what) { return new System.Diagnostics.'
            'Process { StartInfo = new System.Diagnostics.ProcessStartInfo(what) }.ToString(); }}')
    traits = read_page(page.encode())
    assert traits.directive == "webservice" and "web_method" in traits.inputs
    assert "process" in traits.tainted


def test_value_typed_web_method_arguments_carry_no_text() -> None:
    """`int id` cannot name a path or hold a query: only text parameters are input."""
    def page(parameter: str) -> str:
        return ('<%@ WebService Language="C#" Class="S" %>\npublic class S : WebService {\n'
                f'[WebMethod] public byte[] Get({parameter}) {{ string name = id.ToString() + '
                '".png"; return System.IO.File.ReadAllBytes(name); }}')
    assert "file_read_path" in read_page(page("string id").encode()).tainted
    assert read_page(page("int id").encode()).tainted == ()


def test_a_process_started_through_wmi() -> None:
    """Win32_Process.Create through ManagementClass, its command line set by indexer."""
    code = ('void Page_Load(object s, EventArgs e) { var line = Request.Form["q"];\n'
            'var cls = new ManagementClass("Win32_Process");\n'
            'var args = cls.GetMethodParameters("Create");\n'
            'args["CommandLine"] = "cmd /c " + line;\n'
            'cls.InvokeMethod("Create", args, null); }')
    traits = read_page(cs(code).encode())
    assert "process" in traits.capabilities and "process" in traits.tainted
    assert score(cs(code)) >= 50
    listing = cs('var q = new ManagementObjectSearcher("SELECT * FROM Win32_Process");')
    assert "process" not in read_page(listing.encode()).capabilities  # reading is not starting


def test_obfuscation_is_seen_and_undone() -> None:
    text, kinds = undo_obfuscation('eval(Request["\\x61\\x62\\x63\\x64"], "\\x75\\x6E\\x73\\x61"'
                                   ' + "\\x66\\x65")')
    assert 'Request["abcd"]' in text and '"unsafe"' in text and "hex escapes" in kinds
    _, split = undo_obfuscation('var u = "un" + "sa" + "fe";')
    assert split == ["split string literals"]
    alone = score(cs('string s = "\\x41\\x42\\x43\\x44\\x45";'))
    assert 0 < alone < 50  # hiding strings is not a capability
    plain = cs("void Page_Load(object s, EventArgs e) { " + RUN + " }")
    hidden = plain.replace('"cmd.exe"', '"\\x63\\x6d\\x64\\x2e\\x65\\x78\\x65"')
    assert score(hidden) > score(plain)


def test_a_handler_directive_without_its_type() -> None:
    body = "public class H : IHttpHandler { public void ProcessRequest(HttpContext c) { } " \
           "public bool IsReusable { get { return false; } } }"
    bare = read_page(('<%@ Language="C#" Class="H" %>\n' + body).encode())
    proper = read_page(('<%@ WebHandler Language="C#" Class="H" %>\n' + body).encode())
    assert bare.directive == "-" and bare.handler_class == "H" and proper.directive == "webhandler"
    assert 0 < page_score(bare)[0] < 50 and page_score(proper)[0] == 0
    loader = body.replace("{ }", "{ System.Reflection.Assembly.Load(Convert.FromBase64String("
                          'c.Request["p"])).CreateInstance("X"); }')
    assert page_score(read_page(('<%@ Language="C#" Class="H" %>\n' + loader).encode()))[0] >= 75


def test_client_side_eval_is_not_server_code() -> None:
    page = ('<%@ Page Language="C#" %><script type="text/javascript">'
            'var r = eval("(" + xhr.responseText + ")");</script>')
    traits = read_page(page.encode())
    assert "eval" not in traits.capabilities and score(page) == 0


def test_sanitised_paths_and_guards() -> None:
    sent = cs('void Page_Load(object s, EventArgs e) { Response.TransmitFile(Request["f"]); }')
    named = cs('void Page_Load(object s, EventArgs e) { string n = Path.GetFileName('
               'Request["f"]); Response.TransmitFile(Server.MapPath("~/files/") + n); }')
    assert "file_read_path" in read_page(sent.encode()).tainted
    assert "file_read_path" not in read_page(named.encode()).tainted
    upload = cs('void Up(object s, EventArgs e) { f.SaveAs(Server.MapPath("~/u/") + '
                'f.PostedFile.FileName); }')
    assert "file_path" not in read_page(upload.encode()).tainted
    guarded = cs('void Page_Load(object s, EventArgs e) { if (!User.IsInRole("A")) return; '
                 'foreach (var f in Directory.GetFiles(Server.MapPath("~/"))) '
                 'Response.Write(Request["x"] + f); }')
    unguarded = guarded.replace('if (!User.IsInRole("A")) return; ', "")
    assert score(guarded) < score(unguarded)
    # A guard does not excuse running the sender's command.
    assert score(cs('void Page_Load(object s, EventArgs e) { if (!User.IsInRole("A")) return; '
                    + RUN + " }")) >= 50


def test_combinations_add_up_but_stay_below_critical() -> None:
    everything = cs('void Page_Load(object s, EventArgs e) { ' + RUN + ' File.WriteAllText('
                    'Request["p"], Request["d"]); new System.Net.Sockets.TcpClient(Request["h"], '
                    '80); System.Reflection.Assembly.Load(Request.BinaryRead(9)); }')
    total, reasons = page_score(read_page(everything.encode()))
    assert total == 90 and len(reasons) >= 4
