<%@ WebService Language="C#" Class="Catalog" %>
using System.Collections.Generic;
using System.Data.SqlClient;
using System.IO;
using System.Web.Hosting;
using System.Web.Services;
[WebService(Namespace = "http://shop.example/")]
public class Catalog : WebService
{
    // Product names matching a search term, and a product's picture from the shop's own folder.
    [WebMethod]
    public List<string> Find(string term)
    {
        var found = new List<string>();
        using (var conn = new SqlConnection(System.Configuration.ConfigurationManager.ConnectionStrings["Shop"].ConnectionString))
        using (var cmd = new SqlCommand("SELECT Name FROM Products WHERE Name LIKE @term", conn))
        {
            cmd.Parameters.AddWithValue("@term", "%" + term + "%");
            conn.Open();
            using (var reader = cmd.ExecuteReader())
                while (reader.Read()) found.Add(reader.GetString(0));
        }
        return found;
    }

    [WebMethod]
    public byte[] Picture(int productId)
    {
        string name = productId.ToString() + ".png";
        return File.ReadAllBytes(Path.Combine(HostingEnvironment.MapPath("~/App_Data/pictures"), name));
    }
}
