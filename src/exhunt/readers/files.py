"""Files as the file stage reads them: a file's hashes and first bytes, what its header says it
is, its name and its path as they were on the server, and the rule and IOC list formats
(YARA rule folders; signature-base hash and filename IOC lists). Nothing here judges: the file
stage (hunt/files.py) matches what is read against rules, IOCs and baselines, and the webshell
and postexploit checks judge.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from exhunt.collect.base import Artifact, Collection
from exhunt.errors import InputError
from exhunt.intel import indicators
from exhunt.model import InputProblem
from exhunt.readers.base import ReadStats

_WS = indicators("webshell")
_SCAN = _WS["scan"]
SCRIPT_EXTENSIONS: tuple[str, ...] = tuple(_WS["locations"]["script_extensions"])
# Files outside web roots whose content rules are worth running (scripts and shells).
_OTHER_SCANNED = (*SCRIPT_EXTENSIONS, ".ps1", ".bat", ".cmd", ".vbs", ".js", ".hta", ".txt",
                  ".config")
_READ_BLOCK = 1 << 20
# A name with these is hiding something (control characters, right-to-left override).
_ODD_CATEGORIES = frozenset({"Cc", "Cf"})
# Bring-your-own rule files.
RULE_SUFFIXES = (".yar", ".yara")
MAX_RULE_FILES = 5000
MAX_IOC_LINES = 2_000_000
_NUMBER = re.compile(r"-?[0-9]{1,6}")


# -- reading one file -----------------------------------------------------------------------


@dataclass(slots=True)
class Digest:
    """A file as read: its hashes and the first bytes the rules see."""

    sha256: Any = field(default_factory=hashlib.sha256)
    md5: Any | None = None
    sha1: Any | None = None
    prefix: bytearray = field(default_factory=bytearray)
    read: int = 0

    def update(self, block: bytes, keep: int) -> None:
        self.sha256.update(block)
        if self.md5 is not None:
            self.md5.update(block)
        if self.sha1 is not None:
            self.sha1.update(block)
        room = keep - len(self.prefix)
        if room > 0:
            self.prefix += block[:room]
        self.read += len(block)


def read_file(
    collection: Collection,
    artifact: Artifact,
    hash_lengths: frozenset[int],
    web: bool,
    stats: ReadStats,
    notes: list[str],
    fields: dict[str, str],
) -> Digest | None:
    """Hash the whole file (streaming, up to a cap; MD5 and SHA-1 too when an IOC list has
    hashes of those lengths) and keep a bounded prefix for the rules. What went wrong goes to
    `stats`, `notes` and the `unreadable` field; None when the file could not be read."""
    keep = _prefix_size(artifact, web)
    hash_cap = int(_SCAN["max_hash_bytes"]) if web else min(int(_SCAN["max_hash_bytes"]), 64 << 20)
    hashing = artifact.size <= hash_cap
    digest = Digest()
    if 32 in hash_lengths:
        digest.md5 = hashlib.md5(usedforsecurity=False)
    if 40 in hash_lengths:
        digest.sha1 = hashlib.sha1(usedforsecurity=False)
    _note_sparse(collection, artifact, stats, notes)
    try:
        with collection.open(artifact) as stream:
            limit = max(artifact.size, keep) if hashing else max(keep, int(_SCAN["header_bytes"]))
            _pump(stream, digest, keep, limit)
            if hashing and digest.read < artifact.size:
                notes.append(f"file shrank while read ({digest.read} of {artifact.size} bytes)")
    except (OSError, InputError, ValueError) as exc:
        fields["unreadable"] = str(exc)[:300]
        stats.fail(f"cannot read: {exc}")
        return None
    if hashing and digest.read >= artifact.size:
        fields["sha256"] = digest.sha256.hexdigest()
        if digest.md5 is not None:
            fields["md5"] = digest.md5.hexdigest()
        if digest.sha1 is not None:
            fields["sha1"] = digest.sha1.hexdigest()
    elif not hashing:
        notes.append(f"not hashed: larger than {hash_cap} bytes")
        if web:
            stats.fail(f"huge web file ({artifact.size} bytes): not hashed, rules saw the first "
                       f"{len(digest.prefix)} bytes")
    if artifact.size > len(digest.prefix) and web and len(digest.prefix) >= keep:
        notes.append(f"rules saw the first {len(digest.prefix)} of {artifact.size} bytes")
    return digest


def _pump(stream: BinaryIO, digest: Digest, keep: int, limit: int) -> None:
    while digest.read < limit:
        block = stream.read(min(_READ_BLOCK, limit - digest.read))
        if not block:
            return
        digest.update(block, keep)


def _prefix_size(artifact: Artifact, web: bool) -> int:
    if web:
        return int(_SCAN["web_prefix_bytes"])
    if artifact.path.lower().endswith(_OTHER_SCANNED):
        return int(_SCAN["other_prefix_bytes"])
    return int(_SCAN["header_bytes"])


def _note_sparse(
    collection: Collection, artifact: Artifact, stats: ReadStats, notes: list[str]
) -> None:
    if artifact.size < (1 << 20):
        return  # small files cannot waste a scanner's time; skip the path lookup
    local = collection.local_path(artifact)
    if local is None:
        return
    try:
        info = os.lstat(local)
    except OSError:
        return
    blocks = getattr(info, "st_blocks", None)
    if stat.S_ISREG(info.st_mode) and blocks is not None and blocks * 512 * 4 < info.st_size:
        notes.append(f"sparse file: {blocks * 512} bytes on disk of {info.st_size}")
        stats.fail(f"sparse file ({info.st_size} bytes, {blocks * 512} on disk): a size "
                   "meant to exhaust a scanner; hashed and scanned within caps")


# -- headers and names ----------------------------------------------------------------------

# First bytes of formats a responder meets in web roots and staging folders.
# Sources: PST "!BDN" (MS-PST 2.2.2.6), DER SEQUENCE 0x30 0x8x (X.690), MDMP (minidumpapiset.h
# MINIDUMP_SIGNATURE), ZIP "PK\3\4", 7z "7z\xBC\xAF\x27\x1C", RAR "Rar!\x1A\x07", MZ (PE),
# MSCF (cabinet), OLE compound file D0CF11E0.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"!BDN", "pst"),
    (b"MDMP", "minidump"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
    (b"MSCF", "cab"),
    (b"MZ", "pe"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),
    (b"ElfFile\x00", "evtx"),
    (b"\x1f\x8b", "gzip"),
)


def sniff_header(head: bytes) -> str:
    """What a file's first bytes say it is: a format name, `text`, `binary` or `empty`."""
    if not head:
        return "empty"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if len(head) >= 2 and head[0] == 0x30 and head[1] in (0x81, 0x82, 0x83):
        return "der"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf16-text"
    if head.startswith(b"\xef\xbb\xbf"):
        return "text"
    sample = head[:512]
    if b"\x00" in sample:
        return "binary"
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return "binary" if controls * 10 > len(sample) else "text"


def odd_name(path: str) -> bool:
    """A file name with control or invisible formatting characters (e.g. right-to-left)."""
    name = path.rsplit("/", 1)[-1]
    return any(unicodedata.category(ch) in _ODD_CATEGORIES for ch in name) or "\\x" in name


_ANCHORS = ("inetpub", "program files", "program files (x86)", "programdata", "windows",
            "users", "root")


def windows_path(relative: str) -> str:
    """The path as it was on the server (`C:\\...`), for filename IOCs written for Windows."""
    parts = [p for p in re.split(r"[\\/]", relative) if p]
    low = [p.lower() for p in parts]
    for i, name in enumerate(low):
        if name in _ANCHORS or re.fullmatch(r"[a-z](:|%3a)", name):
            start = i + 1 if re.fullmatch(r"[a-z](:|%3a)", name) else i
            return "C:\\" + "\\".join(parts[start:])
    return "\\".join(parts)


# -- IOC lists (signature-base formats) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class NameIoc:
    """One filename IOC: a regex on the full (Windows-style) path, a score, an FP regex."""

    pattern: re.Pattern[str]
    score: int
    false_positive: re.Pattern[str] | None
    source: str

    def matches(self, windows_path: str) -> bool:
        if not self.pattern.search(windows_path):
            return False
        return self.false_positive is None or not self.false_positive.search(windows_path)


def parse_hash_iocs(text: str, source: str) -> tuple[dict[str, str], list[InputProblem]]:
    """`HASH;COMMENT` lines (MD5, SHA-1 or SHA-256; `#` comments). Bad lines are named."""
    hashes: dict[str, str] = {}
    problems: list[InputProblem] = []
    for number, line in _ioc_lines(text):
        value, _, comment = line.partition(";")
        value = value.strip().lower()
        if len(value) not in (32, 40, 64) or not _is_hex(value):
            problems.append(InputProblem(source, f"line {number}: not a hash;comment line; "
                                                 "skipped"))
            continue
        hashes[value] = comment.strip()[:200] or "hash IOC"
    return hashes, problems


def parse_filename_iocs(text: str, source: str) -> tuple[list[NameIoc], list[InputProblem]]:
    """`REGEX;SCORE[;FP-REGEX]` lines (`#` comments). A bad regex or score is named, skipped."""
    found: list[NameIoc] = []
    problems: list[InputProblem] = []
    for number, line in _ioc_lines(text):
        parts = line.split(";")
        if len(parts) < 2:
            problems.append(InputProblem(source, f"line {number}: not a regex;score line; "
                                                 "skipped"))
            continue
        # The regex itself may hold ';': the score is the last field that is a number.
        fp_text = ""
        if len(parts) >= 3 and not _NUMBER.fullmatch(parts[-1].strip()):
            fp_text = parts[-1]
            parts = parts[:-1]
        score_text = parts[-1].strip()
        regex_text = ";".join(parts[:-1])
        if not _NUMBER.fullmatch(score_text):
            problems.append(InputProblem(source, f"line {number}: score {score_text[:20]!r} is "
                                                 "not a number; skipped"))
            continue
        try:
            pattern = re.compile(regex_text, re.IGNORECASE)
            fp = re.compile(fp_text, re.IGNORECASE) if fp_text.strip() else None
        except (re.error, RecursionError, OverflowError) as exc:
            problems.append(InputProblem(source, f"line {number}: bad regex ({exc}); skipped"))
            continue
        found.append(NameIoc(pattern, int(score_text), fp, f"{Path(source).name}:{number}"))
    return found, problems


def _ioc_lines(text: str) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(text.splitlines(), 1):
        if number > MAX_IOC_LINES:
            return
        line = raw.strip()
        if line and not line.startswith("#"):
            yield number, line


def _is_hex(value: str) -> bool:
    return all(ch in "0123456789abcdef" for ch in value)


def looks_like_hash_list(text: str) -> bool:
    """signature-base keeps both kinds in .txt files: tell them apart by their lines."""
    sample = [line for _, line in zip(range(50), _ioc_lines(text), strict=False)]
    hashes = sum(1 for _, line in sample if _is_hex(line.partition(";")[0].strip().lower())
                 and len(line.partition(";")[0].strip()) in (32, 40, 64))
    return bool(sample) and hashes * 2 >= len(sample)


# -- rule folders ---------------------------------------------------------------------------


def rule_files(folder: str, problems: list[InputProblem]) -> list[tuple[str, str]]:
    """The .yar/.yara files under a folder (not following links), as (path, text)."""
    found: list[tuple[str, str]] = []
    if not os.path.isdir(folder):
        problems.append(InputProblem(folder, "YARA folder not found: no rules loaded from it"))
        return found
    for top, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            if not name.lower().endswith(RULE_SUFFIXES):
                continue
            path = os.path.join(top, name)
            if len(found) >= MAX_RULE_FILES:
                problems.append(InputProblem(folder, f"more than {MAX_RULE_FILES} rule files; "
                                                     "the rest left out"))
                return found
            try:
                if os.path.islink(path) or os.path.getsize(path) > 64 << 20:
                    problems.append(InputProblem(path, "rule file left out (link or over "
                                                       "64 MB)"))
                    continue
                with open(path, "rb") as handle:
                    found.append((path, handle.read().decode("utf-8", "replace")))
            except OSError as exc:
                problems.append(InputProblem(path, f"cannot read rule file: {exc.strerror}"))
    return found
