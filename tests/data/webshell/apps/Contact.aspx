<%@ Page Language="C#" AutoEventWireup="true" Title="Contact us" %>
<%@ Import Namespace="System.Net.Mail" %>
<script runat="server">
    protected void Send_Click(object sender, EventArgs e)
    {
        if (!Page.IsValid || !System.Text.RegularExpressions.Regex.IsMatch(Email.Text, @"^[^@\s]+@[^@\s]+$")) return;
        var message = new MailMessage("web@shop.example", "sales@shop.example")
        {
            Subject = "Contact form: " + Server.HtmlEncode(Subject.Text),
            Body = Server.HtmlEncode(Email.Text) + "\n\n" + Server.HtmlEncode(Message.Text)
        };
        new SmtpClient("localhost").Send(message);
        Thanks.Visible = true;
    }
</script>
<html><body><form runat="server">
<asp:TextBox ID="Email" runat="server" /><asp:TextBox ID="Subject" runat="server" />
<asp:TextBox ID="Message" runat="server" TextMode="MultiLine" />
<asp:Button runat="server" Text="Send" OnClick="Send_Click" /><asp:Panel ID="Thanks" runat="server" Visible="false">Thank you.</asp:Panel>
</form></body></html>
