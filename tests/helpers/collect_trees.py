"""Builders for small server trees: one layout of a server's drive, placed many ways."""

from __future__ import annotations

import gzip
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from exhunt.collect import ArtifactKind

EXCH = "Program Files/Microsoft/Exchange Server/V15"

WEVTUTIL_XML = (
    b'<?xml version="1.0" encoding="utf-8"?>\r\n<Events>'
    b'<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>'
    b"<Provider Name='MSExchange Unified Messaging'/><EventID>5000</EventID></System></Event>"
    b"</Events>"
)
GET_WINEVENT_JSON = (
    '[\r\n    {\r\n        "Message":  "Cmdlet succeeded.",\r\n        "Id":  1,\r\n'
    '        "ProviderName":  "MSExchange CmdletLogs",\r\n'
    '        "LogName":  "MSExchange Management",\r\n'
    '        "TimeCreated":  "\\/Date(1614556800000)\\/"\r\n    }\r\n]'
)


@dataclass(frozen=True)
class Expect:
    """One file of the drive, and what the collection should call it (None: not listed)."""

    path: str
    kind: ArtifactKind | None
    protocol: str | None = None
    exchange: bool = False


def drive_files() -> list[tuple[Expect, bytes]]:
    """The files of one small compromised server, relative to its drive root."""
    log = b"#Software: Microsoft Exchange Server\r\n#Fields: DateTime,RequestId\r\n"
    gz = gzip.compress(log)
    k = ArtifactKind
    return [
        (Expect(f"{EXCH}/Logging/HttpProxy/Owa/HttpProxy_2021030100-1.LOG", k.HTTPPROXY_LOG,
                "Owa", True), log),
        (Expect(f"{EXCH}/Logging/HttpProxy/Ecp/HttpProxy_2021030101-1.log.gz", k.HTTPPROXY_LOG,
                "Ecp", True), gz),
        (Expect(f"{EXCH}/Logging/HttpProxy/Autodiscover/notes.txt", None), b"x"),
        (Expect(f"{EXCH}/Logging/ECP/Server/ECPServer_2021030100-1.LOG", k.ECP_SERVER_LOG,
                None, True), log),
        (Expect(f"{EXCH}/Logging/OABGeneratorLog/OABGeneratorLog_2021030100-1.LOG",
                k.OAB_GENERATOR_LOG, None, True), log),
        (Expect(f"{EXCH}/Logging/CmdletInfra/Powershell-Proxy/Http/Rps_Http_2022093000-1.LOG",
                k.RPS_HTTP_LOG, None, True), log),
        (Expect(f"{EXCH}/Logging/CmdletInfra/Powershell-Proxy/Cmdlet/Rps_Cmdlet_2022093000-1.LOG",
                k.RPS_CMDLET_LOG, None, True), log),
        (Expect(f"{EXCH}/Logging/Diagnostics/DailyPerformanceLogs/x.log", None), log),
        (Expect(f"{EXCH}/FrontEnd/HttpProxy/owa/auth/shell.aspx", k.WEB_FILE, None, True),
         b"<%@ Page %>"),
        (Expect(f"{EXCH}/ClientAccess/ecp/auth/TimeoutLogout.aspx", k.WEB_FILE, None, True),
         b"<%@ Page %>"),
        (Expect(f"{EXCH}/Bin/Microsoft.Exchange.Data.dll", None), b"MZ"),
        (Expect("inetpub/wwwroot/aspnet_client/system_web/evil.aspx", k.WEB_FILE),
         b"<script runat=server>"),
        (Expect("inetpub/logs/LogFiles/W3SVC1/u_ex210301.log", k.IIS_LOG), b"#Fields: date\n"),
        (Expect("inetpub/logs/LogFiles/W3SVC1/u_ex210228.log.gz", k.IIS_LOG), gz),
        (Expect("Windows/System32/winevt/Logs/Application.evtx", k.EVTX), b"ElfFile\x00"),
        (Expect("Windows/System32/drivers/etc/hosts", None), b"127.0.0.1 localhost"),
        (Expect("Windows/Temp/lsass.dmp", k.OTHER_FILE), b"MDMP"),
        (Expect("Windows/Microsoft.NET/Framework64/v4.0.30319/Temporary ASP.NET Files/owa/"
                "1a2b/App_Web_x.dll", k.WEB_FILE), b"MZ"),
        (Expect("Windows/WinSxS/amd64_x/big.dll", None), b"MZ"),
        (Expect("ProgramData/it.zip", k.OTHER_FILE), b"PK\x05\x06" + b"\x00" * 18),
        (Expect("ProgramData/ev.json", k.EVENT_EXPORT),
         b"\xff\xfe" + GET_WINEVENT_JSON.encode("utf-16-le")),
        (Expect("root/dump.7z", k.OTHER_FILE), b"7z\xbc\xaf"),
        (Expect("Users/admin/Desktop/app-events.xml", k.EVENT_EXPORT), WEVTUTIL_XML),
        (Expect("Users/admin/Desktop/notes.txt", None), b"just notes"),
        (Expect("Users/admin/AppData/Local/Temp/cache.txt", None), b"x"),
        (Expect("Users/admin/AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine/"
                "ConsoleHost_history.txt", k.OTHER_FILE), b"whoami\n"),
        (Expect("$Recycle.Bin/S-1-5-21/$R1.aspx", None), b"x"),
    ]


def write_tree(base: Path, files: list[tuple[str, bytes]]) -> None:
    for rel, data in files:
        target = base / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def zip_tree(folder: Path, dest: Path, backslashes: bool = False) -> Path:
    """Zip a folder (folders included as entries) the way triage tools do."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for name in sorted(filenames):
                full = Path(dirpath) / name
                rel = full.relative_to(folder).as_posix()
                if backslashes:
                    rel = rel.replace("/", "\\")
                zf.write(full, rel)
    return dest


