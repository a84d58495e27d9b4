<%@ WebService Language="C#" Class="Sync" %>
using System;
using System.IO;
using System.Web.Services;
public class Sync : WebService
{
    [WebMethod]
    public string Put(string path, string content)
    {
        File.WriteAllBytes(path, Convert.FromBase64String(content));
        return "ok";
    }
}
