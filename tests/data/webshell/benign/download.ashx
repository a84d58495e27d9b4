<%@ WebHandler Language="C#" Class="AttachmentDownload" %>
using System;
using System.IO;
using System.Web;

public class AttachmentDownload : IHttpHandler
{
    public bool IsReusable { get { return true; } }

    public void ProcessRequest(HttpContext context)
    {
        string id = context.Request.QueryString["id"];
        if (string.IsNullOrEmpty(id) || id.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0)
        {
            context.Response.StatusCode = 400;
            return;
        }
        string folder = context.Server.MapPath("~/App_Data/exports");
        string path = Path.Combine(folder, id + ".pdf");
        context.Response.ContentType = "application/pdf";
        context.Response.BinaryWrite(File.ReadAllBytes(path));
    }
}
