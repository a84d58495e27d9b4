"""A server's files in a .zip, read in place: nothing is ever extracted to disk.

Member names come from whoever made the zip, so each is checked before use: traversal
('../', '..\\'), absolute paths and drive letters are refused by name. Every read goes
through a stream that counts the bytes it really produces (header sizes can lie), and
stops a member that grows past a size cap, past a compression ratio no log reaches, or
past the collection's total budget.
"""

from __future__ import annotations

import io
import os
import re
import stat
import struct
import threading
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, BinaryIO

from exhunt.collect.base import Artifact, ArtifactReadError, WalkedCollection
from exhunt.collect.locate import Entry, EntryType, ProblemLog, walk
from exhunt.errors import InputError

# Only these are read: both inflate in bounded steps. zipfile's bzip2 and lzma paths
# decompress whole chunks at once, so a crafted member could fill memory in one call.
_SUPPORTED = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
_READ_CHUNK = 1 << 20
_ENCRYPTED = 0x1 | 0x40  # traditional and strong encryption flags


@dataclass(frozen=True, slots=True)
class ZipLimits:
    """Caps on what reading one zip may cost."""

    member_bytes: int = 8 << 30   # one member, uncompressed (big IIS logs reach a few GiB)
    ratio: int = 200              # logs deflate about 10-30:1; bombs about 1000:1
    ratio_floor: int = 4 << 20    # below this many bytes out, the ratio is not judged
    total_bytes: int = 256 << 30  # everything read from this collection object
    members: int = 2_000_000      # central-directory entries looked at


@dataclass(slots=True)
class _Budget:
    used: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class ZipCollection(WalkedCollection):
    """A zip of a live install root or of a triage copy; re-openable from `source`."""

    def __init__(self, source: str, limits: ZipLimits | None = None) -> None:
        super().__init__(source)
        self.limits = limits or ZipLimits()
        self._budget = _Budget()
        self._zip = _open_zip(source)
        self._pid = os.getpid()
        self._members: dict[str, zipfile.ZipInfo] | None = None
        self._built: _ZipTree | None = None
        self._log = ProblemLog(self.problems)

    def __reduce__(self) -> tuple[object, ...]:
        return (ZipCollection, (self.source, self.limits))

    def close(self) -> None:
        self._zip.close()

    def _archive(self) -> zipfile.ZipFile:
        """The open zip; reopened after a fork, so processes never share one file offset."""
        if self._pid != os.getpid():
            self._zip = _open_zip(self.source)
            self._pid = os.getpid()
        return self._zip

    def _walk(self) -> tuple[list[Artifact], list[str]]:
        found, roots = walk(self._tree(), self.problems, self.source)
        with open(self.source, "rb") as raw:
            end = raw.seek(0, os.SEEK_END)
            kept = [a for a in found if self._header_ok(a, raw, end)]
        self._log.finish(self.source)
        return kept, roots

    def _tree(self) -> _ZipTree:
        """The folder tree implied by the member names (built once; names its problems)."""
        if self._built is not None:
            return self._built
        tree = self._built = _ZipTree(self)
        infos = self._zip.infolist()
        if len(infos) > self.limits.members:
            self._log.add(
                "member cap", self.source,
                f"zip has {len(infos)} members; only the first {self.limits.members} examined",
            )
            infos = infos[: self.limits.members]
        members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            parts = self._safe_parts(info)
            if parts is None:
                continue
            path = "/".join(parts)
            if _is_dir(info):
                tree.add_dir(parts)
                continue
            if path in members:
                self._log.add("duplicate", path, "zip holds this name twice; the last is read")
            members[path] = info
            tree.add_file(parts, info)
        self._members = members
        return tree

    def _safe_parts(self, info: zipfile.ZipInfo) -> tuple[str, ...] | None:
        """The member's path components, or None (and a named problem) when unsafe."""
        name = info.filename
        parts, refusal = member_parts(name)
        if refusal is not None:
            self._log.add("unsafe member", _shown(name), f"member refused: {refusal}")
            return None
        if _is_dir(info):
            return parts
        if info.flag_bits & _ENCRYPTED:
            self._log.add("encrypted", _shown(name), "member is encrypted; not read")
            return None
        if info.compress_type not in _SUPPORTED:
            self._log.add(
                "compression", _shown(name),
                f"compression method {info.compress_type} not supported "
                "(only stored and deflate are read); not read",
            )
            return None
        if info.file_size > self.limits.member_bytes:
            self._log.add(
                "size cap", _shown(name),
                f"member declares {info.file_size} bytes, over the cap of "
                f"{self.limits.member_bytes}; not read",
            )
            return None
        return parts

    def _header_ok(self, artifact: Artifact, raw: IO[bytes], end: int) -> bool:
        """Check the member's local header (cheap) so a corrupt one is named now."""
        info = self._member(artifact.path)
        problem = _local_header_problem(info, raw, end)
        if problem is None:
            return True
        self._log.add("corrupt", artifact.path, f"corrupt member: {problem}; not read")
        return False

    def _member(self, path: str) -> zipfile.ZipInfo:
        if self._members is None:
            self._tree()
        assert self._members is not None
        info = self._members.get(path)
        if info is None:
            raise ArtifactReadError(f"cannot read {path}: no such member in {self.source}")
        return info

    def open(self, artifact: Artifact) -> BinaryIO:
        info = self._member(artifact.path)
        try:
            member = self._archive().open(info)
        except InputError:
            raise
        except Exception as exc:  # zipfile reading attacker bytes: any failure is corruption
            raise self._fail(artifact.path, f"corrupt member: {exc}") from None
        raw = _CappedMember(member, info, artifact.path, self)
        return io.BufferedReader(raw, buffer_size=_READ_CHUNK)

    def _fail(self, path: str, message: str) -> ArtifactReadError:
        """Name the problem on the collection, and give the error to raise."""
        self._log.add("read", path, message)
        return ArtifactReadError(f"cannot read {path}: {message}")

    def _head(self, parts: tuple[str, ...], size: int) -> bytes:
        path = "/".join(parts)
        info = self._member(path)
        try:
            with self._archive().open(info) as member:
                return _CappedMember(member, info, path, self, quiet=True).read_some(size)
        except OSError:
            raise
        except Exception as exc:  # zipfile reading attacker bytes: any failure is corruption
            raise OSError(0, f"corrupt member: {exc}") from None


_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # the 30 fixed bytes of a local file header


def _local_header_problem(info: zipfile.ZipInfo, raw: IO[bytes], end: int) -> str | None:
    """What is wrong with a member's local header, or None (what zipfile.open checks first)."""
    try:
        raw.seek(info.header_offset)
        fixed = raw.read(_LOCAL_HEADER.size)
        if len(fixed) < _LOCAL_HEADER.size:
            return "local header cut short"
        fields = _LOCAL_HEADER.unpack(fixed)
        if fields[0] != b"PK\x03\x04":
            return "bad local header signature"
        name_len, extra_len = fields[10], fields[11]
        stored = raw.read(name_len)
        encoding = "utf-8" if fields[3] & 0x800 else "cp437"  # as zipfile decodes it
        if stored.decode(encoding, "replace") != info.orig_filename:
            return "name in local header differs from the directory"
        if info.header_offset + 30 + name_len + extra_len + info.compress_size > end:
            return "data runs past the end of the zip"
    except (OSError, ValueError, struct.error) as exc:
        return f"unreadable local header ({exc})"
    return None


def _open_zip(source: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(source)
    except zipfile.BadZipFile as exc:
        raise InputError(f"cannot read {source}: not a readable zip archive ({exc})") from None
    except UnicodeDecodeError:
        raise InputError(
            f"cannot read {source}: zip directory holds a name that is not valid UTF-8"
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None
    except Exception as exc:  # a hostile central directory can upset zipfile in many ways
        raise InputError(f"cannot read {source}: not a readable zip archive ({exc!r})") from None


_DRIVE_LETTER = re.compile(r"[A-Za-z]:")


def member_parts(name: str) -> tuple[tuple[str, ...], str | None]:
    """Path components of a member name, or a reason to refuse it.

    Both separators count: zips made by Windows tools often use backslashes.
    """
    if name.startswith(("/", "\\")):
        return (), "absolute path"
    raw = re.split(r"[\\/]", name) if "\\" in name else name.split("/")
    if ":" in raw[0] and _DRIVE_LETTER.match(raw[0]):
        return (), "drive letter in path"
    if ".." in raw:
        return (), "path traversal ('..' with backslashes)" if "\\" in name else (
            "path traversal ('..')"
        )
    parts = tuple(p for p in raw if p not in ("", "."))
    if not parts:
        return (), "empty name"
    if _DRIVE_LETTER.match(parts[0]):  # './C:/x' names a drive just as well
        return (), "drive letter in path"
    return parts, None


def _is_dir(info: zipfile.ZipInfo) -> bool:
    """Folder entries end with a separator; Windows tools may write a backslash."""
    return info.filename.endswith(("/", "\\"))


def _shown(name: str) -> str:
    return name if len(name) <= 300 else name[:300] + "..."


class _CappedMember(io.RawIOBase):
    """A member's bytes, counted as they are produced, stopped at the caps."""

    def __init__(
        self,
        member: IO[bytes],
        info: zipfile.ZipInfo,
        path: str,
        owner: ZipCollection,
        quiet: bool = False,
    ) -> None:
        super().__init__()
        self._quiet = quiet  # a sniff: the walk names what goes wrong itself
        self._member = member
        self._info = info
        self._path = path
        self._owner = owner
        self._out = 0

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            self._member.close()
        super().close()

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self.read_some(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _fail(self, message: str) -> ArtifactReadError:
        if self._quiet:
            return ArtifactReadError(f"cannot read {self._path}: {message}")
        return self._owner._fail(self._path, message)

    def readall(self) -> bytes:
        chunks = []
        while chunk := self.read_some(_READ_CHUNK):
            chunks.append(chunk)
        return b"".join(chunks)

    def read_some(self, size: int) -> bytes:
        try:
            data = self._member.read(size)
        except Exception as exc:  # zipfile reading attacker bytes: any failure is corruption
            raise self._fail(f"corrupt member: {exc}") from None
        self._out += len(data)
        self._check(len(data))
        return data

    def _check(self, produced: int) -> None:
        limits = self._owner.limits
        if self._out > limits.member_bytes:
            raise self._fail(
                f"member grows past the cap of {limits.member_bytes} bytes; stopped"
            )
        if self._out > limits.ratio_floor:
            left = getattr(self._member, "_compress_left", 0)
            consumed = max(1, self._info.compress_size - (left if isinstance(left, int) else 0))
            if self._out > limits.ratio * consumed:
                raise self._fail(
                    f"zip bomb: member expands more than {limits.ratio}:1 "
                    f"({self._out} bytes from {consumed}); stopped",
                )
        budget = self._owner._budget
        with budget.lock:
            budget.used += produced
            over = budget.used > limits.total_bytes
        if over:
            raise self._fail(
                f"total bytes read from this zip pass the cap of {limits.total_bytes}; stopped",
            )


class _Folder:
    __slots__ = ("dirs", "files")

    def __init__(self) -> None:
        self.dirs: dict[str, _Folder] = {}
        self.files: dict[str, zipfile.ZipInfo] = {}


class _ZipTree:
    """The walk's view of a zip: folders implied by member names."""

    def __init__(self, owner: ZipCollection) -> None:
        self._owner = owner
        self._top = _Folder()

    def _folder(self, parts: tuple[str, ...], create: bool = False) -> _Folder:
        folder = self._top
        for part in parts:
            nxt = folder.dirs.get(part)
            if nxt is None:
                if not create:
                    raise FileNotFoundError(2, "no such folder in the zip")
                nxt = folder.dirs[part] = _Folder()
            folder = nxt
        return folder

    def add_dir(self, parts: tuple[str, ...]) -> None:
        self._folder(parts, create=True)

    def add_file(self, parts: tuple[str, ...], info: zipfile.ZipInfo) -> None:
        self._folder(parts[:-1], create=True).files[parts[-1]] = info

    def list_dir(self, parts: tuple[str, ...]) -> list[Entry]:
        folder = self._folder(parts)
        entries = [Entry(name, EntryType.DIR) for name in folder.dirs]
        for name, info in folder.files.items():
            mode = info.external_attr >> 16
            kind = EntryType.SYMLINK if stat.S_ISLNK(mode) else EntryType.FILE
            entries.append(Entry(name, kind))
        return entries

    def stat(self, parts: tuple[str, ...]) -> tuple[int, datetime | None]:
        info = self._folder(parts[:-1]).files[parts[-1]]
        return info.file_size, zip_mtime(info)

    def head(self, parts: tuple[str, ...], size: int) -> bytes:
        return self._owner._head(parts, size)

    def display(self, parts: tuple[str, ...]) -> str:
        return "/".join(parts)


_EPOCH_1601 = datetime(1601, 1, 1, tzinfo=UTC)


def zip_mtime(info: zipfile.ZipInfo) -> datetime | None:
    """UTC mtime: from the NTFS or Unix-time extra field when present, else the DOS time.

    DOS times carry no zone; they are taken as UTC (tools that care write an extra field).
    """
    found = _extra_mtime(info.extra)
    if found is not None:
        return found
    try:
        return datetime(*info.date_time, tzinfo=UTC)
    except (ValueError, TypeError):
        return None


def _extra_mtime(extra: bytes) -> datetime | None:
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + size]
        pos += 4 + size
        try:
            if tag == 0x000A and len(body) >= 32:  # NTFS: reserved, then tag 1 = mtime
                attr_tag, attr_size = struct.unpack_from("<HH", body, 4)
                if attr_tag == 1 and attr_size >= 24:
                    (ticks,) = struct.unpack_from("<Q", body, 8)
                    return _EPOCH_1601 + timedelta(microseconds=ticks // 10)
            if tag == 0x5455 and len(body) >= 5 and body[0] & 1:  # extended timestamp
                (seconds,) = struct.unpack_from("<i", body, 1)
                return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, ValueError, OSError, struct.error):
            return None
    return None
