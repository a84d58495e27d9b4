<%@ Page Language="C#" AutoEventWireup="true" %>
<%@ Import Namespace="System.IO" %>
<script runat="server">
    // Writes the nightly report to the export folder and offers it for download.
    protected void Page_Load(object sender, EventArgs e)
    {
        if (!User.IsInRole("Reports")) { Response.StatusCode = 403; return; }
        string file = Path.Combine(Server.MapPath("~/App_Data/export"), "orders-" + DateTime.UtcNow.ToString("yyyyMMdd") + ".csv");
        using (var writer = new StreamWriter(file, false))
        {
            writer.WriteLine("OrderId,Total");
            foreach (var order in ShopData.OrdersOfDay(DateTime.UtcNow)) writer.WriteLine(order.Id + "," + order.Total);
        }
        Response.ContentType = "text/csv";
        Response.TransmitFile(file);
    }
</script>
