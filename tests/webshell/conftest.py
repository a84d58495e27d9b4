from __future__ import annotations

from pathlib import Path

import pytest

from helpers.webshell_samples import (
    ASPNET_CLIENT,
    DATA,
    EXCHANGE,
    HTTPPROXY_HEADER,
    IIS_HEADER,
    OWA_AUTH,
    Builder,
)


@pytest.fixture
def server(tmp_path: Path) -> Builder:
    """A small triage copy: product pages, IIS and HttpProxy logs, plus what the test adds."""

    def build(files: dict[str, bytes | str] | None = None, iis: list[str] | None = None,
              name: str = "srv") -> Path:
        root = tmp_path / name
        for page in ("logon.aspx", "errorFE.aspx", "logon.css", "boot.js"):
            _write(root / OWA_AUTH / page, (DATA / "benign" / page).read_bytes())
        for page in ("Global.asax", "web.config", "download.ashx", "health.asmx"):
            _write(root / EXCHANGE / "FrontEnd/HttpProxy/ecp" / page,
                   (DATA / "benign" / page).read_bytes())
        _write(root / "C/inetpub/wwwroot/iisstart.htm", (DATA / "benign/iisstart.htm").read_bytes())
        (root / ASPNET_CLIENT / "system_web/4_0_30319").mkdir(parents=True, exist_ok=True)
        proxy = HTTPPROXY_HEADER + "2021-03-01T06:00:00.000Z,r1,192.0.2.10,/owa/auth/logon.aspx,200,GET,Mozilla/5.0,\r\n"
        _write(root / EXCHANGE / "Logging/HttpProxy/Owa/HttpProxy_2021030100-1.LOG", proxy.encode())
        lines = ["2021-03-01 06:00:00 10.0.0.1 GET /owa/auth/logon.aspx - 443 - 192.0.2.10 "
                 "Mozilla/5.0 - 200 0 0 15"] + (iis or [])
        _write(root / "C/inetpub/logs/LogFiles/W3SVC1/u_ex210301.log",
               (IIS_HEADER + "\r\n".join(lines) + "\r\n").encode())
        for rel, data in (files or {}).items():
            _write(root / rel, data.encode() if isinstance(data, str) else data)
        return root

    return build


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def benign_dir() -> Path:
    return DATA / "benign"
