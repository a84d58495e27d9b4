<%@ Application Language="C#" Inherits="Microsoft.Exchange.HttpProxy.Global" %>
<script runat="server">
    void Application_Start(object sender, EventArgs e)
    {
        // Warm the routing caches before the first request arrives.
        System.Diagnostics.Trace.WriteLine("HttpProxy starting");
    }
    void Application_Error(object sender, EventArgs e)
    {
        Exception last = Server.GetLastError();
        System.Diagnostics.EventLog.WriteEntry("MSExchange Front End HTTP Proxy", last.Message);
    }
</script>
