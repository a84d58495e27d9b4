<%@ WebService Language="C#" Class="OrderService" %>
using System.Collections.Generic;
using System.Data.SqlClient;
using System.Web.Services;
[WebService(Namespace = "http://shop.example/")]
public class OrderService : WebService
{
    [WebMethod]
    public List<string> OrdersOf(int customerId)
    {
        var found = new List<string>();
        using (var conn = new SqlConnection(System.Configuration.ConfigurationManager.ConnectionStrings["Shop"].ConnectionString))
        using (var cmd = new SqlCommand("SELECT OrderId FROM Orders WHERE CustomerId = @customerId", conn))
        {
            cmd.Parameters.AddWithValue("@customerId", customerId);
            conn.Open();
            using (var reader = cmd.ExecuteReader())
                while (reader.Read()) found.Add(reader.GetInt32(0).ToString());
        }
        return found;
    }
}
