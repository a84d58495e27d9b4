"""How each log the lab writes looks on disk: headers, quoting, timestamps, field joining.

Times are integers: milliseconds since the Unix epoch, UTC. Formatting uses small lookup tables
because the generator formats millions of timestamps (see bench/lab_triage).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime

from exhunt.lab import catalog

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
CRLF = "\r\n"

_MMSS = [f"{m:02d}:{s:02d}" for m in range(60) for s in range(60)]
_MS_Z = [f".{ms:03d}Z" for ms in range(1000)]


def to_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class Clock:
    """Formats epoch-ms times as Exchange (ISO, ms, Z) and IIS (date time) strings."""

    def __init__(self) -> None:
        self._iso_hour: dict[int, str] = {}
        self._w3c_hour: dict[int, str] = {}

    def _prefixes(self, hour: int) -> tuple[str, str]:
        iso = self._iso_hour.get(hour)
        if iso is None:
            dt = from_ms(hour * HOUR_MS)
            iso = dt.strftime("%Y-%m-%dT%H:")
            self._iso_hour[hour] = iso
            self._w3c_hour[hour] = dt.strftime("%Y-%m-%d %H:")
        return iso, self._w3c_hour[hour]

    def iso(self, ms: int) -> str:
        hour, rest = divmod(ms, HOUR_MS)
        prefix = self._iso_hour.get(hour) or self._prefixes(hour)[0]
        sec, milli = divmod(rest, 1000)
        return prefix + _MMSS[sec] + _MS_Z[milli]

    def w3c(self, ms: int) -> str:
        hour, rest = divmod(ms, HOUR_MS)
        prefix = self._w3c_hour.get(hour) or self._prefixes(hour)[1]
        return prefix + _MMSS[rest // 1000]


def guid(rng: random.Random) -> str:
    """A random version-4 GUID in Windows' lower-case text form."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def csv_field(value: str) -> str:
    """Quote an Exchange CSV log field the way the log writer does: double quotes, doubled."""
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def exchange_ua(ua: str) -> str:
    """Exchange CSV logs drop commas from the user agent: `(KHTML, like Gecko)` is logged as
    `(KHTML  like Gecko)`, two spaces in all (reference b1, real lines), i.e. the comma
    becomes a space next to the one already there."""
    return ua.replace(",", " ")


def iis_ua(ua: str) -> str:
    """IIS W3C replaces spaces with '+' (reference b4)."""
    return ua.replace(" ", "+") if ua else "-"


def exchange_header(version: str, log_type: str, fields: str, first_ms: int, clock: Clock) -> str:
    """#Software/#Version/#Log-type/#Date/#Fields block of an Exchange CSV log (reference b1)."""
    return (
        "#Software: Microsoft Exchange Server" + CRLF
        + f"#Version: {version}" + CRLF
        + f"#Log-type: {log_type}" + CRLF
        + f"#Date: {clock.iso(first_ms)}" + CRLF
        + f"#Fields: {fields}" + CRLF
    )


def iis_header(first_ms: int, clock: Clock) -> str:
    """Header block IIS writes at the top of a W3C log (reference b4)."""
    return (
        f"#Software: {catalog.IIS_SOFTWARE}" + CRLF
        + "#Version: 1.0" + CRLF
        + f"#Date: {clock.w3c(first_ms)}" + CRLF
        + f"#Fields: {catalog.IIS_FIELDS}" + CRLF
    )


def exchange_log_version(build: str) -> str:
    """'15.1.2176.2' -> '15.01.2176.002', as HttpProxy headers print it (reference b1)."""
    parts = [int(p) for p in build.split(".")]
    while len(parts) < 4:
        parts.append(0)
    return f"{parts[0]}.{parts[1]:02d}.{parts[2]:04d}.{parts[3]:03d}"


def pct_escape(text: str) -> str:
    """Escape '%' so a pre-rendered line can be filled with the % operator."""
    return text.replace("%", "%%")


def httpproxy_row(values: Mapping[str, str]) -> str:
    """Join one HttpProxy line (no line end) in the column order of the #Fields line.

    Columns missing from `values` are empty. Values are CSV-quoted when needed.
    """
    unknown = set(values) - set(catalog.HTTPPROXY_FIELDS)
    if unknown:
        raise ValueError(f"not HttpProxy columns: {sorted(unknown)}")
    return ",".join(csv_field(values.get(name, "")) for name in catalog.HTTPPROXY_FIELDS)


def rps_http_row(values: Mapping[str, str]) -> str:
    unknown = set(values) - set(catalog.RPS_HTTP_FIELDS)
    if unknown:
        raise ValueError(f"not Rps_Http columns: {sorted(unknown)}")
    return ",".join(csv_field(values.get(name, "")) for name in catalog.RPS_HTTP_FIELDS)


def iis_line(
    when: str, s_ip: str, method: str, stem: str, query: str, port: int, user: str, c_ip: str,
    ua: str, referer: str, status: int, substatus: int, win32: int, taken: int,
) -> str:
    """One W3C line (no line end); `when` is 'YYYY-MM-DD HH:MM:SS'."""
    return (
        f"{when} {s_ip} {method} {stem} {query or '-'} {port} {user or '-'} {c_ip} "
        f"{iis_ua(ua)} {referer or '-'} {status} {substatus} {win32} {taken}"
    )


def ecp_item(key: str, value: str) -> str:
    """One `S:KEY=VALUE` item of ECP EventData; single-quoted (quotes doubled) when needed."""
    item = f"S:{key}={value}"
    if "'" in item or ";" in item:
        return "'" + item.replace("'", "''") + "'"
    return item


def ecp_cmd(cmdlet: str, params: list[tuple[str, str | None]]) -> str:
    """`Cmdlet.Param=''value''.Param=$null` as the ECP server log prints S:CMD (reference b2).

    Values are single-quoted here; ecp_item doubles those quotes again when it wraps the item,
    giving the real `''value''` form.
    """
    parts = [cmdlet]
    for name, value in params:
        if value is None:
            parts.append(f"{name}=$null")
        elif value in ("$true", "$false"):
            parts.append(f"{name}={value}")
        else:
            parts.append(f"{name}='{value}'")
    return ".".join(parts)
