"""Known-good baselines: the hashes of a clean server's web files, per Exchange build.

`exhunt baseline build CLEAN_COPY -o FILE` writes one; a hunt given baselines reports every
web file (script pages, scripts, styles, HTML) whose hash is in none of them, as
CompareExchangeHashes did with Microsoft's per-build lists before it was withdrawn.

File format (CSV, one row per file): `sha256,build,relative path`, lines starting with `#`
are comments. The rows of CompareExchangeHashes' `baseline_<build>.csv` files have the same
three columns (`SHA256,build,\\relative\\path`; microsoft/CSS-Exchange
`Security/src/Baselines/`, in git history only), so those load too.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from exhunt.collect import Artifact, ArtifactKind, Collection, open_collection
from exhunt.collect import web_relative as web_relative  # its home; importable here too
from exhunt.errors import InputError
from exhunt.intel.builds import normalize_build
from exhunt.model import InputProblem

FORMAT_LINE = "# exhunt baseline v1: sha256,build,relative path"
MAX_BASELINE_BYTES = 512 << 20
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_BUILD = re.compile(r"^\d+(\.\d+){1,3}$")
_VERSION_LINE = re.compile(rb"^#Version:\s*([0-9.]+)\s*$", re.MULTILINE)

@dataclass(slots=True)
class Baseline:
    """Known-good SHA-256 values, with the builds each came from."""

    hashes: dict[bytes, set[str]] = field(default_factory=dict)
    builds: set[str] = field(default_factory=set)

    def add(self, sha256: str, build: str) -> None:
        self.hashes.setdefault(bytes.fromhex(sha256), set()).add(build)
        self.builds.add(build)

    def knows(self, sha256: str) -> bool:
        try:
            return bytes.fromhex(sha256) in self.hashes
        except ValueError:
            return False

    def __len__(self) -> int:
        return len(self.hashes)


def parse_baseline(text: str, source: str, into: Baseline) -> list[InputProblem]:
    """Add the rows of one baseline file; bad rows are counted and the first few named."""
    problems: list[InputProblem] = []
    bad = 0
    for number, line in enumerate(text.splitlines(), 1):
        try:
            row = next(csv.reader([line]), [])
        except csv.Error:
            row = [line]
        if not row or row[0].lstrip().startswith("#"):
            continue
        sha = row[0].strip().strip('"')
        build = row[1].strip() if len(row) > 1 else ""
        if not _HEX64.fullmatch(sha):
            if number == 1:
                continue  # a header row (CompareExchangeHashes wrote one)
            bad += 1
            if bad <= 5:
                problems.append(InputProblem(source, f"line {number}: not sha256,build,path; "
                                                     "skipped"))
            continue
        into.add(sha.lower(), build or "unknown")
    if bad > 5:
        problems.append(InputProblem(source, f"{bad - 5} more bad lines skipped"))
    return problems


def load_baselines(paths: tuple[str, ...] | list[str], problems: list[InputProblem]) -> Baseline:
    """Every baseline file named (a folder stands for the .csv files in it)."""
    baseline = Baseline()
    for path in _baseline_files(paths, problems):
        try:
            if os.path.getsize(path) > MAX_BASELINE_BYTES:
                problems.append(InputProblem(path, "baseline over 512 MB: not loaded"))
                continue
            text = Path(path).read_bytes().decode("utf-8-sig", "replace")
        except OSError as exc:
            problems.append(InputProblem(path, f"cannot read baseline: {exc.strerror or exc}"))
            continue
        problems.extend(parse_baseline(text, path, baseline))
    if not baseline.hashes:
        raise InputError(f"no usable baseline in {', '.join(paths)}")
    return baseline


def _baseline_files(paths: tuple[str, ...] | list[str],
                    problems: list[InputProblem]) -> Iterator[str]:
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(path, n) for n in os.listdir(path)
                           if n.lower().endswith(".csv"))
            if not found:
                problems.append(InputProblem(path, "no .csv baseline files in this folder"))
            yield from found
        else:
            yield path


@dataclass(frozen=True, slots=True)
class BaselineRow:
    sha256: str
    build: str
    path: str


def build_baseline(source: str, build: str | None = None) -> tuple[list[BaselineRow], str,
                                                                   list[InputProblem]]:
    """Hash every web file of a clean copy. The build is `build`, else the HttpProxy header."""
    if build is not None and not _BUILD.match(build.strip()):
        raise InputError(f"--build {build!r} is not a build number like 15.1.2176.2")
    collection = open_collection(source)
    rows: list[BaselineRow] = []
    with collection:
        artifacts = list(collection.artifacts())
        problems = list(collection.problems)
        found = build.strip() if build else _build_of(collection, artifacts)
        if not found:
            raise InputError(f"cannot tell the Exchange build of {source}: no HttpProxy log "
                             "with a #Version header; give --build")
        for artifact in artifacts:
            if artifact.kind is not ArtifactKind.WEB_FILE:
                continue
            relative = web_relative(artifact.path)
            if relative is None:
                continue
            digest = hashlib.sha256()
            try:
                with collection.open(artifact) as stream:
                    while block := stream.read(1 << 20):
                        digest.update(block)
            except (OSError, InputError) as exc:
                problems.append(InputProblem(artifact.path, f"not in baseline: {exc}"))
                continue
            rows.append(BaselineRow(digest.hexdigest(), found, relative))
    return rows, found, problems


def _build_of(collection: Collection, artifacts: list[Artifact]) -> str | None:
    for artifact in artifacts:
        if artifact.kind is not ArtifactKind.HTTPPROXY_LOG:
            continue
        try:
            with collection.open(artifact) as stream:
                head = stream.read(4096)
        except (OSError, InputError):
            continue
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            head = head.decode("utf-16", "replace").encode("utf-8")
        match = _VERSION_LINE.search(head.replace(b"\r\n", b"\n"))
        if match:
            normal = normalize_build(match.group(1).decode("ascii", "replace"))
            if normal:
                return normal
    return None


def write_baseline(rows: list[BaselineRow], out: str) -> None:
    """Write rows as a baseline CSV (sorted, so two builds of one copy are identical)."""
    with open(out, "w", encoding="utf-8", newline="") as handle:
        handle.write(FORMAT_LINE + "\n")
        writer = csv.writer(handle, lineterminator="\n")
        for row in sorted(rows, key=lambda r: (r.path.lower(), r.sha256)):
            writer.writerow([row.sha256, row.build, row.path])
