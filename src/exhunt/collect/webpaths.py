"""Where a server's web files live: a path's part from its web anchor on, the same on every
server of a build whatever the drive, install folder or triage layout."""

from __future__ import annotations

import re

# The folders that anchor web files: Exchange's FrontEnd/HttpProxy and ClientAccess trees and
# IIS's inetpub/wwwroot (the locations of Microsoft's and CISA's ProxyLogon web-shell IOCs).
_WEB_ANCHORS: tuple[tuple[str, ...], ...] = (
    ("frontend", "httpproxy"),
    ("clientaccess",),
    ("inetpub", "wwwroot"),
)


def web_relative(path: str) -> str | None:
    """The part of a path from its web anchor on (`FrontEnd/HttpProxy/owa/auth/x.aspx`), or None.

    The same file has the same web-relative path on every server of a build, whatever the
    drive, install folder or triage layout; Temporary ASP.NET Files are per server: None.
    """
    parts = [p for p in re.split(r"[\\/]", path) if p and p not in (".", "..")]
    low = [p.lower() for p in parts]
    if "temporary asp.net files" in low:
        return None
    for anchor in _WEB_ANCHORS:
        width = len(anchor)
        for i in range(len(low) - width):
            if tuple(low[i : i + width]) == anchor:
                return "/".join(parts[i:])
    return None
