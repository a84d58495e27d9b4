"""Where a server's artifacts live: walk any tree of files and name what each one is.

The same walk serves folders and zips. It never trusts a fixed layout: it looks for the
folders that identify each artifact (`Logging/HttpProxy`, `inetpub/wwwroot`, `W3SVC1`, ...)
wherever they are, so a live install root, a plain copy of `C:\\`, KAPE and Velociraptor
output, one or two folders down, all work.

What each file is, by its logical path, is decided by collect/rules.py; here is the walk
(the tree, its bounds and problems, IIS virtual directories). Artifact paths keep raw names.
"""

from __future__ import annotations

import re
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
from exhunt.collect.rules import (
    DRIVE,
    EXCHANGE_LOGGING,
    IIS_CONFIG_FOLDER,
    KEEP_SYSTEM32,
    PRUNE_ANYWHERE,
    PRUNE_UNDER_PROGRAMDATA,
    PRUNE_UNDER_WINDOWS,
    PSREADLINE,
    STRONG_DRIVE_MARKERS,
    WINDOWS_JUNCTIONS,
    FolderRules,
    Match,
    classify,
    classify_name,
    folder_rules,
    logical_pieces,
    web_folder,
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
        return low in self._drive_roots or (bool(low) and DRIVE.fullmatch(low[-1]) is not None)

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
        if names & STRONG_DRIVE_MARKERS or (
            "windows" in names and len(node.low) > 0 and len(node.low[-1]) == 1
        ):
            self._drive_roots.add(node.low)
        if node.low and node.low[-1] == "logging" and names & EXCHANGE_LOGGING:
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
            if name.casefold() not in WINDOWS_JUNCTIONS:
                self._log.add("symlink", self._shown(parent, name), "symbolic link not followed")
        elif entry.type is EntryType.GONE:
            self._log.add("vanished", self._shown(parent, name), "vanished during the walk")

    def _shown(self, parent: _Node, name: str) -> str:
        return self._tree.display((*parent.parts, name))

    def _prune(self, node: _Node) -> bool:
        low = node.low
        if not low:
            return False
        if low[-1] in PRUNE_ANYWHERE:
            return True
        if self._in_full_zone(low):
            return True
        n = len(low)
        # Exchange's Logging holds dozens of busy logs; only four families matter here.
        if n >= 2 and low[-2] == "logging" and low[:-2] in self._roots:
            return low[-1] not in EXCHANGE_LOGGING
        for i in range(n - 1):
            name = low[i]
            if name == "windows" and self.is_drive_root(low[:i]):
                rest = low[i + 1 :]
                if rest[0] in PRUNE_UNDER_WINDOWS:
                    return True
                if rest[0] == "system32" and len(rest) >= 2 and rest[1] not in KEEP_SYSTEM32:
                    return len(rest) > 3 or rest != IIS_CONFIG_FOLDER[: len(rest)]
            elif name == "users" and i + 2 < n and low[i + 2] == "appdata":
                below = low[i + 3 :]
                if below != PSREADLINE[: len(below)]:
                    return True
            elif name == "programdata":
                below = low[i + 1 :]
                if any(below[: len(p)] == p for p in PRUNE_UNDER_PROGRAMDATA):
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
        web = web_folder(node.low)
        if web is None or any(p in PRUNE_ANYWHERE for p in node.low) or self._loc._prune(node):
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
                    if child.low and child.low[-1] in PRUNE_ANYWHERE:
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
