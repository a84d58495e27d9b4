"""Run every check over one server's collection: read in parallel, judge, give a verdict.

Log checks judge where the bytes are read: each worker feeds the lines it reads to its own
instances of the checks, and only their findings and partial state come back; the main
process merges the states in listing order (so the report does not depend on which core was
faster) and finalizes. Event and file records still come back and are judged here.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cache

from exhunt.checks.base import Check, HuntContext, registered_checks
from exhunt.collect import Artifact, ArtifactKind, Collection, open_collection
from exhunt.errors import InputError
from exhunt.hunt.files import FileStageSettings, knowledge, load_problems, scan_file
from exhunt.hunt.verdict import decide
from exhunt.intel.builds import normalize_build
from exhunt.model import (
    Finding,
    HuntReport,
    InputProblem,
    KindCoverage,
    LogRecord,
    RecordKind,
)
from exhunt.readers.base import ReadStats
from exhunt.readers.events import EventSelection, read_events
from exhunt.readers.prefilter import LiteralFilter
from exhunt.readers.textlog import LineWanted, read_matched_lines, read_text_log

RECORD_KIND: dict[ArtifactKind, RecordKind] = {
    ArtifactKind.HTTPPROXY_LOG: RecordKind.HTTPPROXY,
    ArtifactKind.ECP_SERVER_LOG: RecordKind.ECP_SERVER,
    ArtifactKind.OAB_GENERATOR_LOG: RecordKind.OAB_GENERATOR,
    ArtifactKind.RPS_HTTP_LOG: RecordKind.RPS_HTTP,
    ArtifactKind.RPS_CMDLET_LOG: RecordKind.RPS_CMDLET,
    ArtifactKind.IIS_LOG: RecordKind.IIS,
    ArtifactKind.EVTX: RecordKind.EVENT,
    ArtifactKind.EVENT_EXPORT: RecordKind.EVENT,
    # File stage (hunt/files.py): web files and post-exploitation zones become FILE records.
    ArtifactKind.WEB_FILE: RecordKind.FILE,
    ArtifactKind.OTHER_FILE: RecordKind.FILE,
}
# Records of these kinds are judged in the process that reads them (text logs).
LOG_KINDS = frozenset(RECORD_KIND.values()) - {RecordKind.EVENT, RecordKind.FILE}
# Below this much log, starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 32 << 20

# Called with (bytes just read, bytes to read in all).
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class ReadTask:
    source: str
    artifact: Artifact
    kind: RecordKind
    literals: tuple[str, ...] | None
    quiet: tuple[str, ...] = ()    # see LiteralFilter: text in which hits of `quieted`
    quieted: tuple[str, ...] = ()  # do not count (pages the product serves all day)
    files: FileStageSettings = field(default_factory=FileStageSettings)  # file stage
    context: HuntContext = field(default_factory=HuntContext)  # for the log checks
    events: EventSelection | None = None  # the events some check reads (None: all)


@dataclass(slots=True)
class ReadResult:
    artifact: Artifact
    kind: RecordKind
    stats: ReadStats
    records: list[LogRecord] = field(default_factory=list)  # events and files only
    findings: list[Finding] = field(default_factory=list)   # log checks, line by line
    problems: list[InputProblem] = field(default_factory=list)  # log checks that failed


@dataclass(slots=True)
class BatchResult:
    """What one worker sends back for a run of artifacts: never the log lines themselves."""

    results: list[ReadResult]
    states: list[Check]  # the log checks fed in this batch, their state to merge


class LogJudge:
    """The log checks of one batch, fed in the process that reads the lines."""

    def __init__(self, context: HuntContext) -> None:
        self._context = context
        self._checks: dict[str, Check] = {}
        self._by_kind: dict[RecordKind, list[Check]] = {}

    def checks_for(self, kind: RecordKind) -> list[Check]:
        if kind not in self._by_kind:
            self._by_kind[kind] = [self._check(cls) for cls in registered_checks()
                                   if kind in cls.kinds]
        return self._by_kind[kind]

    def _check(self, cls: type[Check]) -> Check:
        if cls.id not in self._checks:
            self._checks[cls.id] = cls(self._context)
        return self._checks[cls.id]

    def wanted(self, kind: RecordKind, prefilter: LiteralFilter) -> LineWanted:
        """Whether any check that a line's literals send it to wants it (before parsing)."""
        checks = [(type(check), prefilter.mask_of(check.literals))
                  for check in self.checks_for(kind)]

        def wants(line: bytes, holds: int) -> bool:
            return any((wants < 0 or holds & wants) and cls.wants_line(line)
                       for cls, wants in checks)
        return wants

    def feed(self, lines: Iterable[tuple[LogRecord, int]], kind: RecordKind,
             prefilter: LiteralFilter, result: ReadResult) -> None:
        """Feed one artifact's records, each to the checks whose literals its line holds;
        a check that fails is named and left out for the rest of the artifact."""
        checks = [(check, prefilter.mask_of(check.literals)) for check in self.checks_for(kind)]
        for record, holds in lines:
            for check, wants in checks:
                if wants >= 0 and not holds & wants:
                    continue
                try:
                    result.findings.extend(check.feed(record))
                except Exception as exc:  # a broken check must not end the hunt
                    result.problems.append(InputProblem(
                        record.artifact, f"check {check.id} failed: {exc!r}"))
                    checks = [(c, w) for c, w in checks if c is not check]

    def states(self) -> list[Check]:
        return [self._checks[key] for key in sorted(self._checks)]


def hunt(
    source: str,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    files: FileStageSettings | None = None,
) -> HuntReport:
    """Hunt one server's files. Never raises for bad input: problems go to `errors`.

    `files`: extra YARA folders, IOC lists and baselines for the file stage.
    """
    report = HuntReport(source=source)
    try:
        collection = open_collection(source)
    except InputError as exc:
        report.unreadable = True
        report.errors.append(InputProblem(source, str(exc)))
        return report
    # Artifacts read in this process use the collection already open here (a zip's
    # directory is read once); worker processes open their own.
    _OPEN[source] = collection
    try:
        with collection:
            _hunt_collection(collection, report, workers, progress,
                             files or FileStageSettings())
    finally:
        _OPEN.pop(source, None)
    return report


def _hunt_collection(
    collection: Collection,
    report: HuntReport,
    workers: int | None,
    progress: Progress | None,
    files: FileStageSettings,
) -> None:
    artifacts = [a for a in collection.artifacts() if a.kind in RECORD_KIND]
    report.errors.extend(collection.problems)
    report.exchange_found = bool(collection.exchange_roots)
    if not report.exchange_found:
        report.errors.append(InputProblem("", "no Exchange installation found (no folder "
                                              "holding Logging/HttpProxy): logs not covered"))
    # File stage: load rules/IOCs/baselines here first (named errors; forked workers reuse them).
    report.errors.extend(load_problems(files))
    context = HuntContext(exchange_roots=list(collection.exchange_roots),
                          log_iocs=knowledge(files).log_iocs, sigma_dirs=files.sigma_dirs)
    checks = [cls(context) for cls in registered_checks()]
    events = EventSelection.union(c.events for c in checks if RecordKind.EVENT in c.kinds)
    by_id = {check.id: check for check in checks}
    findings: list[Finding] = []
    # Files first: what they show decides which log lines the checks may leave unread.
    staged = [[a for a in artifacts if RECORD_KIND[a.kind] is RecordKind.FILE],
              [a for a in artifacts if RECORD_KIND[a.kind] is not RecordKind.FILE]]
    total = sum(a.size for a in artifacts)
    for stage in staged:
        # Once per kind, not per artifact: with imported indicators a union holds thousands.
        filters = {kind: filter_for(checks, kind) for kind in {a.kind for a in stage}}
        tasks = [ReadTask(collection.source, a, RECORD_KIND[a.kind], *filters[a.kind],
                          files=files, context=context, events=events) for a in stage]
        for batch in read_all(tasks, workers, progress, total):
            for result in batch.results:
                _account(report, result)
                findings.extend(result.findings)
                report.errors.extend(result.problems)
                findings.extend(_feed(checks, result.records, report))
            _merge(by_id, batch.states, report)
    # Re-entry: shells that log findings named, for checks that join them with requests.
    for finding in findings:
        if finding.webshell_path:
            context.shells_named.setdefault(finding.webshell_path, finding)
    findings.extend(_finalize(checks, report))
    report.findings = sorted(findings, key=_finding_order)
    decide(report)


def literals_for(checks: Iterable[Check], kind: ArtifactKind) -> tuple[str, ...] | None:
    """The prefilter for one kind of artifact: every literal of every check that reads it."""
    record_kind = RECORD_KIND[kind]
    literals: set[str] = set()
    for check in checks:
        if record_kind not in check.kinds:
            continue
        if check.literals is None:
            return None
        literals.update(check.literals)
    return tuple(sorted(literals))


def filter_for(checks: list[Check], kind: ArtifactKind
               ) -> tuple[tuple[str, ...] | None, tuple[str, ...], tuple[str, ...]]:
    """The prefilter's literals for one kind of artifact, the quiet patterns its checks
    declare, and the literals quieted: those only checks with quiet patterns rely on."""
    literals = literals_for(checks, kind)
    record_kind = RECORD_KIND[kind]
    readers = [c for c in checks if record_kind in c.kinds and c.literals]
    quiet = {c: c.quiet_after_files() for c in readers}
    patterns = tuple(sorted({p for found in quiet.values() for p in found}))
    quieted = tuple(sorted(
        lit for lit in {lit for c in readers if quiet[c] for lit in c.literals or ()}
        if all(quiet[c] for c in readers if lit in (c.literals or ()))))
    return literals, patterns, quieted


def _merge(by_id: dict[str, Check], states: list[Check], report: HuntReport) -> None:
    """Fold one batch's partial states into the hunt's checks, in listing order."""
    for state in states:
        try:
            by_id[state.id].merge(state)
        except Exception as exc:  # a broken check must not end the hunt
            report.errors.append(InputProblem("", f"check {state.id} failed to merge: {exc!r}"))


def read_all(
    tasks: list[ReadTask], workers: int | None, progress: Progress | None,
    total: int | None = None,
) -> Iterator[BatchResult]:
    """Read every artifact, in worker processes when there is enough to read.

    Batches are the same whatever the number of workers, and come back in listing order.
    `total`: the bytes progress reports against (by default, those of `tasks`).
    """
    size = sum(t.artifact.size for t in tasks)
    total = size if total is None else total
    workers = workers or os.cpu_count() or 1
    units = _batches(tasks)
    if workers <= 1 or size < PARALLEL_MIN_BYTES or len(tasks) < 2:
        for unit in units:
            batch = read_batch(unit)
            if progress:
                progress(sum(t.artifact.size for t in unit), total)
            yield batch
        return
    # Yielded in listing order, so the report does not depend on which core was faster.
    # Submitted a window at a time (the next one while this one is read), biggest first in
    # each, so one late giant does not leave the other cores idle and the results waiting for
    # their turn stay few, however many logs the copy holds.
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    if context.get_start_method() == "fork":
        for task in tasks:  # compiled once here, not once per worker: forked workers inherit
            _prefilter(task.literals, task.quiet, task.quieted)
    step = WINDOW_PER_WORKER * workers
    windows = [units[i : i + step] for i in range(0, len(units), step)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        def submit(window: list[list[ReadTask]]) -> dict[int, Future[BatchResult]]:
            return {id(u[0]): pool.submit(read_batch, u)
                    for u in sorted(window, key=lambda u: -sum(t.artifact.size for t in u))}

        ahead = submit(windows[0]) if windows else {}
        for k, window in enumerate(windows):
            current, ahead = ahead, submit(windows[k + 1]) if k + 1 < len(windows) else {}
            for unit in window:
                batch = current.pop(id(unit[0])).result()
                if progress:
                    progress(sum(t.artifact.size for t in unit), total)
                yield batch


# Work sent to a worker in one message: up to this many bytes or this many artifacts.
# Thousands of hourly logs of a few hundred kB each cost more in messages than in reading.
BATCH_BYTES = 16 << 20
BATCH_ARTIFACTS = 64
# Batches in flight per worker (see read_all): results wait at most two windows for their turn.
WINDOW_PER_WORKER = 8


def _batches(tasks: list[ReadTask]) -> list[list[ReadTask]]:
    """Tasks in listing order, in runs of small artifacts; a big log goes alone."""
    units: list[list[ReadTask]] = []
    size = 0
    for task in tasks:
        last = units[-1] if units else None
        if (last is not None and len(last) < BATCH_ARTIFACTS
                and size + task.artifact.size <= BATCH_BYTES):
            last.append(task)
            size += task.artifact.size
        else:
            units.append([task])
            size = task.artifact.size
    return units


def read_batch(tasks: list[ReadTask]) -> BatchResult:
    judge = LogJudge(tasks[0].context)
    results = [read_artifact(task, judge) for task in tasks]
    return BatchResult(results, judge.states())


def read_artifact(task: ReadTask, judge: LogJudge | None = None) -> ReadResult:
    """Read one artifact (in any process); a failure is a problem in its stats, never a raise.

    Text-log lines go to `judge`'s checks as they are read; without a judge they are kept.
    """
    stats = ReadStats(artifact=task.artifact.path)
    result = ReadResult(task.artifact, task.kind, stats)
    collection = _collection(task.source)
    prefilter = _prefilter(task.literals, task.quiet, task.quieted)
    if task.kind is RecordKind.FILE:  # file stage: one record per file, bounded reads
        result.records.append(scan_file(collection, task.artifact, task.files, stats))
        return result
    try:
        with collection.open(task.artifact) as stream:
            if task.kind is RecordKind.EVENT:
                local = collection.local_path(task.artifact)
                for record in read_events(stream, task.artifact.path, stats, local_path=local,
                                          select=task.events):
                    if prefilter.matches(_event_text(record)):
                        result.records.append(record)
            elif judge is not None:
                lines = read_matched_lines(stream, task.kind, stats, prefilter,
                                           judge.wanted(task.kind, prefilter))
                judge.feed(lines, task.kind, prefilter, result)
            else:
                result.records.extend(read_text_log(stream, task.kind, stats, prefilter))
    except (OSError, InputError, ValueError) as exc:
        stats.fail(f"cannot read: {exc}")
    return result


# One open collection per source in each worker process, reused for all its artifacts.
_OPEN: dict[str, Collection] = {}


def _collection(source: str) -> Collection:
    if source not in _OPEN:
        _OPEN[source] = open_collection(source)
    return _OPEN[source]


def forget_open_collections() -> None:
    """Close the collections this process keeps for reuse (a long-lived worker that hunts
    hundreds of copies must not keep hundreds of zip directories and handles open)."""
    while _OPEN:
        _OPEN.popitem()[1].close()


@cache
def _prefilter(literals: tuple[str, ...] | None, quiet: tuple[str, ...] = (),
               quieted: tuple[str, ...] = ()) -> LiteralFilter:
    return LiteralFilter(() if literals is None else literals, quiet, quieted)


def _event_text(record: LogRecord) -> bytes:
    return "\n".join(record.fields.values()).encode("utf-8", "surrogatepass")


def _account(report: HuntReport, result: ReadResult) -> None:
    stats = result.stats
    coverage = report.coverage.setdefault(result.kind.value, KindCoverage())
    coverage.merge(KindCoverage(1, stats.records, stats.first, stats.last))
    report.errors.extend(stats.problems)
    if result.artifact.kind is ArtifactKind.WEB_FILE:
        report.web_files.extend((r.get("path"), r.get("sha256")) for r in result.records
                                if r.get("sha256"))
    if result.kind is RecordKind.HTTPPROXY:
        if report.host.exchange_build is None and "Version" in stats.meta:
            report.host.exchange_build = normalize_build(stats.meta["Version"])
        if report.host.name is None and stats.meta.get("ServerHostName"):
            report.host.name = stats.meta["ServerHostName"]


def _feed(checks: list[Check], records: list[LogRecord], report: HuntReport) -> list[Finding]:
    """Events and files, judged in this process."""
    found: list[Finding] = []
    for check in checks:
        wanted = [r for r in records if r.kind in check.kinds]
        if not wanted:
            continue
        try:
            for record in wanted:
                found.extend(check.feed(record))
        except Exception as exc:  # a broken check must not end the hunt
            report.errors.append(InputProblem(wanted[0].artifact, f"check {check.id} failed: "
                                                                  f"{exc!r}"))
    return found


def _finalize(checks: list[Check], report: HuntReport) -> list[Finding]:
    found: list[Finding] = []
    for check in checks:
        try:
            found.extend(check.finalize())
        except Exception as exc:  # a broken check must not end the hunt
            report.errors.append(InputProblem("", f"check {check.id} failed: {exc!r}"))
    return found


def _finding_order(finding: Finding) -> tuple[bool, str, str, int, str, str]:
    when = finding.timestamp.isoformat() if finding.timestamp else ""
    return (finding.timestamp is None, when, finding.artifact, finding.line or 0, finding.check,
            finding.evidence)
