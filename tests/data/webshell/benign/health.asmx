<%@ WebService Language="C#" Class="HealthService" %>
using System.Web.Services;

[WebService(Namespace = "http://schemas.microsoft.com/exchange/health")]
public class HealthService : WebService
{
    [WebMethod]
    public string Ping(string from)
    {
        return "pong to " + Context.Request.UserHostAddress + " from " + Server.HtmlEncode(from);
    }
}
