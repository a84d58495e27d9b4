<%@ WebHandler Language="C#" Class="Download" %>
using System;
using System.IO;
using System.Web;
public class Download : IHttpHandler
{
    public void ProcessRequest(HttpContext context)
    {
        if (!context.Request.IsAuthenticated) { context.Response.StatusCode = 401; return; }
        string name = Path.GetFileName(context.Request.QueryString["file"] ?? "");
        if (Path.GetExtension(name) != ".pdf") { context.Response.StatusCode = 404; return; }
        string full = Path.Combine(context.Server.MapPath("~/App_Data/invoices"), name);
        if (!File.Exists(full)) { context.Response.StatusCode = 404; return; }
        context.Response.ContentType = "application/pdf";
        context.Response.AddHeader("Content-Disposition", "attachment; filename=" + name);
        context.Response.TransmitFile(full);
    }
    public bool IsReusable { get { return true; } }
}
