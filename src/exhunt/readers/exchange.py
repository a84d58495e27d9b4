"""Exchange-specific value formats inside the CSV logs.

ECP Server log `EventData` is a `;`-separated list of `S:KEY=VALUE` items; an item
holding quotes or semicolons is wrapped in single quotes with inner quotes doubled.
`S:CMD` holds `Cmdlet.Param=value.Param=value`, values single-quoted when needed.
"""

from __future__ import annotations

import re

# Columns of the PowerShell proxy's Rps_Http log, for files that carry no #Fields line
# (header list of CrowdStrike/OWASSRF `Rps_Http-IOC.ps1`).
RPS_HTTP_FIELDS = (
    "DateTime", "StartTime", "RequestId", "MajorVersion", "MinorVersion", "BuildVersion",
    "RevisionVersion", "ClientRequestId", "UrlHost", "UrlStem", "AuthenticationType",
    "IsAuthenticated", "AuthenticatedUser", "Organization", "ManagedOrganization",
    "ClientIpAddress", "ServerHostName", "FrontEndServer", "HttpStatus", "SubStatus", "ErrorCode",
    "Action", "CommandId", "CommandName", "SessionId", "ShellId", "FailFast",
    "ContributeToFailFast", "RequestBytes", "ClientInfo", "CPU", "Memory",
    "ActivityContextLifeTime", "TotalTime", "UrlQuery", "GenericLatency", "GenericInfo",
    "GenericErrors",
)

_PARAM_START = re.compile(r"\.([A-Za-z][A-Za-z0-9]*)=")


def parse_event_data(text: str) -> dict[str, str]:
    """`S:KEY=VALUE;...` into {"S:KEY": "VALUE"}; unknown shapes yield what can be read."""
    items: dict[str, str] = {}
    for item in _split_items(text):
        key, sep, value = item.partition("=")
        if sep and key and key not in items:
            items[key.strip()] = value
    return items


def parse_cmdlet(command: str) -> tuple[str, dict[str, str]]:
    """`Set-X.Name=value.Other='quoted'` into ("Set-X", {"Name": "value", ...})."""
    first = _PARAM_START.search(command)
    if first is None:
        return command.strip(), {}
    name = command[: first.start()].strip()
    params: dict[str, str] = {}
    pos = first.start()
    while pos < len(command):
        match = _PARAM_START.match(command, pos)
        if match is None:
            break
        value, pos = _read_value(command, match.end())
        params.setdefault(match.group(1), value)
    return name, params


def _split_items(text: str) -> list[str]:
    items: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos] == "'":
            value, pos = _read_quoted(text, pos)
            items.append(value)
            pos = text.find(";", pos)
            pos = len(text) if pos < 0 else pos + 1
        else:
            end = text.find(";", pos)
            end = len(text) if end < 0 else end
            items.append(text[pos:end])
            pos = end + 1
    return items


def _read_quoted(text: str, pos: int) -> tuple[str, int]:
    """A single-quoted value starting at `pos`; '' inside stands for one quote."""
    out: list[str] = []
    i = pos + 1
    while i < len(text):
        quote = text.find("'", i)
        if quote < 0:
            out.append(text[i:])
            return "".join(out), len(text)
        out.append(text[i:quote])
        if text.startswith("''", quote):
            out.append("'")
            i = quote + 2
        else:
            return "".join(out), quote + 1
    return "".join(out), len(text)


def _read_value(command: str, pos: int) -> tuple[str, int]:
    if pos < len(command) and command[pos] == "'":
        value, end = _read_quoted(command, pos)
        return value, end
    nxt = _PARAM_START.search(command, pos)
    end = nxt.start() if nxt else len(command)
    return command[pos:end], end
