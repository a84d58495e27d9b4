"""Where a server's artifacts live: walk any tree of files and name what each one is.

The same walk serves folders and zips. It never trusts a fixed layout: it looks for the
folders that identify each artifact (`Logging/HttpProxy`, `inetpub/wwwroot`, `W3SVC1`, ...)
wherever they are, so a live install root, a plain copy of `C:\\`, KAPE and Velociraptor
output, one or two folders down, all work.

Names are matched by their *logical* form: each raw name is percent-decoded (Velociraptor
writes `C%3A` and `%5C%5C.%5CC%3A`), split on backslashes (zips made on Windows, flattened
names) and case-folded (Windows paths are case-insensitive). Artifact paths keep raw names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol
from urllib.parse import unquote

from exhunt.collect.base import Artifact, ArtifactKind, printable_path
from exhunt.collect.iisconfig import (
    DEFAULT_VARIABLES,
    MAX_CONFIG_BYTES,
    VirtualDirectory,
    quoted,
    virtual_directories,
)
from exhunt.model import InputProblem
from exhunt.readers.sniff import SNIFF_BYTES as SNIFF_BYTES
from exhunt.readers.sniff import is_event_export as is_event_export

# A folder deeper than this is not walked (a 10,000-deep chain is an attack, not a server).
MAX_DEPTH = 100
# Entries (files and folders) looked at in one collection before the walk stops.
MAX_ENTRIES = 3_000_000
# Files listed per post-exploitation zone (ProgramData, Windows/Temp, C:\root, ...).
MAX_ZONE_FILES = 20_000
# Files whose first bytes are read to recognise event-log exports, and the bytes read.
MAX_SNIFFED = 2_000
# Candidates for that sniffing kept in memory (the rest are only counted).
MAX_SNIFF_CANDIDATES = 20_000
# Problems of one topic named one by one; beyond this they are only counted.
MAX_NAMED_PER_TOPIC = 50


class EntryType(Enum):
    DIR = "dir"
    FILE = "file"
    SYMLINK = "symlink"
    OTHER = "other"      # device, pipe, socket: never an artifact
    GONE = "gone"        # vanished between listing and looking at it


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    type: EntryType


class Tree(Protocol):
    """A tree of files as the walk sees it (a folder on disk, or a zip's members)."""

    def list_dir(self, parts: tuple[str, ...]) -> list[Entry]:
        """Children of a folder; raises OSError when it cannot be listed."""

    def stat(self, parts: tuple[str, ...]) -> tuple[int, datetime | None]:
        """Size and UTC mtime of a file; raises OSError when it is gone."""

    def head(self, parts: tuple[str, ...], size: int) -> bytes:
        """First bytes of a file; raises OSError when it cannot be read."""

    def display(self, parts: tuple[str, ...]) -> str:
        """The relative, '/'-separated, printable path of an entry."""


class ProblemLog:
    """Named problems, at most MAX_NAMED_PER_TOPIC per topic, then a count."""

    def __init__(self, sink: list[InputProblem]) -> None:
        self._sink = sink
        self._counts: dict[str, int] = {}

    def add(self, topic: str, artifact: str, message: str) -> None:
        count = self._counts.get(topic, 0) + 1
        self._counts[topic] = count
        if count <= MAX_NAMED_PER_TOPIC:
            self._sink.append(InputProblem(artifact, message))

    def finish(self, where: str) -> None:
        for topic, count in sorted(self._counts.items()):
            hidden = count - MAX_NAMED_PER_TOPIC
            if hidden > 0:
                self._sink.append(InputProblem(where, f"{hidden} more not named: {topic}"))
        self._counts.clear()


# -- logical names ---------------------------------------------------------------------

_SEPARATORS = re.compile(r"[\\/]")


def logical_pieces(raw: str) -> list[str]:
    """The logical names one raw name stands for (decoded, split, without '.', '..')."""
    text = unquote(raw, errors="replace") if "%" in raw else raw
    return [p for p in _SEPARATORS.split(text) if p not in ("", ".", "..")]


_DRIVE = re.compile(r"[a-z]:")
_W3SVC = re.compile(r"w3svc\d+")
_LOG_NAME = re.compile(r".*\.log(\.gz)?")
# A folder holding one of these (as folders) is the root of a drive copy.
_STRONG_DRIVE_MARKERS = frozenset(
    {"programdata", "inetpub", "program files", "program files (x86)"}
)
# Logging sub-folders that identify an Exchange install and are worth walking.
_EXCHANGE_LOGGING = frozenset({"httpproxy", "ecp", "oabgeneratorlog", "cmdletinfra"})
_SNIFF_SUFFIXES = (".xml", ".json", ".txt")
# Compatibility junctions every Windows drive has (they show as symlinks on a mounted
# copy): never followed, like every link, but not worth a problem line each.
_WINDOWS_JUNCTIONS = frozenset({
    "documents and settings", "all users", "default user", "application data",
    "local settings", "my documents", "nethood", "printhood", "recent", "sendto",
    "start menu", "templates", "cookies", "my music", "my pictures", "my videos",
})

# Heavy trees pruned from the walk because no artifact kind lives there, so a walk of a
# live drive stays fast: the component store, installer caches, other Windows internals.
_PRUNE_UNDER_WINDOWS = frozenset({
    "winsxs", "installer", "servicing", "softwaredistribution", "assembly", "syswow64",
    "systemapps", "fonts", "inf", "winstore", "immersivecontrolpanel",
})
# Only these System32 folders hold artifacts: event logs, IIS 6 era W3SVC logs.
_KEEP_SYSTEM32 = frozenset({"winevt", "logfiles"})
# ... and IIS's configuration, which names every folder a site serves (the folder only,
# not inetsrv's binaries nor config/schema). Source: "Introduction to ApplicationHost.config",
# learn.microsoft.com/iis/get-started/planning-your-iis-architecture/
_IIS_CONFIG_FOLDER = ("system32", "inetsrv", "config")
_IIS_CONFIG_NAME = "applicationhost.config"
# Anywhere: deleted files and shadow-copy metadata are not part of this hunt.
_PRUNE_ANYWHERE = frozenset({"$recycle.bin", "system volume information"})
# Under Users/<name>/AppData only the PowerShell history is walked.
_PSREADLINE = ("roaming", "microsoft", "windows", "powershell", "psreadline")
# Vendor trees inside ProgramData that are huge and hold nothing a responder needs here.
_PRUNE_UNDER_PROGRAMDATA = frozenset({
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


def _web_folder(folder: tuple[str, ...]) -> Match | None:
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
    if at >= 0 and low[at + 2 : at + 3] == ("appdata",) and low[at + 3 : at + 8] == _PSREADLINE:
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
        web=_web_folder(folder),
        zone=zone_of(folder, is_drive_root, start),
        sniff_ok=not any(p == "windows" or p.startswith("program files") for p in folder),
        iis_config=folder[-3:] == _IIS_CONFIG_FOLDER,
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


# -- the walk --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Node:
    parts: tuple[str, ...]   # raw names from the collection root
    low: tuple[str, ...]     # logical names, case-folded
    orig: tuple[str, ...]    # logical names, original case
    owner: tuple[int, ...]   # for each logical name, the index of its raw name

    def child(self, name: str) -> _Node:
        pieces = logical_pieces(name)
        index = len(self.parts)
        return _Node(
            (*self.parts, name),
            self.low + tuple(p.casefold() for p in pieces),
            self.orig + tuple(pieces),
            self.owner + (index,) * len(pieces),
        )


def _top(context: tuple[str, ...]) -> _Node:
    """The collection root, carrying the names of the folders above it (owner -1).

    A user may point at `V15/Logging` or `inetpub/wwwroot` itself: those names count.
    """
    pieces = [p for name in context for p in logical_pieces(name)]
    return _Node((), tuple(p.casefold() for p in pieces), tuple(pieces), (-1,) * len(pieces))


@dataclass(frozen=True, slots=True)
class _Candidate:
    node: _Node
    match: Match
    served_at: str | None = None  # URL path, from an IIS virtual directory


class Locator:
    """One walk over a tree: artifacts, Exchange roots and problems."""

    def __init__(
        self,
        tree: Tree,
        problems: list[InputProblem],
        where: str,
        context: tuple[str, ...] = (),
    ) -> None:
        self._tree = tree
        self._context = context
        self._log = ProblemLog(problems)
        self._where = where
        self._drive_roots: set[tuple[str, ...]] = set()
        self._roots: dict[tuple[str, ...], str] = {}
        self._zone_counts: dict[tuple[str, ...], int] = {}
        self._full_zones: set[tuple[str, ...]] = set()
        self._candidates: list[_Candidate] = []
        self._sniff_only = 0
        self._sniff_dropped = 0
        self._entries = 0
        self._above = 0  # logical names above the collection root
        self._capped = False  # the entry cap was reached: nothing more is listed

    @property
    def exchange_roots(self) -> list[str]:
        return sorted(set(self._roots.values()))

    def is_drive_root(self, low: tuple[str, ...]) -> bool:
        return low in self._drive_roots or (bool(low) and _DRIVE.fullmatch(low[-1]) is not None)

    def run(self) -> list[Artifact]:
        top = _top(self._context)
        self._above = len(top.low)
        stack = [top]
        while stack:
            node = stack.pop()
            children = self._list(node)
            if children is None:
                continue
            if not children and not node.parts:
                self._log.add("empty", self._where, "holds no files at all: nothing to hunt")
            rules = folder_rules(node.low, self.is_drive_root, self._above)
            dirs: list[_Node] = []
            for entry in children:
                self._entries += 1
                if self._entries > MAX_ENTRIES:
                    self._log.add(
                        "entry cap", self._where,
                        f"walk stopped after {MAX_ENTRIES} entries; the rest was not examined",
                    )
                    self._capped = True
                    stack.clear()
                    break
                self._visit(entry, node, rules, dirs)
            stack.extend(reversed(dirs))
        self._walk_virtual_directories()
        artifacts = self._finish()
        self._log.finish(self._where)
        return artifacts

    def _list(self, node: _Node, note: bool = True) -> list[Entry] | None:
        shown = self._tree.display(node.parts) or "."
        try:
            children = sorted(self._tree.list_dir(node.parts), key=lambda e: e.name)
        except PermissionError:
            self._log.add("unreadable folder", shown, "cannot list folder: permission denied")
            return None
        except FileNotFoundError:
            self._log.add("vanished", shown, "folder vanished during the walk")
            return None
        except OSError as exc:
            self._log.add("unreadable folder", shown, f"cannot list folder: {_reason(exc)}")
            return None
        if note:
            self._note_folder(node, children)
        return children

    def _note_folder(self, node: _Node, children: list[Entry]) -> None:
        """Mark drive roots and Exchange roots from what a folder holds."""
        names = {
            unquote(e.name, errors="replace").casefold() if "%" in e.name else e.name.casefold()
            for e in children
            if e.type is EntryType.DIR
        }
        if names & _STRONG_DRIVE_MARKERS or (
            "windows" in names and len(node.low) > 0 and len(node.low[-1]) == 1
        ):
            self._drive_roots.add(node.low)
        if node.low and node.low[-1] == "logging" and names & _EXCHANGE_LOGGING:
            self._add_root(node, len(node.low) - 1)

    def _add_root(self, node: _Node, length: int) -> None:
        key = node.low[:length]
        if key not in self._roots:
            self._roots[key] = _prefix_display(self._tree, node, length)

    def _visit(
        self, entry: Entry, parent: _Node, rules: FolderRules, dirs: list[_Node]
    ) -> None:
        name = entry.name
        if not name.isascii() and printable_path(name) != name:
            self._log.add(
                "undecodable name", self._shown(parent, name),
                "file name is not valid UTF-8; shown with \\x escapes",
            )
        if entry.type is EntryType.FILE:
            self._file(name, parent, rules)
        elif entry.type is EntryType.DIR:
            child = parent.child(name)
            if self._prune(child):
                return
            if len(child.parts) > MAX_DEPTH:
                self._log.add(
                    "depth cap", self._tree.display(child.parts),
                    f"folder deeper than {MAX_DEPTH} levels; not walked further",
                )
                return
            dirs.append(child)
        elif entry.type is EntryType.SYMLINK:
            if name.casefold() not in _WINDOWS_JUNCTIONS:
                self._log.add("symlink", self._shown(parent, name), "symbolic link not followed")
        elif entry.type is EntryType.GONE:
            self._log.add("vanished", self._shown(parent, name), "vanished during the walk")

    def _shown(self, parent: _Node, name: str) -> str:
        return self._tree.display((*parent.parts, name))

    def _prune(self, node: _Node) -> bool:
        low = node.low
        if not low:
            return False
        if low[-1] in _PRUNE_ANYWHERE:
            return True
        if self._in_full_zone(low):
            return True
        n = len(low)
        # Exchange's Logging holds dozens of busy logs; only four families matter here.
        if n >= 2 and low[-2] == "logging" and low[:-2] in self._roots:
            return low[-1] not in _EXCHANGE_LOGGING
        for i in range(n - 1):
            name = low[i]
            if name == "windows" and self.is_drive_root(low[:i]):
                rest = low[i + 1 :]
                if rest[0] in _PRUNE_UNDER_WINDOWS:
                    return True
                if rest[0] == "system32" and len(rest) >= 2 and rest[1] not in _KEEP_SYSTEM32:
                    return len(rest) > 3 or rest != _IIS_CONFIG_FOLDER[: len(rest)]
            elif name == "users" and i + 2 < n and low[i + 2] == "appdata":
                below = low[i + 3 :]
                if below != _PSREADLINE[: len(below)]:
                    return True
            elif name == "programdata":
                below = low[i + 1 :]
                if any(below[: len(p)] == p for p in _PRUNE_UNDER_PROGRAMDATA):
                    return True
        return False

    def _in_full_zone(self, low: tuple[str, ...]) -> bool:
        return any(low[:k] in self._full_zones for k in range(1, len(low) + 1))

    def _file(self, name: str, parent: _Node, rules: FolderRules) -> None:
        if "%" in name or "\\" in name:  # a flattened or encoded name: judge it whole
            node = parent.child(name)
            match = classify(node.low, self.is_drive_root, self._above)
        else:
            match = classify_name(rules, name.casefold())
            if match is None:
                return
            node = parent.child(name)
        if match is None:
            return
        if match.root_len is not None and match.kind is not ArtifactKind.WEB_FILE:
            self._add_root(node, match.root_len)  # logs in flattened names name it too
        if match.zone_len is not None:
            zone = node.low[: match.zone_len]
            count = self._zone_counts.get(zone, 0)
            if count >= MAX_ZONE_FILES:
                if zone not in self._full_zones:
                    self._full_zones.add(zone)
                    self._log.add(
                        "zone cap", _prefix_display(self._tree, node, match.zone_len),
                        f"more than {MAX_ZONE_FILES} files here; the rest not listed",
                    )
                return
            self._zone_counts[zone] = count + 1
        elif match.kind is ArtifactKind.EVENT_EXPORT:
            if self._sniff_only >= MAX_SNIFF_CANDIDATES:
                self._sniff_dropped += 1
                return
            self._sniff_only += 1
        self._candidates.append(_Candidate(node, match))

    # -- IIS virtual directories: folders a site serves, wherever they are -------------

    def _walk_virtual_directories(self) -> None:
        configs = [c for c in self._candidates if c.match.iis_config]
        if not configs:
            return
        vdirs = _VdirWalk(self, {c.node.parts: i for i, c in enumerate(self._candidates)})
        for config in configs:
            vdirs.config(config.node)

    # -- after the walk: decide what needs the whole picture, then stat and sort --------

    def _finish(self) -> list[Artifact]:
        sniffed = self._sniff()
        artifacts: list[Artifact] = []
        for cand in self._candidates:
            match = cand.match
            kind = match.kind
            if match.sniff:
                if id(cand) in sniffed:
                    kind = ArtifactKind.EVENT_EXPORT
                elif match.zone_len is None:
                    continue
            root = self._root_of(cand)
            if match.needs_root and root is None:
                continue
            artifact = self._artifact(cand, kind, root)
            if artifact is not None:
                artifacts.append(artifact)
        artifacts.sort(key=lambda a: (a.path, a.kind.value))
        return artifacts

    def _root_of(self, cand: _Candidate) -> str | None:
        length = cand.match.root_len
        if length is None:
            return None
        return self._roots.get(cand.node.low[:length])

    def _under_root(self, low: tuple[str, ...]) -> bool:
        return any(low[:k] in self._roots for k in range(len(low)))

    def _sniff(self) -> set[int]:
        """Ids of the candidates whose first bytes are an event-log export."""
        pending = [
            c for c in self._candidates if c.match.sniff and not self._under_root(c.node.low)
        ]
        pending.sort(key=lambda c: (len(c.node.parts), c.node.parts))
        hits: set[int] = set()
        for cand in pending[:MAX_SNIFFED]:
            try:
                head = self._tree.head(cand.node.parts, SNIFF_BYTES)
            except OSError as exc:
                if cand.match.zone_len is None:  # zone files are still listed and named later
                    self._log.add(
                        "unreadable file", self._tree.display(cand.node.parts),
                        f"cannot read: {_reason(exc)}",
                    )
                continue
            if is_event_export(head):
                hits.add(id(cand))
        skipped = max(0, len(pending) - MAX_SNIFFED) + self._sniff_dropped
        if skipped:
            self._log.add(
                "sniff cap", self._where,
                f"event-export detection stopped after {MAX_SNIFFED} files; "
                f"{skipped} .xml/.json/.txt files not examined",
            )
        return hits

    def _artifact(self, cand: _Candidate, kind: ArtifactKind, root: str | None) -> Artifact | None:
        shown = self._tree.display(cand.node.parts)
        try:
            size, mtime = self._tree.stat(cand.node.parts)
        except FileNotFoundError:
            self._log.add("vanished", shown, "vanished during the walk")
            return None
        except OSError as exc:
            self._log.add("unreadable file", shown, f"cannot read: {_reason(exc)}")
            return None
        protocol = None
        if cand.match.protocol_at is not None:
            protocol = cand.node.orig[cand.match.protocol_at]
        is_exchange = kind in _EXCHANGE_KINDS or cand.match.root_len is not None
        return Artifact(
            kind=kind,
            path=shown,
            size=size,
            mtime=mtime,
            protocol=protocol,
            exchange_root=root if is_exchange else None,
            served_at=cand.served_at,
        )


@dataclass(frozen=True, slots=True)
class _DriveRoot:
    """The copy of the drive holding a config's Windows folder."""

    node: _Node
    letter: str              # its drive letter (case-folded); "c" when the copy names none
    parent: _Node | None     # the folder holding it and its sibling drives, when known


_DRIVE_NAME = re.compile(r"([a-z]):?")
_DRIVE_PATH = re.compile(r"([A-Za-z]):[\\/]")
# Characters no Windows folder name holds (and ':' only after the drive letter).
_BAD_NAME = re.compile(r'[<>:"|?*\x00-\x1f]')


class _VdirWalk:
    """Reads each applicationHost.config found and walks the folders its sites serve."""

    def __init__(self, locator: Locator, index: dict[tuple[str, ...], int]) -> None:
        self._loc = locator
        self._tree = locator._tree
        self._log = locator._log
        self._index = index     # candidate position by raw parts: each file listed once
        self._walked: set[tuple[str, ...]] = set()
        self._listings: dict[tuple[str, ...], list[Entry] | None] = {}

    def config(self, config: _Node) -> None:
        shown = self._tree.display(config.parts)
        drive = self._drive_root(config, shown)
        if drive is None:
            return
        try:
            data = self._tree.head(config.parts, MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            self._log.add("unreadable file", shown, f"cannot read: {_reason(exc)}")
            return
        messages: list[str] = []
        found = virtual_directories(data, messages, self._variables(drive))
        for message in messages:
            self._log.add("iis config", shown, f"IIS config: {message}")
        targets: dict[tuple[str, ...], tuple[_Node, str]] = {}
        for vdir in found:
            node = self._folder(vdir, drive, shown)
            if node is not None:
                targets.setdefault(node.low, (node, vdir.url_path))
        for low in sorted(targets, key=lambda k: (len(k), k)):  # outer folders first
            if any(low[:k] in self._walked for k in range(1, len(low) + 1)):
                continue
            self._walked.add(low)
            node, url = targets[low]
            if not self._walked_as_web(node):
                self._walk(node, url)

    def _drive_root(self, config: _Node, shown: str) -> _DriveRoot | None:
        """The drive copy holding `Windows/System32/inetsrv/config/applicationHost.config`."""
        k = len(config.low) - 5
        if k < 0 or config.low[k] != "windows":
            self._log.add(
                "iis vdir outside", shown,
                "IIS config not inside a copy of a Windows folder: the drive root is unknown, "
                "so its virtual directories were not searched",
            )
            return None
        if not self._boundary(config, k):
            self._log.add(
                "iis vdir outside", shown,
                "the drive root of this IIS config lies outside the collection or inside one "
                "flattened name; its virtual directories were not searched",
            )
            return None
        node = _prefix(config, k)
        named = _DRIVE_NAME.fullmatch(config.low[k - 1]) if k > 0 else None
        parent = None
        if named is not None and self._boundary(config, k - 1):
            parent = _prefix(config, k - 1)
        return _DriveRoot(node, named.group(1) if named else "c", parent)

    @staticmethod
    def _boundary(node: _Node, k: int) -> bool:
        """Whether the first k logical names end exactly at a raw name inside the tree."""
        if k >= len(node.owner) or node.owner[k] < 0:
            return False
        return k == 0 or node.owner[k - 1] != node.owner[k]

    def _variables(self, drive: _DriveRoot) -> dict[str, str]:
        """IIS's variables for this drive: its letter; Exchange's install path if found."""
        letter = drive.letter.upper()
        found = {
            name: (letter + value[1:] if value[1:2] == ":" else value)
            for name, value in DEFAULT_VARIABLES.items()
        }
        depth = len(drive.node.low)
        roots = sorted(
            root for root in self._loc._roots
            if len(root) > depth and root[:depth] == drive.node.low
        )
        if roots:
            found["exchangeinstallpath"] = f"{letter}:\\" + "\\".join(roots[0][depth:]) + "\\"
        return found

    def _folder(self, vdir: VirtualDirectory, drive: _DriveRoot, shown: str) -> _Node | None:
        """The copy's folder for a virtual directory's physical path (problems named)."""
        path = vdir.physical_path
        label = f"virtual directory {quoted(vdir.url_path)} of site {quoted(vdir.site)}"
        target = quoted(path)
        if path[:4] in ("\\\\?\\", "\\\\.\\"):  # \\?\C:\... is a local path
            path = path[4:]
            if path[:4].casefold() == "unc\\":
                path = "\\" + path[3:]
        if path.startswith(("\\\\", "//")):
            self._log.add(
                "iis vdir outside", shown,
                f"{label} points at network share {target} (UNC path); not in the copy, "
                "not searched",
            )
            return None
        drive_at = _DRIVE_PATH.match(path)
        if drive_at is None:
            self._log.add(
                "iis vdir outside", shown,
                f"{label} points at {target}, not an absolute drive path; not searched",
            )
            return None
        pieces = [p for p in re.split(r"[\\/]", path[3:]) if p not in ("", ".")]
        if ".." in pieces:
            self._log.add(
                "iis vdir outside", shown,
                f"{label} points at {target}, which climbs with '..'; not followed",
            )
            return None
        if any(_BAD_NAME.search(p) for p in pieces):
            self._log.add(
                "iis vdir outside", shown,
                f"{label} points at {target}, which holds characters no Windows folder "
                "name has; not searched",
            )
            return None
        node = self._drive(drive_at.group(1).casefold(), drive)
        if node is None:
            self._log.add(
                "iis vdir missing", shown,
                f"{label} points at {target}, on drive {drive_at.group(1).upper()}: which is "
                "not in the copy; not searched",
            )
            return None
        for piece in pieces:
            step = self._child(node, piece)
            if isinstance(step, str):
                self._log.add(
                    "iis vdir missing", shown, f"{label} points at {target}: {step}; not searched"
                )
                return None
            node = step
        return node

    def _drive(self, letter: str, drive: _DriveRoot) -> _Node | None:
        if letter == drive.letter:
            return drive.node
        if drive.parent is None:
            return None
        for entry in self._entries(drive.parent) or []:
            named = _DRIVE_NAME.fullmatch("".join(logical_pieces(entry.name)).casefold())
            if entry.type is EntryType.DIR and named is not None and named.group(1) == letter:
                return drive.parent.child(entry.name)
        # A copy of the system drive kept in a one-letter folder (a mount point such as
        # /mnt/e) is still C: to the server when no folder for C: stands beside it.
        return drive.node if letter == "c" else None

    def _child(self, node: _Node, piece: str) -> _Node | str:
        """The sub-folder of that (case-insensitive) name, or why there is none."""
        want = [piece.casefold()]
        for entry in self._entries(node) or []:
            if [p.casefold() for p in logical_pieces(entry.name)] != want:
                continue
            if entry.type is EntryType.DIR:
                return node.child(entry.name)
            if entry.type is EntryType.SYMLINK:
                return f"{self._tree.display((*node.parts, entry.name))} is a symbolic link"
        return f"{quoted(piece)} is not in the copy"

    def _entries(self, node: _Node) -> list[Entry] | None:
        if node.parts not in self._listings:
            self._listings[node.parts] = self._loc._list(node, note=False)
        return self._listings[node.parts]

    def _walked_as_web(self, node: _Node) -> bool:
        """Whether the main walk already listed this folder's files as web files."""
        web = _web_folder(node.low)
        if web is None or any(p in _PRUNE_ANYWHERE for p in node.low) or self._loc._prune(node):
            return False
        if web.needs_root:  # ClientAccess: web files only once the install is known
            return web.root_len is not None and node.low[: web.root_len] in self._loc._roots
        return True

    def _walk(self, top: _Node, url: str) -> None:
        """List every file below a served folder as a web file, bounded like a zone."""
        loc = self._loc
        files = 0
        stack = [top]
        while stack and not loc._capped:
            folder = stack.pop()
            children = loc._list(folder, note=False)
            if children is None:
                continue
            dirs: list[_Node] = []
            for entry in children:
                loc._entries += 1
                if loc._entries > MAX_ENTRIES:
                    loc._capped = True
                    self._log.add(
                        "entry cap", loc._where,
                        f"walk stopped after {MAX_ENTRIES} entries; the rest was not examined",
                    )
                    return
                if entry.type is EntryType.FILE:
                    files += 1
                    if files > MAX_ZONE_FILES:
                        self._log.add(
                            "zone cap", self._tree.display(top.parts) or ".",
                            f"more than {MAX_ZONE_FILES} files in this IIS virtual directory; "
                            "the rest not listed",
                        )
                        return
                    child = folder.child(entry.name)
                    below = "/".join(child.orig[len(top.orig) :])
                    self._web_file(child, url.rstrip("/") + "/" + below)
                elif entry.type is EntryType.DIR:
                    child = folder.child(entry.name)
                    if child.low and child.low[-1] in _PRUNE_ANYWHERE:
                        continue
                    if len(child.parts) > MAX_DEPTH:
                        self._log.add(
                            "depth cap", self._tree.display(child.parts),
                            f"folder deeper than {MAX_DEPTH} levels; not walked further",
                        )
                        continue
                    dirs.append(child)
                else:
                    loc._visit(entry, folder, FolderRules(), dirs)  # names links, vanished
            stack.extend(reversed(dirs))

    def _web_file(self, node: _Node, url: str) -> None:
        """List a served file as a web file, once (a zone file found earlier becomes one)."""
        candidates = self._loc._candidates
        at = self._index.get(node.parts)
        if at is None:
            self._index[node.parts] = len(candidates)
            candidates.append(_Candidate(node, Match(ArtifactKind.WEB_FILE), url))
            return
        old = candidates[at].match
        if old.kind in _SERVABLE_KINDS:
            web = Match(ArtifactKind.WEB_FILE, root_len=old.root_len)
            candidates[at] = _Candidate(node, web, url)


# Kinds a file in a served folder is listed as web file instead of (logs keep their kind).
_SERVABLE_KINDS = frozenset({
    ArtifactKind.WEB_FILE, ArtifactKind.OTHER_FILE, ArtifactKind.EVENT_EXPORT,
})


def _prefix(node: _Node, k: int) -> _Node:
    """The folder made of the first k logical names (k ends at a raw name boundary)."""
    raw = node.owner[k] if k < len(node.owner) else len(node.parts)
    return _Node(node.parts[: max(raw, 0)], node.low[:k], node.orig[:k], node.owner[:k])




_EXCHANGE_KINDS = frozenset({
    ArtifactKind.HTTPPROXY_LOG, ArtifactKind.ECP_SERVER_LOG, ArtifactKind.OAB_GENERATOR_LOG,
    ArtifactKind.RPS_HTTP_LOG, ArtifactKind.RPS_CMDLET_LOG,
})


def _prefix_display(tree: Tree, node: _Node, length: int) -> str:
    """The raw path of the folder made of the first `length` logical names ('.' = top).

    Folders above the collection root (its context) are shown as '..'.
    """
    above = node.owner.count(-1)
    if length <= above:
        return "/".join([".."] * (above - length)) or "."
    if length >= len(node.owner):
        return tree.display(node.parts) or "."
    raw_index = node.owner[length]
    whole = tree.display(node.parts[:raw_index])
    # The prefix ends inside one raw name (a flattened name): show its logical part too.
    inside = [node.orig[k] for k in range(length) if node.owner[k] == raw_index]
    if inside:
        tail = "%5C".join(inside)
        return f"{whole}/{tail}" if whole else tail
    return whole or "."


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def walk(
    tree: Tree, problems: list[InputProblem], where: str, context: tuple[str, ...] = ()
) -> tuple[list[Artifact], list[str]]:
    """Artifacts (sorted by path) and Exchange roots found in a tree.

    `context`: names of the folders holding the tree's root, nearest last (may be empty).
    """
    locator = Locator(tree, problems, where, context)
    artifacts = locator.run()
    return artifacts, locator.exchange_roots
