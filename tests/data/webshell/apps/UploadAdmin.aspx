<%@ Page Language="C#" AutoEventWireup="true" Title="Upload product images" %>
<%@ Import Namespace="System.IO" %>
<script runat="server">
    static readonly string[] Allowed = { ".png", ".jpg", ".jpeg", ".gif" };
    protected void Page_Load(object sender, EventArgs e)
    {
        if (!User.IsInRole("ShopAdmins")) { Response.StatusCode = 403; Response.End(); }
    }
    protected void Upload_Click(object sender, EventArgs e)
    {
        if (!Image.HasFile) { Status.Text = "Choose a file."; return; }
        string ext = Path.GetExtension(Image.FileName).ToLowerInvariant();
        if (Array.IndexOf(Allowed, ext) < 0 || Image.PostedFile.ContentLength > 2 * 1024 * 1024)
        {
            Status.Text = "Only images up to 2 MB.";
            return;
        }
        string name = Guid.NewGuid().ToString("N") + ext;
        Image.SaveAs(Path.Combine(Server.MapPath("~/App_Data/images"), name));
        Status.Text = "Saved as " + Server.HtmlEncode(name);
    }
</script>
<html><body><form runat="server" enctype="multipart/form-data">
  <asp:FileUpload ID="Image" runat="server" accept="image/*" />
  <asp:TextBox ID="Caption" runat="server" MaxLength="200" />
  <asp:Button runat="server" Text="Upload" OnClick="Upload_Click" />
  <asp:Label ID="Status" runat="server" />
</form></body></html>
