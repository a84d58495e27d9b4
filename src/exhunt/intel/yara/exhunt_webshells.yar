/*
  exhunt's own web-shell rules. Written for exhunt from public descriptions of how these shells
  behave (Microsoft's and CISA's March 2021 write-ups of China Chopper forms and ProxyShell
  shells; Volexity's published one-line descriptions of SIMPLESEESHARP, SPORTSBALL and its reGeorg variant).
  meta: kind = "family" (a known shell family or artefact; its score stands on its own) or
        "heuristic" (a trait of unknown shells; weights add up, capped);
        score = weight 0-100; family = what a responder calls it; source = where the fact is from.
*/

// Server-side code markers: a page directive, a server <script>, or an inline code block.
// Used by the heuristics so static JavaScript and CSS never count.

rule exhunt_chopper_jscript_eval
{
    meta:
        kind = "family"
        family = "China Chopper"
        score = 100
        description = "Server-side script evaluates request data directly (China Chopper one-liner)"
        source = "CISA AR21-084A (China Chopper); HelseCERT github.com/helsecert/2021-march-exchange (ECP log lines); SigmaHQ msexchange-management rules"
    strings:
        $eval_request = /(eval|execute)\s*\(?\s*Request\s*(\.\s*(Item|Form|QueryString|Params)\s*)?[\[\(]/ nocase
        $eval_decoded = /eval\s*\(\s*(System\s*\.\s*)?Text\s*\.\s*Encoding\s*\.\s*\w+\s*\.\s*GetString\s*\(\s*(System\s*\.\s*)?Convert\s*\.\s*FromBase64String\s*\(\s*Request/ nocase
        $server_script = /<\s*script[^>]{0,120}runat\s*=\s*["']?server/ nocase
        $page_directive = /<%@\s*Page[^>]{0,120}Language\s*=\s*["']?(jscript|javascript|js|vb|vbscript)/ nocase
        $inline = "<%" ascii
    condition:
        ($eval_request or $eval_decoded) and ($server_script or $page_directive or $inline)
}

rule exhunt_chopper_unsafe_flag
{
    meta:
        kind = "family"
        family = "China Chopper"
        score = 80
        description = "Server-side JScript passes the 'unsafe' flag to eval (China Chopper, also obfuscated forms)"
        source = "Neo23x0/signature-base yara/apt_hafnium.yar (obfuscated China Chopper _0x variant with 'unsafe')"
    strings:
        $server_script = /<\s*script[^>]{0,120}runat\s*=\s*["']?server/ nocase
        $page_directive = /<%@\s*Page[^>]{0,120}Language\s*=\s*["']?(jscript|javascript)/ nocase
        $unsafe_plain = /["']unsafe["']/ nocase
        $unsafe_split = /["']un["']\s*\+\s*["']safe["']/ nocase
        $unsafe_hex = "\\x75\\x6e\\x73\\x61\\x66\\x65" nocase
        $unsafe_uni = "\\u0075\\u006e\\u0073\\u0061\\u0066\\u0065" nocase
        $eval = "eval" nocase
    condition:
        ($server_script or $page_directive) and $eval
        and ($unsafe_plain or $unsafe_split or $unsafe_hex or $unsafe_uni)
}

rule exhunt_oab_vdir_dump_with_script
{
    meta:
        kind = "family"
        family = "OAB virtual-directory dump (ProxyLogon CVE-2021-27065)"
        score = 100
        description = "A virtual directory's settings written to a file, with script in a URL property"
        source = "CISA AR21-084A; Microsoft HAFNIUM blog 2021-03-02 (OAB ExternalUrl carrying the shell + vdir properties)"
    strings:
        $url_script = /(External|Internal)Url\s*:\s*[^\r\n]{0,160}<\s*script/ nocase
        $url_tell = /(External|Internal)Url\s*:\s*https?:\/\/[^\/\s]{1,3}\/#?\s*</ nocase
        $p1 = "OfflineAddressBooks" nocase
        $p2 = "InternalAuthenticationMethods" nocase
        $p3 = "ExtendedProtectionTokenChecking" nocase
        $p4 = "MetabasePath" nocase
        $p5 = "PollInterval" nocase
        $p6 = "msExchVirtualDirectory" nocase
        $p7 = "AdminDisplayVersion" nocase
    condition:
        filesize < 512KB and ($url_script or $url_tell) and 2 of ($p*)
}

rule exhunt_proxyshell_pst_headed_page
{
    meta:
        kind = "family"
        family = "ProxyShell mailbox-export shell (PST header)"
        score = 100
        description = "A PST file (!BDN) holding a server-side page: written by New-MailboxExportRequest"
        source = "Neo23x0/signature-base yara/expl_proxyshell.yar (PST !BDN header + Page Language); Orange Tsai, ProxyShell, Black Hat USA 2021"
    strings:
        $page = /<%@\s*Page\s/ nocase
        $language = /Page\s+Language\s*=/ nocase
        $server_script = /<\s*script[^>]{0,120}runat\s*=\s*["']?server/ nocase
    condition:
        uint32(0) == 0x4E444221 and any of them
}

rule exhunt_proxyshell_der_headed_page
{
    meta:
        kind = "family"
        family = "ProxyShell certificate-request shell (DER header)"
        score = 100
        description = "A DER-encoded certificate request holding a server-side page: written by New-ExchangeCertificate"
        source = "Neo23x0/signature-base yara/expl_proxyshell.yar (DER header + Page Language); Orange Tsai, ProxyShell, Black Hat USA 2021"
    strings:
        $language = /Page\s+Language\s*=/ nocase
        $server_script = /<\s*script[^>]{0,120}runat\s*=\s*["']?server/ nocase
    condition:
        uint8(0) == 0x30 and (uint8(1) == 0x81 or uint8(1) == 0x82 or uint8(1) == 0x83)
        and any of them
}

rule exhunt_dropper_binary_headed_page
{
    meta:
        kind = "family"
        family = "Page behind binary junk (dropper artefact)"
        score = 60
        description = "A server-side page directive behind non-text first bytes (not a byte-order mark)"
        source = "Neo23x0/signature-base yara/expl_proxyshell.yar SUSP_ASPX_PossibleDropperArtifact_Aug21 (non-ASCII first bytes + Page Language)"
    strings:
        $language = /Page\s+Language\s*=/ nocase
        $server_script = /<\s*script[^>]{0,120}runat\s*=\s*["']?server/ nocase
    condition:
        filesize < 20MB and uint8(0) >= 0x80
        and uint16(0) != 0xFEFF and uint16(0) != 0xFFFE and uint16(0) != 0xBBEF
        and uint32(0) != 0x4E444221
        and any of them
}

rule exhunt_simpleseesharp_uploader
{
    meta:
        kind = "family"
        family = "SIMPLESEESHARP"
        score = 90
        description = "Tiny C# page that saves the first uploaded file to a path it is given"
        source = "Volexity description: a simple ASPX shell that lets an attacker write further files to disk"
    strings:
        $csharp = /<%@\s*Page\s+Language\s*=\s*["']?C#/ nocase
        $upload = /Request\s*\.\s*Files\s*\[/
        $save = /\.SaveAs\s*\(\s*(System\s*\.\s*IO\s*\.\s*)?Path\s*\.\s*Combine\s*\(/
    condition:
        filesize < 4KB and all of them
}

rule exhunt_sportsball
{
    meta:
        kind = "family"
        family = "SPORTSBALL"
        score = 90
        description = "Form-driven C# shell: password kept in a cookie from the form, commands fed to a process's standard input, file upload"
        source = "Volexity description: SPORTSBALL lets attackers upload files or execute commands"
    strings:
        $cookie_from_form = /new\s+HttpCookie\s*\([^)]{0,80}Request\s*\.\s*Form/
        $stdin_from_form = /StandardInput\s*\.\s*Write(Line)?\s*\([^)]{0,80}Request\s*\.\s*Form/
        $process = /(System\s*\.\s*Diagnostics\s*\.\s*)?Process\s+\w+\s*=\s*new\s+(System\s*\.\s*Diagnostics\s*\.\s*)?Process\s*\(/
        $upload_form = /type\s*=\s*["']?file/ nocase
        $posted = /(PostedFile|Request\s*\.\s*Files)/
    condition:
        $stdin_from_form and $process and ($cookie_from_form or $upload_form or $posted)
}

rule exhunt_regeorg_tunnel
{
    meta:
        kind = "family"
        family = "reGeorg"
        score = 90
        description = "SOCKS tunnel page: connect/forward/read commands in a request header, sockets kept in the session"
        source = "reGeorg's documented protocol (X-CMD CONNECT/DISCONNECT/READ/FORWARD); Volexity: reGeorg variant seen on Exchange"
    strings:
        $h_cmd = "X-CMD" nocase
        $h_status = "X-STATUS" nocase
        $h_target = "X-TARGET" nocase
        $h_port = "X-PORT" nocase
        $h_error = "X-ERROR" nocase
        $c_connect = "\"CONNECT\"" nocase
        $c_disconnect = "\"DISCONNECT\"" nocase
        $c_read = "\"READ\"" nocase
        $c_forward = "\"FORWARD\"" nocase
        $socket = /new\s+Socket\s*\(/
        $session = /Session\s*\[/
    condition:
        $socket and $session and 2 of ($h_*) and 2 of ($c_*)
}

/* Unknown shells are judged by what the page can do (exhunt.readers.page, weights in
   intel/data/webshell.toml [page]), not by rules here: these rules name known families. */

rule exhunt_compiled_jscript_eval_page
{
    meta:
        kind = "family"
        family = "China Chopper (compiled page in Temporary ASP.NET Files)"
        score = 80
        description = "A compiled page assembly that calls the JScript evaluator with the 'unsafe' flag"
        source = "Neo23x0/signature-base yara/apt_hafnium.yar WEBSHELL_Compiled_Webshell_Mar2021_1 (App_Web_*.dll); ECMA-335 metadata: method names UTF-8, user strings UTF-16"
    strings:
        $evaluate = "JScriptEvaluate" ascii
        $unsafe = "unsafe" wide
        $request = "get_Request" ascii
    condition:
        uint16(0) == 0x5A4D and filesize < 5MB and all of them
}

rule exhunt_iis_vdir_into_writable_folder
{
    meta:
        kind = "family"
        family = "IIS virtual directory into a writable folder (ProxyShell)"
        score = 70
        description = "IIS configuration maps a web path onto ProgramData, Users or Temp, where intruders kept shells"
        source = "Neo23x0/signature-base yara/expl_proxyshell.yar APT_IIS_Config_ProxyShell_Artifacts (IIS vdirs pointing at C:\\ProgramData\\COM and similar)"
    strings:
        $vdir = /<(virtualDirectory|application)\s[^>]{0,300}physicalPath\s*=\s*"[A-Za-z]:\\(ProgramData|Users\\Public|Users\\All Users|Windows\\Temp)\\/ nocase
    condition:
        filesize < 20MB and $vdir
}
