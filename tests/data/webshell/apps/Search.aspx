<%@ Page Language="VB" AutoEventWireup="false" CodeBehind="Search.aspx.vb" Inherits="Shop.Search" %>
<html><head><title>Search</title>
<script type="text/javascript">
  // Client-side suggestions: eval of the JSON answer (an old habit, on the browser only).
  function suggest(q) { var x = new XMLHttpRequest(); x.open("GET", "Suggest.ashx?q=" + encodeURIComponent(q));
    x.onload = function () { var items = eval("(" + x.responseText + ")"); show(items); }; x.send(); }
</script></head>
<body><form runat="server"><asp:TextBox ID="Query" runat="server" onkeyup="suggest(this.value)" />
<asp:Button ID="Go" runat="server" Text="Search" /><asp:Repeater ID="Results" runat="server" /></form></body></html>
