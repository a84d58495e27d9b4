"""Which file is which artifact, by its logical path: the folder rules and name rules of
the walk (collect/locate.py), which never looks at a file's content here.

Names are matched by their *logical* form: each raw name is percent-decoded (Velociraptor
writes `C%3A` and `%5C%5C.%5CC%3A`), split on backslashes (zips made on Windows, flattened
names) and case-folded (Windows paths are case-insensitive).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from exhunt.collect.base import ArtifactKind

# -- logical names ---------------------------------------------------------------------

_SEPARATORS = re.compile(r"[\\/]")


def logical_pieces(raw: str) -> list[str]:
    """The logical names one raw name stands for (decoded, split, without '.', '..')."""
    text = unquote(raw, errors="replace") if "%" in raw else raw
    return [p for p in _SEPARATORS.split(text) if p not in ("", ".", "..")]


DRIVE = re.compile(r"[a-z]:")
_W3SVC = re.compile(r"w3svc\d+")
_LOG_NAME = re.compile(r".*\.log(\.gz)?")
# A folder holding one of these (as folders) is the root of a drive copy.
STRONG_DRIVE_MARKERS = frozenset(
    {"programdata", "inetpub", "program files", "program files (x86)"}
)
# Logging sub-folders that identify an Exchange install and are worth walking.
EXCHANGE_LOGGING = frozenset({"httpproxy", "ecp", "oabgeneratorlog", "cmdletinfra"})
_SNIFF_SUFFIXES = (".xml", ".json", ".txt")
# Compatibility junctions every Windows drive has (they show as symlinks on a mounted
# copy): never followed, like every link, but not worth a problem line each.
WINDOWS_JUNCTIONS = frozenset({
    "documents and settings", "all users", "default user", "application data",
    "local settings", "my documents", "nethood", "printhood", "recent", "sendto",
    "start menu", "templates", "cookies", "my music", "my pictures", "my videos",
})

# Heavy trees pruned from the walk because no artifact kind lives there, so a walk of a
# live drive stays fast: the component store, installer caches, other Windows internals.
PRUNE_UNDER_WINDOWS = frozenset({
    "winsxs", "installer", "servicing", "softwaredistribution", "assembly", "syswow64",
    "systemapps", "fonts", "inf", "winstore", "immersivecontrolpanel",
})
# Only these System32 folders hold artifacts: event logs, IIS 6 era W3SVC logs.
KEEP_SYSTEM32 = frozenset({"winevt", "logfiles"})
# ... and IIS's configuration, which names every folder a site serves (the folder only,
# not inetsrv's binaries nor config/schema). Source: "Introduction to ApplicationHost.config",
# learn.microsoft.com/iis/get-started/planning-your-iis-architecture/
IIS_CONFIG_FOLDER = ("system32", "inetsrv", "config")
_IIS_CONFIG_NAME = "applicationhost.config"
# Anywhere: deleted files and shadow-copy metadata are not part of this hunt.
PRUNE_ANYWHERE = frozenset({"$recycle.bin", "system volume information"})
# Under Users/<name>/AppData only the PowerShell history is walked.
PSREADLINE = ("roaming", "microsoft", "windows", "powershell", "psreadline")
# Vendor trees inside ProgramData that are huge and hold nothing a responder needs here.
PRUNE_UNDER_PROGRAMDATA = frozenset({
    ("package cache",),
    ("microsoft", "windows defender", "definition updates"),
    ("microsoft", "windows defender", "scans"),
    ("microsoft", "search"),
    ("microsoft", "diagnosis"),
})


@dataclass(frozen=True, slots=True)
class Match:
    """What a path is, and the anchors it was recognised by (as logical lengths)."""

    kind: ArtifactKind
    root_len: int | None = None      # logical prefix that is the Exchange install
    protocol_at: int | None = None   # logical index of the HttpProxy protocol folder
    needs_root: bool = False         # counts only when root_len is a known Exchange root
    zone_len: int | None = None      # logical prefix of the post-exploitation zone
    sniff: bool = False              # may be an event-log export: look at its first bytes
    iis_config: bool = False         # IIS's applicationHost.config: its vdirs are walked


def _find(low: tuple[str, ...], *names: str, start: int = 0, stop: int | None = None) -> int:
    """Index where `names` occur consecutively in low[start:stop], or -1."""
    end = len(low) if stop is None else stop
    width = len(names)
    for i in range(start, end - width + 1):
        if low[i : i + width] == names:
            return i
    return -1


@dataclass(frozen=True, slots=True)
class FolderRules:
    """What the files of one folder can be: decided once per folder, not once per file."""

    exchange: Match | None = None   # the Exchange log family this folder holds
    log_names_only: bool = False    # HttpProxy: only *.log and *.log.gz count
    iis: bool = False               # a W3SVC<n> folder
    web: Match | None = None        # under a web root
    zone: int | None = None         # under a post-exploitation zone
    sniff_ok: bool = False          # event-log exports looked for here
    iis_config: bool = False        # System32/inetsrv/config


def _exchange_folder(folder: tuple[str, ...]) -> tuple[Match | None, bool]:
    for i in range(len(folder) - 1, -1, -1):
        if folder[i] != "logging":
            continue
        tail = folder[i + 1 :]
        if len(tail) == 2 and tail[0] == "httpproxy":
            return Match(ArtifactKind.HTTPPROXY_LOG, root_len=i, protocol_at=i + 2), True
        if tail == ("ecp", "server"):
            return Match(ArtifactKind.ECP_SERVER_LOG, root_len=i), False
        if tail[:1] == ("oabgeneratorlog",):
            return Match(ArtifactKind.OAB_GENERATOR_LOG, root_len=i), False
        if len(tail) == 3 and tail[:2] == ("cmdletinfra", "powershell-proxy"):
            if tail[2] == "http":
                return Match(ArtifactKind.RPS_HTTP_LOG, root_len=i), False
            if tail[2] == "cmdlet":
                return Match(ArtifactKind.RPS_CMDLET_LOG, root_len=i), False
    return None, False


def _iis_folder(folder: tuple[str, ...]) -> bool:
    if not folder:
        return False
    last = folder[-1]
    if _W3SVC.fullmatch(last):
        return True
    return last.startswith("w3svc") and len(folder) >= 2 and folder[-2] == "logfiles"


def web_folder(folder: tuple[str, ...]) -> Match | None:
    if _find(folder, "inetpub", "wwwroot") >= 0:
        return Match(ArtifactKind.WEB_FILE)
    at = _find(folder, "frontend", "httpproxy")
    if at >= 0:
        return Match(ArtifactKind.WEB_FILE, root_len=at)
    at = _find(folder, "microsoft.net")
    if (
        at >= 0
        and at + 3 < len(folder)
        and folder[at + 1].startswith("framework")
        and folder[at + 3] == "temporary asp.net files"
    ):
        return Match(ArtifactKind.WEB_FILE)
    at = _find(folder, "clientaccess")
    if at >= 0:
        return Match(ArtifactKind.WEB_FILE, root_len=at, needs_root=True)
    return None


def zone_of(
    low: tuple[str, ...], is_drive_root: Callable[[tuple[str, ...]], bool], start: int = 0
) -> int | None:
    """Length of the post-exploitation zone prefix holding this path (or None).

    `start`: zones begin inside the collection, never in the names above its root, so a
    copy kept under a folder named ProgramData is not capped as one zone.
    """
    at = _find(low, "programdata", start=start)
    if at >= 0:
        return at + 1
    at = _find(low, "windows", "temp", start=start)
    if at >= 0:
        return at + 2
    for i in range(start, len(low)):
        if low[i] == "root" and is_drive_root(low[:i]):
            return i + 1
    at = _find(low, "users", start=start)
    if at >= 0 and low[at + 2 : at + 3] == ("appdata",) and low[at + 3 : at + 8] == PSREADLINE:
        return at + 8
    return None


def folder_rules(
    folder: tuple[str, ...], is_drive_root: Callable[[tuple[str, ...]], bool], start: int = 0
) -> FolderRules:
    """The rules for files directly in this folder (logical, case-folded names).

    `start`: how many of the names lie above the collection root (see zone_of).
    """
    exchange, log_only = _exchange_folder(folder)
    return FolderRules(
        exchange=exchange,
        log_names_only=log_only,
        iis=_iis_folder(folder),
        web=web_folder(folder),
        zone=zone_of(folder, is_drive_root, start),
        sniff_ok=not any(p == "windows" or p.startswith("program files") for p in folder),
        iis_config=folder[-3:] == IIS_CONFIG_FOLDER,
    )


def classify_name(rules: FolderRules, name: str) -> Match | None:
    """What a file of this (case-folded) name is, in a folder with these rules."""
    if rules.iis_config and name == _IIS_CONFIG_NAME:
        return Match(ArtifactKind.WEB_FILE, iis_config=True)
    if rules.exchange is not None and (not rules.log_names_only or _LOG_NAME.fullmatch(name)):
        return rules.exchange
    if rules.iis and (_LOG_NAME.fullmatch(name) or name.endswith(".gz")):
        return Match(ArtifactKind.IIS_LOG)  # W3SVC folders hold logs only: any .gz rotation
    if name.endswith(".evtx"):
        return Match(ArtifactKind.EVTX)
    web = rules.web
    if web is not None and not web.needs_root:
        return web
    sniff = name.endswith(_SNIFF_SUFFIXES)
    if rules.zone is not None:
        return Match(ArtifactKind.OTHER_FILE, zone_len=rules.zone, sniff=sniff)
    if web is not None:  # ClientAccess: decided once the Exchange roots are known
        return web
    if sniff and rules.sniff_ok:
        return Match(ArtifactKind.EVENT_EXPORT, sniff=True)
    return None


def classify(
    low: tuple[str, ...], is_drive_root: Callable[[tuple[str, ...]], bool], start: int = 0
) -> Match | None:
    """What the file at this logical path is, or None when it is no artifact."""
    if not low:
        return None
    return classify_name(folder_rules(low[:-1], is_drive_root, start), low[-1])
