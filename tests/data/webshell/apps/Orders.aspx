<%@ Page Language="C#" MasterPageFile="~/Site.master" AutoEventWireup="true" Title="Orders" %>
<%@ Import Namespace="System.Data" %>
<%@ Import Namespace="System.Data.SqlClient" %>
<script runat="server">
    protected void Page_Load(object sender, EventArgs e)
    {
        if (!User.Identity.IsAuthenticated) { Response.Redirect("~/Login.aspx"); return; }
        int page;
        if (!int.TryParse(Request.QueryString["page"], out page) || page < 1) page = 1;
        string status = Filter.SelectedValue == "open" ? "open" : "all";
        using (var conn = new SqlConnection(System.Configuration.ConfigurationManager.ConnectionStrings["Shop"].ConnectionString))
        {
            var cmd = new SqlCommand("SELECT OrderId, Customer, Total, Status FROM Orders WHERE (@status = 'all' OR Status = @status) ORDER BY OrderId DESC OFFSET @skip ROWS FETCH NEXT 50 ROWS ONLY", conn);
            cmd.Parameters.Add("@status", SqlDbType.NVarChar, 10).Value = status;
            cmd.Parameters.Add("@skip", SqlDbType.Int).Value = (page - 1) * 50;
            var table = new DataTable();
            new SqlDataAdapter(cmd).Fill(table);
            OrdersGrid.DataSource = table;
            OrdersGrid.DataBind();
        }
    }
</script>
<asp:Content ContentPlaceHolderID="Main" runat="server">
  <asp:DropDownList ID="Filter" runat="server" AutoPostBack="true">
    <asp:ListItem Value="all">All</asp:ListItem><asp:ListItem Value="open">Open</asp:ListItem>
  </asp:DropDownList>
  <asp:GridView ID="OrdersGrid" runat="server" AutoGenerateColumns="true" CssClass="grid" />
</asp:Content>
