"""The file stage: web files and files in post-exploitation zones become FILE records.

It runs in the same worker processes as the log readers. For each file readers/files.py
hashes the whole file (streaming, up to a cap) and keeps a bounded prefix; this stage hands
the prefix to the YARA rules (exhunt's own, plus any `--yara DIR`), sniffs the header, and
looks the name and hashes up in the IOC lists (`--iocs FILE`, signature-base formats, read by
readers/files.py) and the known-good baselines (`--baseline`). It states what it saw; the
webshell and postexploit checks judge.

Record fields (all strings): path, zone (web|other), size, mtime, sha256 (md5, sha1 when an
IOC list needs them), header, hash_ioc, baseline (known-good|unknown|''), web_path, note,
unreadable. The structured findings are typed, in the record's `facts` (model.FileFacts): the
YARA rules that matched, the name hits, and a server page's traits (readers/page.py).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

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
from exhunt.readers.files import (
    RULE_SUFFIXES,
    SCRIPT_EXTENSIONS,
    Digest,
    NameIoc,
    looks_like_hash_list,
    odd_name,
    parse_filename_iocs,
    parse_hash_iocs,
    read_file,
    rule_files,
    sniff_header,
    windows_path,
)
from exhunt.readers.page import read_page
from exhunt.share.imported import LogIndicators

_WS = indicators("webshell")
_SCAN = _WS["scan"]
_LOC = _WS["locations"]
# Externals that signature-base rules use; defined so such rules compile and work.
_EXTERNALS = ("filename", "filepath", "extension", "filetype", "owner")


@dataclass(frozen=True, slots=True)
class FileStageSettings:
    """What the file stage loads besides exhunt's own rules (hashable: cached per process)."""

    yara_dirs: tuple[str, ...] = ()
    ioc_files: tuple[str, ...] = ()
    baselines: tuple[str, ...] = ()
    builtin_rules: bool = True
    sigma_dirs: tuple[str, ...] = ()  # event-log rules (checks/sigma.py), not a file stage


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
             if item.name.endswith(RULE_SUFFIXES)]
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
    if looks_like_hash_list(text):
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
    digest = read_file(collection, artifact, known.hash_lengths, web, stats, notes, fields)
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


def _judge_content(
    artifact: Artifact,
    known: Knowledge,
    digest: Digest,
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
