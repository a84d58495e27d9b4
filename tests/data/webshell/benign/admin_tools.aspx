<%@ Page Language="C#" AutoEventWireup="true" %>
<%@ Import Namespace="System.Diagnostics" %>
<script runat="server">
    // Shows the server's uptime to administrators (a page a help desk might leave behind).
    protected void Page_Load(object sender, EventArgs e)
    {
        if (!User.IsInRole("Administrators")) { Response.StatusCode = 403; return; }
        TimeSpan up = TimeSpan.FromMilliseconds(Environment.TickCount);
        Uptime.Text = Server.HtmlEncode(up.ToString());
        string culture = Request.UserLanguages != null ? Request.UserLanguages[0] : "en-US";
        Culture.Text = Server.HtmlEncode(culture);
    }
</script>
<html><body><asp:Label ID="Uptime" runat="server" /> <asp:Label ID="Culture" runat="server" /></body></html>
