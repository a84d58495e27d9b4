"""IIS's applicationHost.config: the virtual directories it maps onto folders on disk.

Format only: this module says which folders each site serves, never whether that is bad.
The file comes from a possibly compromised server, so it is parsed with expat directly:
a document type declaration (and with it every entity definition) is refused, the size is
capped, nesting depth is capped, and a broken file yields what was read before the break
plus a named problem, never an exception.

Layout (source: IIS configuration reference,
learn.microsoft.com/iis/configuration/system.applicationhost/sites):
  <configuration><system.applicationHost><sites>
    <site name="Default Web Site" id="1">
      <application path="/owa">
        <virtualDirectory path="/" physicalPath="%SystemDrive%\\inetpub\\wwwroot" />
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from xml.parsers import expat

# applicationHost.config with Exchange installed is a few hundred KiB; the YARA rule that
# reads it stops at 20 MB. Beyond this it is not a real server's config.
MAX_CONFIG_BYTES = 16 << 20
# Real configs nest about 6 deep; a deeper chain is an attack on the parser, not a config.
MAX_DEPTH = 64
# Virtual directories kept from one config (Exchange defines a few dozen).
MAX_VDIRS = 5_000

# Default values of the variables IIS and Exchange write into physicalPath, for a server
# whose system drive is C: (the usual case; Windows setup default).
# Sources: learn.microsoft.com/windows/deployment/usmt/usmt-recognized-environment-variables
# (SystemDrive, SystemRoot, windir, ProgramData, ALLUSERSPROFILE, ProgramFiles,
# ProgramFiles(x86), PUBLIC); learn.microsoft.com/exchange/plan-and-deploy/deployment-ref/
# (ExchangeInstallPath, default C:\Program Files\Microsoft\Exchange Server\V15\).
DEFAULT_VARIABLES: dict[str, str] = {
    "systemdrive": "C:",
    "systemroot": "C:\\Windows",
    "windir": "C:\\Windows",
    "programdata": "C:\\ProgramData",
    "allusersprofile": "C:\\ProgramData",
    "programfiles": "C:\\Program Files",
    "programfiles(x86)": "C:\\Program Files (x86)",
    "programw6432": "C:\\Program Files",
    "public": "C:\\Users\\Public",
    "exchangeinstallpath": "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\",
}

_VARIABLE = re.compile(r"%([^%\\/]{1,64})%")


@dataclass(frozen=True, slots=True)
class VirtualDirectory:
    """One <virtualDirectory> of one <application> of one <site>."""

    site: str
    app_path: str
    vdir_path: str
    physical_path: str        # with the known %variables% expanded
    raw_physical_path: str = ""  # as written in the config

    @property
    def url_path(self) -> str:
        """The URL path this folder is served at (application path + vdir path)."""
        app = self.app_path.rstrip("/")
        vdir = self.vdir_path if self.vdir_path.startswith("/") else "/" + self.vdir_path
        return (app + vdir) if vdir != "/" else (app or "/")


def expand_variables(
    path: str, variables: Mapping[str, str] = DEFAULT_VARIABLES
) -> tuple[str, list[str]]:
    """The path with each known %NAME% replaced (names case-insensitive), and the unknown names.

    Expansion is one pass: a value is never expanded again, as Windows does it.
    """
    unknown: list[str] = []

    def replace(found: re.Match[str]) -> str:
        value = variables.get(found.group(1).casefold())
        if value is None:
            unknown.append(found.group(1))
            return found.group(0)
        return value

    return _VARIABLE.sub(replace, path), unknown


class _Refused(Exception):
    """The parse is stopped on purpose (DTD, entity, depth, count): the message says why."""


class _Reader:
    """Expat callbacks: keep the <sites>/<site>/<application>/<virtualDirectory> chain."""

    def __init__(self, variables: Mapping[str, str], problems: list[str]) -> None:
        self.found: list[VirtualDirectory] = []
        self._variables = variables
        self._problems = problems
        self._stack: list[str] = []
        self._site = ""
        self._app = ""
        self._dropped = 0

    def start(self, name: str, attrs: dict[str, str]) -> None:
        self._stack.append(name)
        if len(self._stack) > MAX_DEPTH:
            raise _Refused(f"elements nested deeper than {MAX_DEPTH} levels; not a real config")
        tail = tuple(self._stack[-4:])
        if tail[-2:] == ("sites", "site"):
            self._site = attrs.get("name", "")
        elif tail[-3:] == ("sites", "site", "application"):
            self._app = attrs.get("path", "")
        elif tail == ("sites", "site", "application", "virtualDirectory"):
            self._vdir(attrs)

    def end(self, name: str) -> None:
        if self._stack:
            self._stack.pop()

    def _vdir(self, attrs: dict[str, str]) -> None:
        where = f"site {quoted(self._site)} application {quoted(self._app)}"
        vdir_path = attrs.get("path", "")
        shown = quoted(vdir_path)
        raw = attrs.get("physicalPath")
        if raw is None or not raw.strip():
            self._problems.append(
                f"virtual directory {shown} of {where} has no physicalPath"
            )
            return
        if len(self.found) >= MAX_VDIRS:
            self._dropped += 1
            return
        expanded, unknown = expand_variables(raw.strip(), self._variables)
        for name in unknown:
            self._problems.append(
                f"virtual directory {shown} of {where}: unknown variable %{quoted(name)[1:-1]}% "
                "in physicalPath; left as written"
            )
        self.found.append(VirtualDirectory(self._site, self._app, vdir_path, expanded, raw))

    def finish(self) -> None:
        if self._dropped:
            self._problems.append(
                f"more than {MAX_VDIRS} virtual directories; {self._dropped} not kept"
            )


def quoted(text: str, limit: int = 200) -> str:
    """A config value fit for a problem line: quoted, cut short, unprintables as \\x/\\u escapes.

    Backslashes stay single, so a Windows path reads as the server's admin wrote it.
    """
    cut = text if len(text) <= limit else text[:limit] + "..."
    return "'" + "".join(ch if ch.isprintable() else _escape(ch) for ch in cut) + "'"


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}"




def _refuse_doctype(*_: object) -> None:
    raise _Refused("document type declaration (DTD) refused: IIS configs have none")


def _refuse_entity(*_: object) -> None:
    raise _Refused("entity declaration refused: IIS configs have none")


def _refuse_external(*_: object) -> int:
    raise _Refused("external entity reference refused")


def virtual_directories(
    config_bytes: bytes,
    problems: list[str] | None = None,
    variables: Mapping[str, str] = DEFAULT_VARIABLES,
) -> list[VirtualDirectory]:
    """The virtual directories an applicationHost.config defines, in document order.

    Problems (refused constructs, broken XML, size) are appended to `problems` as messages;
    the virtual directories read before a break are still returned.
    """
    sink: list[str] = problems if problems is not None else []
    if len(config_bytes) > MAX_CONFIG_BYTES:
        sink.append(
            f"config is {len(config_bytes)} bytes, over the cap of {MAX_CONFIG_BYTES}; not read"
        )
        return []
    folded = {k.casefold(): v for k, v in variables.items()}
    reader = _Reader(folded, sink)
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_entity
    parser.ExternalEntityRefHandler = _refuse_external
    try:
        parser.Parse(config_bytes, True)
    except _Refused as exc:
        sink.append(f"{exc}; stopped reading")
    except expat.ExpatError as exc:
        sink.append(
            f"not well-formed XML at line {exc.lineno}, column {exc.offset}: "
            f"{expat.ErrorString(exc.code)}; stopped reading"
        )
    except Exception as exc:  # expat on attacker bytes (odd encodings, ...): a named problem
        sink.append(f"unreadable XML ({type(exc).__name__}: {str(exc)[:200]}); stopped reading")
    reader.finish()
    return reader.found
