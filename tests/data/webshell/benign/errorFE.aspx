<%@ Page Language="C#" AutoEventWireup="true" Inherits="Microsoft.Exchange.HttpProxy.ErrorFE" %>
<%@ Import Namespace="System.Web" %>
<!DOCTYPE html>
<html>
<head><title>Error</title>
<style>body{font-family:"Segoe UI",Tahoma;}</style>
</head>
<body>
<div id="errMsg">Something went wrong.</div>
<div id="details">
  <%
    string requestId = Request.Headers["X-RequestId"];
    string server = Request.ServerVariables["SERVER_NAME"];
    Response.Write(HttpUtility.HtmlEncode("Request " + requestId + " on " + server));
  %>
</div>
<script type="text/javascript">
  function toggle() { var d = document.getElementById("details"); d.style.display = d.style.display == "none" ? "" : "none"; }
</script>
</body>
</html>
