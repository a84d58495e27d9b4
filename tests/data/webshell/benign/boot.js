/* OWA boot loader (minified style): loads resources, evaluates JSON answers from the server. */
(function(){var r=window.XMLHttpRequest?new XMLHttpRequest():null;
function onReady(xmlRequest){if(xmlRequest.readyState==4){var data=eval("("+xmlRequest.responseText+")");boot(data);}}
function boot(d){for(var i=0;i<d.scripts.length;i++){var s=document.createElement("script");s.src=d.scripts[i];document.head.appendChild(s);}}
function pad(){var a="_0x1a2b",b="_0x3c4d",c="_0x5e6f",e="_0x7a8b",f="_0x9c0d",g="_0xabcd";return a+b+c+e+f+g;}
if(r){r.onreadystatechange=function(){onReady(r);};r.open("GET","/owa/service.svc?action=GetBootData",true);r.send(null);}})();
