"""The file stage: web files and files in post-exploitation zones become FILE records.

It runs in the same worker processes as the log readers. For each file it hashes the whole
file (streaming, up to a cap), hands a bounded prefix to the YARA rules (exhunt's own, plus
any `--yara DIR`), sniffs the header, and looks the name and hashes up in the IOC lists
(`--iocs FILE`, signature-base formats) and the known-good baselines (`--baseline`). It
states what it saw; the webshell and postexploit checks judge.

Record fields (all strings): path, zone (web|other), size, mtime, sha256 (md5, sha1 when an
IOC list needs them), header, hash_ioc, baseline (known-good|unknown|''), web_path, note,
unreadable. The structured findings are typed, in the record's `facts` (model.FileFacts): the
YARA rules that matched, the name hits, and a server page's traits (readers/page.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO

import yara_x

from exhunt.collect.base import Artifact, ArtifactKind, Collection
from exhunt.errors import InputError
from exhunt.hunt.baseline import Baseline, load_baselines, web_relative
from exhunt.intel import indicators
from exhunt.model import (
    FileFacts,
    InputProblem,
    LogRecord,
    NameHit,
    PageTraits,
    RecordKind,
    RuleHit,
    iso,
)
from exhunt.readers.base import ReadStats
from exhunt.readers.page import read_page
from exhunt.share.imported import LogIndicators

_WS = indicators("webshell")
_SCAN = _WS["scan"]
_LOC = _WS["locations"]
SCRIPT_EXTENSIONS: tuple[str, ...] = tuple(_LOC["script_extensions"])
# Files outside web roots whose content rules are worth running (scripts and shells).
_OTHER_SCANNED = (*SCRIPT_EXTENSIONS, ".ps1", ".bat", ".cmd", ".vbs", ".js", ".hta", ".txt",
                  ".config")
_READ_BLOCK = 1 << 20
# Externals that signature-base rules use; defined so such rules compile and work.
_EXTERNALS = ("filename", "filepath", "extension", "filetype", "owner")
# A name with these is hiding something (control characters, right-to-left override).
_ODD_CATEGORIES = frozenset({"Cc", "Cf"})
# Bring-your-own rule files.
_RULE_SUFFIXES = (".yar", ".yara")
MAX_RULE_FILES = 5000
MAX_IOC_LINES = 2_000_000
_NUMBER = re.compile(r"-?[0-9]{1,6}")


@dataclass(frozen=True, slots=True)
class FileStageSettings:
    """What the file stage loads besides exhunt's own rules (hashable: cached per process)."""

    yara_dirs: tuple[str, ...] = ()
    ioc_files: tuple[str, ...] = ()
    baselines: tuple[str, ...] = ()
    builtin_rules: bool = True
    sigma_dirs: tuple[str, ...] = ()  # event-log rules (checks/sigma.py), not a file stage


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


def _looks_like_hash_list(text: str) -> bool:
    """signature-base keeps both kinds in .txt files: tell them apart by their lines."""
    sample = [line for _, line in zip(range(50), _ioc_lines(text), strict=False)]
    hashes = sum(1 for _, line in sample if _is_hex(line.partition(";")[0].strip().lower())
                 and len(line.partition(";")[0].strip()) in (32, 40, 64))
    return bool(sample) and hashes * 2 >= len(sample)


# -- rules ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Knowledge:
    """Everything the file stage matches against, loaded once per process."""

    rules: Any | None  # yara_x.Rules
    uses_externals: bool
    hash_iocs: dict[str, str] = field(default_factory=dict)
    name_iocs: list[NameIoc] = field(default_factory=list)
    baseline: Baseline | None = None
    problems: list[InputProblem] = field(default_factory=list)
    # Addresses, agents and URL paths from STIX/MISP IOC files, for the log check ioc.request.
    log_iocs: LogIndicators = field(default_factory=LogIndicators)

    @property
    def hash_lengths(self) -> frozenset[int]:
        return frozenset(len(h) for h in self.hash_iocs)


def builtin_rule_sources() -> list[tuple[str, str]]:
    """exhunt's own rules: (name, text) of each .yar in exhunt/intel/yara."""
    folder = resources.files("exhunt.intel").joinpath("yara")
    found = [(item.name, item.read_text("utf-8")) for item in folder.iterdir()
             if item.name.endswith(_RULE_SUFFIXES)]
    return sorted(found)


def compile_rules(
    sources: Iterable[tuple[str, str]], problems: list[InputProblem]
) -> tuple[Any | None, bool]:
    """Compile rule files one by one into one rule set; a broken file is named and left out."""
    compiler = yara_x.Compiler(relaxed_re_syntax=True)
    compiler.enable_includes(False)
    for name in _EXTERNALS:
        compiler.define_global(name, "")
    count = 0
    externals = False
    for name, text in sources:
        compiler.new_namespace(_namespace(name))
        try:
            compiler.add_source(text, origin=name)
        except yara_x.CompileError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "compile error"
            problems.append(InputProblem(name, f"YARA rule file left out: {first[:300]}"))
            continue
        except (ValueError, TypeError, RecursionError) as exc:
            problems.append(InputProblem(name, f"YARA rule file left out: {exc}"))
            continue
        count += 1
        externals = externals or any(re.search(rf"\b{e}\b", text) for e in _EXTERNALS)
    if not count:
        return None, False
    return compiler.build(), externals


def _namespace(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_]", "_", Path(name).stem) or "rules"
    return stem if stem[0].isalpha() else "r_" + stem


def rule_files(folder: str, problems: list[InputProblem]) -> list[tuple[str, str]]:
    """The .yar/.yara files under a folder (not following links), as (path, text)."""
    found: list[tuple[str, str]] = []
    if not os.path.isdir(folder):
        problems.append(InputProblem(folder, "YARA folder not found: no rules loaded from it"))
        return found
    for top, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            if not name.lower().endswith(_RULE_SUFFIXES):
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


@cache
def knowledge(settings: FileStageSettings) -> Knowledge:
    """Load (once per process) the rules, IOC lists and baselines the settings name."""
    problems: list[InputProblem] = []
    sources: list[tuple[str, str]] = []
    if settings.builtin_rules:
        sources.extend(builtin_rule_sources())
    for folder in settings.yara_dirs:
        sources.extend(rule_files(folder, problems))
    rules, externals = compile_rules(sources, problems)
    known = Knowledge(rules=rules, uses_externals=externals, problems=problems)
    for path in settings.ioc_files:
        _load_iocs(path, known)
    if settings.baselines:
        try:
            known.baseline = load_baselines(settings.baselines, problems)
        except InputError as exc:
            problems.append(InputProblem(",".join(settings.baselines), str(exc)))
    return known


def _load_iocs(path: str, known: Knowledge) -> None:
    try:
        with open(path, "rb") as handle:
            text = handle.read(256 << 20).decode("utf-8", "replace")
    except OSError as exc:
        known.problems.append(InputProblem(path, f"cannot read IOC file: {exc.strerror or exc}"))
        return
    if _load_exchange_iocs(text, path, known):
        return
    if _looks_like_hash_list(text):
        hashes, problems = parse_hash_iocs(text, path)
        known.hash_iocs.update(hashes)
    else:
        names, problems = parse_filename_iocs(text, path)
        known.name_iocs.extend(names)
    known.problems.extend(problems[:50])
    if len(problems) > 50:
        known.problems.append(InputProblem(path, f"{len(problems) - 50} more bad lines skipped"))


def _load_exchange_iocs(text: str, path: str, known: Knowledge) -> bool:
    """A STIX 2.1 bundle or a MISP event (exhunt.share.iocs_in); False if it is neither."""
    from exhunt.share.iocs_in import NAME_IOC_SCORE, read_exchange_iocs

    imported = read_exchange_iocs(text, path)
    if imported is None:
        return False
    known.hash_iocs.update(imported.hashes)
    known.log_iocs.update(imported.log)
    for name, label in sorted(imported.file_names.items()):
        pattern = re.compile(r"(?:^|[\\/])" + re.escape(name) + "$", re.IGNORECASE)
        known.name_iocs.append(NameIoc(pattern, NAME_IOC_SCORE, None, label[:200]))
    known.problems.extend(imported.problems)
    skipped = imported.summary()
    if skipped is not None:
        known.problems.append(skipped)
    return True


def load_problems(settings: FileStageSettings) -> list[InputProblem]:
    """Problems met loading the settings (call in the main process: it also warms the cache),
    the `--sigma` folders' included."""
    from exhunt.checks.sigma import load_sigma  # the event-log rules live with the checks

    return list(knowledge(settings).problems) + list(load_sigma(settings.sigma_dirs).problems)


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


def builtin_name_hits(relative: str) -> list[NameHit]:
    """Web-shell names from the built-in lists that this path carries (weak signals)."""
    names = _WS["names"]
    low = relative.lower().replace("\\", "/")
    base = low.rsplit("/", 1)[-1]
    score = int(names["score"])
    hits: list[NameHit] = []
    if "/owa/auth/" in low and base in names["owa_auth"]:
        hits.append(NameHit(score, f"name {base} is on web-shell lists (owa/auth)"))
    if "/aspnet_client/" in low and base in names["aspnet_client"]:
        hits.append(NameHit(score, f"name {base} is on web-shell lists (aspnet_client)"))
    if base in names["anywhere"]:
        hits.append(NameHit(score, f"name {base} is on web-shell lists"))
    for pattern in names["patterns"]:
        if re.search(pattern, low):
            hits.append(NameHit(score, f"name matches web-shell pattern {pattern}"))
    return hits


# -- scanning one file ----------------------------------------------------------------------


@dataclass(slots=True)
class _Digest:
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


def scan_file(
    collection: Collection, artifact: Artifact, settings: FileStageSettings, stats: ReadStats
) -> LogRecord:
    """One FILE record for one file; problems go to `stats`, never raised."""
    known = knowledge(settings)
    web = artifact.kind is ArtifactKind.WEB_FILE
    fields: dict[str, str] = {
        "path": artifact.path,
        "zone": "web" if web else "other",
        "size": str(artifact.size),
        "mtime": iso(artifact.mtime) or "",
        "web_path": web_relative(artifact.path) or "",
        # The URL an IIS virtual directory serves the file at, when the collection knows it.
        "served_at": artifact.served_at or "",
    }
    notes: list[str] = []
    if odd_name(artifact.path):
        stats.fail("odd file name (control or invisible characters): look at it by hand")
        fields["odd_name"] = "yes"
    digest = _read(collection, artifact, known, web, stats, notes, fields)
    rules: tuple[RuleHit, ...] = ()
    page: PageTraits | None = None
    if digest is not None:
        rules = _judge_content(artifact, known, digest, fields, notes, stats)
        if artifact.path.lower().endswith(SCRIPT_EXTENSIONS) and digest.prefix:
            page = read_page(bytes(digest.prefix))
    if notes:
        fields["note"] = "; ".join(notes)
    stats.records += 1
    facts = FileFacts(rules=rules, names=_names(artifact, known), page=page)
    return LogRecord(RecordKind.FILE, artifact.path, None, artifact.mtime, fields, facts)


def _read(
    collection: Collection,
    artifact: Artifact,
    known: Knowledge,
    web: bool,
    stats: ReadStats,
    notes: list[str],
    fields: dict[str, str],
) -> _Digest | None:
    keep = _prefix_size(artifact, web)
    hash_cap = int(_SCAN["max_hash_bytes"]) if web else min(int(_SCAN["max_hash_bytes"]), 64 << 20)
    hashing = artifact.size <= hash_cap
    digest = _Digest()
    if 32 in known.hash_lengths:
        digest.md5 = hashlib.md5(usedforsecurity=False)
    if 40 in known.hash_lengths:
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


def _pump(stream: BinaryIO, digest: _Digest, keep: int, limit: int) -> None:
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


def _judge_content(
    artifact: Artifact,
    known: Knowledge,
    digest: _Digest,
    fields: dict[str, str],
    notes: list[str],
    stats: ReadStats,
) -> tuple[RuleHit, ...]:
    prefix = bytes(digest.prefix)
    fields["header"] = sniff_header(prefix[: int(_SCAN["header_bytes"])])
    for key in ("sha256", "md5", "sha1"):
        value = fields.get(key)
        if value and value in known.hash_iocs:
            fields["hash_ioc"] = known.hash_iocs[value]
    if known.baseline is not None and _baseline_applies(artifact.path):
        sha = fields.get("sha256")
        if sha:
            fields["baseline"] = "known-good" if known.baseline.knows(sha) else "unknown"
    if known.rules is not None and prefix:
        return tuple(_run_rules(artifact, known, prefix, stats, notes))
    return ()


def _baseline_applies(path: str) -> bool:
    low = path.lower()
    if low.endswith(tuple(_LOC["baseline_skip_suffixes"])):
        return False
    return low.endswith(tuple(_LOC["baseline_extensions"])) and web_relative(path) is not None


def _run_rules(
    artifact: Artifact, known: Knowledge, data: bytes, stats: ReadStats, notes: list[str]
) -> list[RuleHit]:
    scanner = _scanner(known)
    if known.uses_externals:
        name = artifact.path.rsplit("/", 1)[-1]
        scanner.set_global("filename", name)
        scanner.set_global("filepath", windows_path(artifact.path))
        scanner.set_global("extension", os.path.splitext(name)[1].lower())
        scanner.set_global("filetype", sniff_header(data[:64]).upper())
    try:
        results = scanner.scan(data)
    except yara_x.TimeoutError:
        stats.fail("YARA scan timed out; rules did not finish on this file")
        notes.append("rule scan timed out")
        return []
    except yara_x.ScanError as exc:
        stats.fail(f"YARA scan failed: {exc}")
        return []
    out: list[RuleHit] = []
    for rule in results.matching_rules:
        meta = dict(rule.metadata)
        kind = str(meta.get("kind", "family"))
        score = meta.get("score")
        score_value = score if isinstance(score, int) and not isinstance(score, bool) else int(
            _WS["score"]["rule_default"])
        label = str(meta.get("family") or meta.get("description") or rule.identifier)
        label = label.replace("\n", " ")[:160]
        namespace = "" if rule.namespace in ("default", "exhunt_webshells") else (
            rule.namespace + ".")
        out.append(RuleHit(namespace + rule.identifier, kind, max(0, min(score_value, 100)),
                           label))
    return out


_THREAD = threading.local()


def _scanner(known: Knowledge) -> Any:
    # One scanner per rule set per thread: building one per file costs more than scanning, and
    # a yara-x scanner must be used and dropped on the thread that made it (a Dask worker's
    # hunt thread, say; a process-wide cache panicked there and at exit). The rules object is
    # kept beside its scanner, so a new rule set can never meet a stale scanner.
    kept: tuple[Any, Any] | None = getattr(_THREAD, "scanner", None)
    if kept is not None and kept[0] is known.rules:
        return kept[1]
    assert known.rules is not None
    scanner = yara_x.Scanner(known.rules)
    scanner.set_timeout(int(_SCAN["rule_timeout_seconds"]))
    _THREAD.scanner = (known.rules, scanner)
    return scanner


def _names(artifact: Artifact, known: Knowledge) -> tuple[NameHit, ...]:
    hits = builtin_name_hits(artifact.path)
    if known.name_iocs:
        full = windows_path(artifact.path)
        for ioc in known.name_iocs:
            if ioc.matches(full):
                hits.append(NameHit(ioc.score, f"filename IOC {ioc.source} "
                                               f"({ioc.pattern.pattern[:80]})"))
    return tuple(hits)
