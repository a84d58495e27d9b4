<%@ Page Language="C#" %>
<%@ Import Namespace="System.Management" %>
<script runat="server">
// The shop's health page: disks and the shop's own worker processes, read through WMI.
protected void Page_Load(object sender, EventArgs e)
{
    if (!User.IsInRole("ShopAdmins")) { Response.StatusCode = 403; return; }
    var disks = new ManagementObjectSearcher("SELECT DeviceID, FreeSpace FROM Win32_LogicalDisk");
    foreach (ManagementObject d in disks.Get())
        Status.Text += Server.HtmlEncode(d["DeviceID"] + " " + d["FreeSpace"]) + "<br/>";
    var workers = new ManagementObjectSearcher("SELECT ProcessId, WorkingSetSize FROM Win32_Process WHERE Name = 'w3wp.exe'");
    foreach (ManagementObject w in workers.Get())
        Status.Text += Server.HtmlEncode("w3wp " + w["ProcessId"] + " " + w["WorkingSetSize"]) + "<br/>";
}
</script>
<html><body><asp:Literal ID="Status" runat="server" /></body></html>
