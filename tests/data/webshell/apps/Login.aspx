<%@ Page Language="C#" AutoEventWireup="true" Title="Sign in" %>
<%@ Import Namespace="System.Data.SqlClient" %>
<%@ Import Namespace="System.Web.Security" %>
<script runat="server">
    protected void SignIn_Click(object sender, EventArgs e)
    {
        if (!Page.IsValid) return;
        string connection = System.Configuration.ConfigurationManager.ConnectionStrings["Shop"].ConnectionString;
        using (var conn = new SqlConnection(connection))
        using (var cmd = new SqlCommand("SELECT PasswordHash, Salt FROM Users WHERE UserName = @user", conn))
        {
            cmd.Parameters.AddWithValue("@user", UserName.Text.Trim());
            conn.Open();
            using (var reader = cmd.ExecuteReader())
            {
                if (reader.Read() && PasswordHasher.Verify(Password.Text, reader.GetString(0), reader.GetString(1)))
                {
                    FormsAuthentication.RedirectFromLoginPage(UserName.Text.Trim(), Remember.Checked);
                    return;
                }
            }
        }
        Failure.Text = "The user name or password is incorrect.";
    }
</script>
<html><head runat="server"><title>Sign in</title></head>
<body><form id="form1" runat="server">
  <asp:Label AssociatedControlID="UserName" runat="server" Text="User name" />
  <asp:TextBox ID="UserName" runat="server" MaxLength="64" />
  <asp:RequiredFieldValidator ControlToValidate="UserName" runat="server" ErrorMessage="Required" />
  <asp:TextBox ID="Password" runat="server" TextMode="Password" />
  <asp:CheckBox ID="Remember" runat="server" Text="Keep me signed in" />
  <asp:Button ID="SignIn" runat="server" Text="Sign in" OnClick="SignIn_Click" />
  <asp:Literal ID="Failure" runat="server" />
</form></body></html>
