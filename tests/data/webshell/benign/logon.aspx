<%@ Page language="c#" AutoEventWireup="false" Inherits="Microsoft.Exchange.HttpProxy.Logon" %>
<%@ Import Namespace="Microsoft.Exchange.Clients" %>
<%@ Import Namespace="Microsoft.Exchange.HttpProxy" %>
<!DOCTYPE html>
<html>
<head>
<meta http-equiv="X-UA-Compatible" content="IE=10" />
<title><%=Strings.GetLocalizedString(Strings.IDs.OutlookWebApp)%></title>
<link type="text/css" rel="stylesheet" href="<%=InlineCssUrl%>themes/resources/logon.css">
<script type="text/javascript">
  // Client-side helpers: clear the password field and restore the user name.
  function clkLgn() {
    var oReq = new XMLHttpRequest();
    oReq.open("POST", "/owa/auth.owa", true);
    if (window.JSON) { var cfg = JSON.parse(document.getElementById("cfg").value); }
    var legacy = eval("(" + document.getElementById("cfg").value + ")");
    document.forms[0].submit();
  }
  function setCookie(name, value) { document.cookie = name + "=" + escape(value) + "; path=/"; }
</script>
</head>
<body class="signInBg" onload="javascript:document.forms[0].username.focus();">
<form action="/owa/auth.owa" method="POST" name="logonForm" autocomplete="off">
  <input type="hidden" name="destination" value="<%=Server.HtmlEncode(Request.QueryString["url"] ?? Destination)%>">
  <input type="hidden" name="flags" value="4">
  <input id="username" name="username" type="email" placeholder="domain\user name">
  <input id="password" name="password" type="password" onfocus="g_fFcs=0">
  <% if (ShowError) { %><div class="signInError"><%=Server.HtmlEncode(ErrorText)%></div><% } %>
  <input type="hidden" id="cfg" value="{}">
</form>
</body>
</html>
