"""A server's files in a folder: a live install root, or a triage copy of its drive."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from exhunt.collect.base import Artifact, ArtifactReadError, WalkedCollection, printable_path
from exhunt.collect.locate import Entry, EntryType, walk

# Opened without following a final symlink, and without blocking should a pipe have
# replaced the file since the walk (O_NONBLOCK changes nothing for regular files).
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_BINARY", 0)
)


class DirectoryCollection(WalkedCollection):
    """Walks a folder without following symbolic links; re-openable from `source`."""

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self._root = os.path.abspath(source)
        # Folders already found to be real folders (no link on the way): thousands of hourly
        # logs share a handful of folders, so each is checked once, not once per file.
        self._checked: dict[str, str] = {}

    def __reduce__(self) -> tuple[object, ...]:
        return (DirectoryCollection, (self.source,))

    def _walk(self) -> tuple[list[Artifact], list[str]]:
        return walk(_DiskTree(self._root), self.problems, self.source, _context(self._root))

    def local_path(self, artifact: Artifact) -> Path | None:
        try:
            return Path(self._resolve(artifact.path))
        except OSError:
            return None

    def open(self, artifact: Artifact) -> BinaryIO:
        try:
            full = self._resolve(artifact.path)
            fd = os.open(full, _OPEN_FLAGS)
        except ArtifactReadError:
            raise
        except FileNotFoundError:
            raise ArtifactReadError(f"cannot read {artifact.path}: file has vanished") from None
        except OSError as exc:
            raise ArtifactReadError(f"cannot read {artifact.path}: {_reason(exc)}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ArtifactReadError(f"cannot read {artifact.path}: not a regular file")
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def _resolve(self, relative: str) -> str:
        """The real path of an artifact path, refusing '..' and symbolic links on the way."""
        parts = relative.split("/")
        if not relative or any(p in ("", ".", "..") for p in parts):
            raise ArtifactReadError(f"cannot read {relative}: not a plain relative path")
        folder = "/".join(parts[:-1])
        current = self._checked.get(folder)
        if current is None:
            current = self._root
            for part in parts[:-1]:
                current = self._step(current, part, relative)
            self._checked[folder] = current
        return self._step(current, parts[-1], relative)

    @staticmethod
    def _step(current: str, part: str, relative: str) -> str:
        current = os.path.join(current, _real_name(current, part))
        if stat.S_ISLNK(os.lstat(current).st_mode):
            raise ArtifactReadError(f"cannot read {relative}: symbolic link not followed")
        return current


def _context(root: str) -> tuple[str, ...]:
    """The names of the root folder and its parent (`V15/Logging` given as PATH counts)."""
    head, name = os.path.split(root.rstrip(os.sep))
    parent = os.path.basename(head)
    return tuple(n for n in (parent, name) if n)


def _real_name(folder: str, shown: str) -> str:
    """The on-disk name shown as `shown` (they differ only for undecodable names)."""
    if os.path.lexists(os.path.join(folder, shown)) or "\\x" not in shown:
        return shown
    with os.scandir(folder) as entries:
        for entry in entries:
            if printable_path(entry.name) == shown:
                return entry.name
    return shown


class _DiskTree:
    """The walk's view of a folder on disk."""

    def __init__(self, root: str) -> None:
        self._root = root

    def _path(self, parts: tuple[str, ...]) -> str:
        return os.sep.join((self._root, *parts)) if parts else self._root

    def list_dir(self, parts: tuple[str, ...]) -> list[Entry]:
        entries: list[Entry] = []
        with os.scandir(self._path(parts)) as found:
            for item in found:
                entries.append(Entry(item.name, _entry_type(item)))
        return entries

    def stat(self, parts: tuple[str, ...]) -> tuple[int, datetime | None]:
        info = os.lstat(self._path(parts))
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "no longer a regular file")
        return info.st_size, _utc(info.st_mtime)

    def head(self, parts: tuple[str, ...], size: int) -> bytes:
        fd = os.open(self._path(parts), _OPEN_FLAGS)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(0, "not a regular file")
            return os.read(fd, size)
        finally:
            os.close(fd)

    def display(self, parts: tuple[str, ...]) -> str:
        return printable_path("/".join(parts))


def _entry_type(item: os.DirEntry[str]) -> EntryType:
    try:
        is_junction = getattr(item, "is_junction", None)  # Windows junctions (3.12+)
        if item.is_symlink() or (is_junction is not None and is_junction()):
            return EntryType.SYMLINK
        if item.is_dir(follow_symlinks=False):
            return EntryType.DIR
        if item.is_file(follow_symlinks=False):
            return EntryType.FILE
    except FileNotFoundError:
        return EntryType.GONE
    except OSError:
        return EntryType.OTHER
    return EntryType.OTHER


def _utc(timestamp: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__
