"""Event-log checks written in Sigma, evaluated with pySigma's SQLite backend.

The rules are data a responder can read and extend: exhunt's own in `intel/sigma/`, and any
folder given with `--sigma DIR` (the SigmaHQ rule set works as it is). Events of the log
sources the rules name go into one in-memory SQLite table, one column per field a rule uses;
each rule's query then picks the events it matches. Which events answer which Sigma log source
is data too (`intel/data/sigma_logsources.toml`).

A rule's `name` becomes the check id of its findings (`sigma.<file stem>` without one). The tag
`exhunt.context` makes a rule's matches context: info until the hunt proves a compromise.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path

import yaml
from sigma.backends.sqlite.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.conditions import ConditionOR
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import SigmaNumber, SigmaString

from exhunt.checks.base import Check, HuntContext
from exhunt.intel import indicators
from exhunt.model import (
    Finding,
    InputProblem,
    LogRecord,
    RecordKind,
    Severity,
    Stage,
    iso,
)
from exhunt.readers.events import EventSelection

_SOURCES = indicators("sigma_logsources")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SEVERITY = {s.label: s for s in Severity}
CATEGORY_COLUMN = "exhunt_category"
# Keyword (fieldless) rules search every value of the event, joined (SigmaHQ's MSExchange rules).
FULLTEXT_COLUMN = "exhunt_text"
# When the event happened (ISO 8601, UTC): what correlation rules count within their timespan.
TIME_COLUMN = "exhunt_time"
BASE_COLUMNS = ("Channel", "EventID", "Provider", "Computer", CATEGORY_COLUMN, TIME_COLUMN)
CONTEXT_TAG = "exhunt.context"
RULE_SUFFIXES = (".yml", ".yaml")
# Bounds on what a rule folder may cost (the SigmaHQ set is about 3,000 files of a few kB).
MAX_RULE_FILES = 20_000
MAX_RULE_BYTES = 1 << 20
# Matches reported per rule, and events held for evaluation.
MAX_MATCHES = 50
MAX_EVENTS = 2_000_000
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
# Sysmon's names for what Security 4688 calls otherwise (SigmaHQ's windows-audit pipeline).
_ALIASES = {"NewProcessName": "Image", "ParentProcessName": "ParentImage"}
# Fields shown in a finding's evidence when the event has them, besides the rule's own.
_SHOWN = ("Image", "CommandLine", "ParentImage", "SourceImage", "TargetImage", "GrantedAccess",
          "CallTrace", "TargetFilename", "ScriptBlockText", "Payload", "TaskName", "Path",
          "ActionName", "ServiceName", "ImagePath", "TargetUserName", "MemberName", "MemberSid",
          "SubjectUserName", "User")
_SIDS: dict[str, str] = indicators("sids")["sids"]


@dataclass(frozen=True, slots=True)
class SigmaCheck:
    """One Sigma rule, ready to run: its query over the event table and what to report."""

    name: str
    title: str
    severity: Severity
    context: bool
    query: str
    fields: tuple[str, ...]
    source: str
    # Text every event it matches holds (one of them), for the prefilter; () when there is
    # none to name (a regular expression, a negation): then all events of its channels.
    literals: tuple[str, ...]
    channels: tuple[str, ...]
    # A correlation rule (event_count, temporal, ...): its query yields alerts, not events.
    correlation: bool = False
    # The events it can match (EventIDs its log source or condition requires, else its
    # channels); None: every event.
    events: EventSelection | None = None


@dataclass(frozen=True, slots=True)
class SigmaRules:
    rules: tuple[SigmaCheck, ...]
    problems: tuple[InputProblem, ...]

    @property
    def literals(self) -> tuple[str, ...]:
        """What an event must hold to matter to some rule (the prefilter runs these)."""
        found: set[str] = set()
        for rule in self.rules:
            found.update(rule.literals or rule.channels)
        return tuple(sorted(found))

    @property
    def events(self) -> EventSelection | None:
        """The events some rule can match: the EVTX reader decodes no other."""
        return EventSelection.union(rule.events for rule in self.rules)

    @property
    def columns(self) -> tuple[str, ...]:
        names = dict.fromkeys(BASE_COLUMNS)
        for rule in self.rules:
            names.update(dict.fromkeys(rule.fields))
        return tuple(names)


def _pipeline() -> ProcessingPipeline:
    """Each Sigma log source becomes a condition on the columns exhunt fills."""
    items = [ProcessingItem(AddConditionTransformation({CATEGORY_COLUMN: f"*{category}*"}),
                            rule_conditions=[LogsourceCondition(category=category,
                                                                product="windows")],
                            identifier=f"category-{category}")
             for category in _SOURCES["categories"]]
    items += [ProcessingItem(AddConditionTransformation({"Channel": channel}),
                             rule_conditions=[LogsourceCondition(service=service,
                                                                 product="windows")],
                             identifier=f"service-{service}")
              for service, channel in _SOURCES["services"].items()]
    return ProcessingPipeline(name="exhunt windows events", priority=20, items=items)


def covered(rule: SigmaRule) -> bool:
    source = rule.logsource
    if (source.product or "").lower() != "windows":
        return False
    if source.category:
        return source.category.lower() in _SOURCES["categories"] and (
            not source.service or source.service.lower() in _SOURCES["services"])
    return bool(source.service) and (source.service or "").lower() in _SOURCES["services"]


@cache
def load_sigma(folders: tuple[str, ...] = (), builtin: bool = True) -> SigmaRules:
    """exhunt's rules (unless `builtin` is False) and every rule under `folders`.

    A file that is not a valid Sigma rule is a named problem; rules for log sources exhunt does
    not read are counted in one problem per folder. Cached: loaded once per process."""
    rules: list[SigmaCheck] = []
    problems: list[InputProblem] = []
    if builtin:
        own = resources.files("exhunt.intel").joinpath("sigma")
        texts = [(f"exhunt:{p.name}", p.read_text("utf-8")) for p in sorted(
            own.iterdir(), key=lambda p: p.name) if p.name.endswith(RULE_SUFFIXES)]
        rules += _compile(texts, "exhunt's Sigma rules", problems)
    for folder in folders:
        rules += _compile(list(_rule_files(folder, problems)), folder, problems)
    return SigmaRules(tuple(rules), tuple(problems))


def _rule_files(folder: str, problems: list[InputProblem]) -> Iterator[tuple[str, str]]:
    root = Path(folder)
    if not root.is_dir():
        problems.append(InputProblem(folder, "--sigma: not a folder"))
        return
    count = 0
    for path in sorted(root.rglob("*")):
        if not path.name.lower().endswith(RULE_SUFFIXES) or path.is_symlink():
            continue
        count += 1
        if count > MAX_RULE_FILES:
            problems.append(InputProblem(folder, f"more than {MAX_RULE_FILES} rule files: "
                                                 "the rest were not read"))
            return
        try:
            if path.stat().st_size > MAX_RULE_BYTES:
                problems.append(InputProblem(str(path), "Sigma rule larger than 1 MiB: skipped"))
                continue
            yield str(path), path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(InputProblem(str(path), f"cannot read Sigma rule: {exc}"))


def _compile(texts: list[tuple[str, str]], where: str,
             problems: list[InputProblem]) -> list[SigmaCheck]:
    backend = sqliteBackend(  # type: ignore[no-untyped-call]
        processing_pipeline=_pipeline(), fulltext_field=FULLTEXT_COLUMN,
        timestamp_field=TIME_COLUMN)
    out: list[SigmaCheck] = []
    skipped = 0
    parsed: list[tuple[str, SigmaCollection]] = []
    for source, text in texts:
        try:
            # libyaml's loader when present: pure-Python YAML was most of the load time.
            # References are resolved below, across the folder (a correlation may name a rule
            # of another file).
            collection = SigmaCollection.from_dicts(list(yaml.load_all(text, Loader=_LOADER)),
                                                    resolve_references=False)
            for error in collection.errors[:1]:
                raise error
        except Exception as exc:  # YAML or Sigma: a bad rule file is named, never fatal
            problems.append(InputProblem(source, f"not a valid Sigma rule: {exc}"))
            continue
        parsed.append((source, collection))
    correlations = _resolved_correlations(parsed, problems)
    for source, collection in parsed:
        for rule in collection.rules:
            if not isinstance(rule, SigmaRule):
                continue
            elif not covered(rule):
                skipped += 1
            else:
                try:
                    out += _check(rule, backend, source)
                except (SigmaError, ValueError, TypeError, AttributeError, KeyError) as exc:
                    problems.append(InputProblem(source, f"Sigma rule not evaluated: {exc}"))
    # After the rules they count: the backend keeps each referenced rule's condition.
    for source, correlation in correlations:
        try:
            out.append(_correlation_check(correlation, backend, source))
        except Exception as exc:  # pySigma's and the backend's own errors: named, never fatal
            problems.append(_not_evaluated(source, correlation, exc))
    if skipped:
        problems.append(InputProblem(where, f"{skipped} Sigma rules skipped: their log source "
                                            "is not a Windows event log exhunt reads"))
    return out


def _resolved_correlations(parsed: list[tuple[str, SigmaCollection]],
                           problems: list[InputProblem]
                           ) -> list[tuple[str, SigmaCorrelationRule]]:
    """Correlation rules whose rules were found in the folder (before those rules are
    converted: the backend then keeps their conditions for the correlation)."""
    everything = SigmaCollection.merge([c for _, c in parsed], resolve_references=False)
    found: list[tuple[str, SigmaCorrelationRule]] = []
    for source, collection in parsed:
        for rule in collection.rules:
            if not isinstance(rule, SigmaCorrelationRule):
                continue
            try:
                rule.resolve_rule_references(everything)
            except Exception as exc:  # a rule it names is missing: named, never fatal
                problems.append(_not_evaluated(source, rule, exc))
                continue
            found.append((source, rule))
    return found


def _not_evaluated(source: str, rule: SigmaCorrelationRule, why: Exception) -> InputProblem:
    label = rule.name or rule.title
    return InputProblem(source, f"Sigma correlation rule {label!r} not evaluated: {why}")


def _correlation_check(rule: SigmaCorrelationRule, backend: sqliteBackend,
                       source: str) -> SigmaCheck:
    """A correlation rule over the rules it names (resolved across the folder)."""
    counted = [reference.rule for reference in rule.rules or ()]
    if not all(isinstance(r, SigmaRule) and covered(r) for r in counted):
        raise ValueError("it counts rules whose log source exhunt does not read, or other "
                         "correlations")
    queries = backend.convert_correlation_rule(rule)  # type: ignore[no-untyped-call]
    if len(queries) != 1 or not isinstance(queries[0], str):
        raise ValueError("the rule did not become one query")
    # Group-by names are columns, unless they are aliases (a name per counted rule's field).
    aliases = {alias.alias: alias for alias in rule.aliases or ()}
    fields: dict[str, None] = dict.fromkeys(f for f in rule.group_by or () if f not in aliases)
    for alias in aliases.values():
        fields.update(dict.fromkeys(alias.mapping.values()))
    channels: set[str] = set()
    for counted_rule in counted:
        assert isinstance(counted_rule, SigmaRule)
        fields.update(dict.fromkeys(f for detection in counted_rule.detection.detections.values()
                                    for f in _fields(detection)))
        channels.update(_channels(counted_rule))
    if FULLTEXT_COLUMN in queries[0]:
        fields[FULLTEXT_COLUMN] = None
    bad = [f for f in fields if not _IDENTIFIER.match(f)]
    if bad:
        raise ValueError(f"field names exhunt cannot hold: {bad[:3]}")
    level = rule.level.name.lower() if rule.level is not None else "medium"
    tags = {f"{t.namespace}.{t.name}".lower() for t in rule.tags}
    stem = Path(source.split(":", 1)[-1]).stem
    return SigmaCheck(
        name=rule.name or f"sigma.{stem}", title=rule.title, context=CONTEXT_TAG in tags,
        severity=_SEVERITY[_SOURCES["levels"].get(level, "medium")], query=queries[0],
        fields=tuple(fields), source=source, literals=_counted_literals(counted),
        channels=tuple(sorted(channels)), correlation=True,
        events=EventSelection.union(_events(r) for r in counted if isinstance(r, SigmaRule)))


def _counted_literals(counted: list[SigmaRule | SigmaCorrelationRule]) -> tuple[str, ...]:
    """What every event a correlation counts holds: the union of its rules' literals, or ()
    (all events of its channels) when one of them names none."""
    found: set[str] = set()
    for rule in counted:
        literals = required_literals(rule) if isinstance(rule, SigmaRule) else None
        if not literals:
            return ()
        found |= literals
    return tuple(sorted(found))


def _check(rule: SigmaRule, backend: sqliteBackend, source: str) -> list[SigmaCheck]:
    """The rule's check; none for a rule only a correlation counts (no `generate: true`)."""
    queries = backend.convert_rule(rule)  # type: ignore[no-untyped-call]
    if not queries and rule._backreferences:
        return []
    if len(queries) != 1 or not isinstance(queries[0], str):
        raise ValueError("the rule did not become one query")
    query = queries[0]
    prefix = "SELECT * FROM logs"
    if not query.startswith(prefix):
        raise ValueError("unexpected query shape")
    fields = tuple(dict.fromkeys(f for detection in rule.detection.detections.values()
                                 for f in _fields(detection)))
    if FULLTEXT_COLUMN in query:
        fields += (FULLTEXT_COLUMN,)
    bad = [f for f in fields if not _IDENTIFIER.match(f)]
    if bad:
        raise ValueError(f"field names exhunt cannot hold: {bad[:3]}")
    stem = Path(source.split(":", 1)[-1]).stem
    level = rule.level.name.lower() if rule.level is not None else "medium"
    tags = {f"{t.namespace}.{t.name}".lower() for t in rule.tags}
    return [SigmaCheck(
        name=rule.name or f"sigma.{stem}", title=rule.title, context=CONTEXT_TAG in tags,
        severity=_SEVERITY[_SOURCES["levels"].get(level, "medium")],
        query="SELECT rowid FROM logs" + query[len(prefix):], fields=fields, source=source,
        literals=tuple(sorted(required_literals(rule) or ())), channels=_channels(rule),
        events=_events(rule))]


def _channels(rule: SigmaRule) -> tuple[str, ...]:
    source = rule.logsource
    if source.category:
        return tuple(sorted({c for c, _ in _SOURCES["categories"][source.category.lower()]}))
    return (_SOURCES["services"][(source.service or "").lower()],)


def _events(rule: SigmaRule) -> EventSelection:
    """A category names its (channel, EventID) pairs; a service rule names its EventIDs in
    its condition, or else it reads its whole channel."""
    source = rule.logsource
    if source.category:
        pairs = _SOURCES["categories"][source.category.lower()]
        return EventSelection(event_ids=frozenset(event for _, event in pairs))
    ids = (_condition_literals(rule.detection.condition[0].strip(), rule.detection.detections,
                               only="EventID") if len(rule.detection.condition) == 1 else None)
    if ids:
        return EventSelection(event_ids=frozenset(ids))
    return EventSelection(channels=frozenset(_channels(rule)))


def required_literals(rule: SigmaRule) -> set[str] | None:
    """Literals one of which every event the rule matches must hold, or None when the
    condition does not say (aggregations, `1 of`, negation only, regular expressions)."""
    if len(rule.detection.condition) != 1:
        return None
    return _condition_literals(rule.detection.condition[0].strip(), rule.detection.detections)


def _condition_literals(condition: str, detections: dict[str, SigmaDetection],
                        only: str | None = None) -> set[str] | None:
    condition = _unwrap(condition)
    alternatives = _split_top(condition, " or ")
    if len(alternatives) > 1:
        found: set[str] = set()
        for part in alternatives:
            literals = _condition_literals(part, detections, only)
            if literals is None:
                return None
            found |= literals
        return found
    for term in _split_top(condition, " and "):
        term = term.strip()
        if term.startswith("(") and term.endswith(")"):
            literals = _condition_literals(term, detections, only)
        elif term in detections:
            literals = _detection_literals(detections[term], only)
        else:
            continue  # `not x`, `1 of x*`: says nothing an event must hold
        if literals:
            return literals
    return None


def _detection_literals(detection: SigmaDetection, only: str | None = None) -> set[str] | None:
    """An item every match of the detection satisfies (the items of a map are ANDed), as
    literals; a list of maps (ORed) needs literals from each. `only`: items of that field."""
    items = detection.detection_items
    if detection.item_linking is ConditionOR:
        found: set[str] = set()
        for item in items:
            literals = (_detection_literals(item, only) if isinstance(item, SigmaDetection)
                        else _item_literals(item, only))
            if not literals:
                return None
            found |= literals
        return found
    for item in items:
        literals = (_detection_literals(item, only) if isinstance(item, SigmaDetection)
                    else _item_literals(item, only))
        if literals:
            return literals
    return None


def _item_literals(item: SigmaDetectionItem, only: str | None = None) -> set[str] | None:
    if only is not None and item.field != only:
        return None
    if item.field in ("Channel", CATEGORY_COLUMN) or not item.value or (item.modifiers and any(
            m.__name__ not in _PLAIN_MODIFIERS for m in item.modifiers)):
        return None
    found: set[str] = set()
    for value in item.value:
        if isinstance(value, SigmaNumber):
            found.add(str(value.number))
        elif isinstance(value, SigmaString):
            parts = [p for p in value.s if isinstance(p, str)]
            best = max(parts, key=len, default="")
            if len(best) < 3:
                return None
            found.add(best)
        else:
            return None
    return found


# Modifiers after which a value's text still appears as it is in the event.
_PLAIN_MODIFIERS = frozenset({"SigmaContainsModifier", "SigmaStartswithModifier",
                              "SigmaEndswithModifier", "SigmaAllModifier"})


def _unwrap(text: str) -> str:
    text = text.strip()
    while text.startswith("(") and text.endswith(")") and _closes_at_end(text):
        text = text[1:-1].strip()
    return text


def _closes_at_end(text: str) -> bool:
    depth = 0
    for at, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and at < len(text) - 1:
            return False
    return True


def _split_top(text: str, word: str) -> list[str]:
    """`text` split on `word` (' and ' / ' or ') outside parentheses."""
    parts: list[str] = []
    depth = 0
    start = 0
    low = text.lower()
    at = 0
    while at < len(text):
        depth += {"(": 1, ")": -1}.get(text[at], 0)
        if depth == 0 and low.startswith(word, at):
            parts.append(text[start:at])
            at += len(word)
            start = at
            continue
        at += 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _fields(detection: SigmaDetection) -> Iterator[str]:
    for item in detection.detection_items:
        if isinstance(item, SigmaDetectionItem):
            if item.field:
                yield item.field
        else:
            yield from _fields(item)


def event_row(record: LogRecord) -> dict[str, str]:
    """An event as Sigma sees it: data by name, unnamed data joined as `Data`, the category."""
    row: dict[str, str] = {}
    unnamed: list[str] = []
    for key, value in record.fields.items():
        if key.startswith("Data."):
            name = key[5:]
            row.setdefault(name, value)
            alias = _ALIASES.get(name)
            if alias:
                row.setdefault(alias, value)
        elif key.startswith("Data["):
            unnamed.append(value)
        else:
            row[key] = value
    if unnamed:
        row.setdefault("Data", "\n".join(unnamed))
    pair = (record.get("Channel").lower(), record.get("EventID"))
    row[CATEGORY_COLUMN] = _CATEGORY_OF.get(pair, "")
    text = row.get("Data") or record.get("Message")
    if text and not any(key.startswith("Data.") for key in record.fields):
        for key in (*row[CATEGORY_COLUMN].split("\n"), "|".join(pair)):
            for name in _UNNAMED.get(key, ()):
                row.setdefault(name, text)
    return row


def _categories_of() -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], list[str]] = {}
    for category, pairs in _SOURCES["categories"].items():
        for channel, event in pairs:
            found.setdefault((channel, event), []).append(category)
    return {pair: "\n".join(names) for pair, names in found.items()}


_CATEGORY_OF = _categories_of()
_UNNAMED: dict[str, list[str]] = _SOURCES.get("unnamed", {})
# Channels some log source reads: events of other channels never reach the table.
_CHANNELS = frozenset(_SOURCES["services"].values()) | {c for c, _ in _CATEGORY_OF}


class SigmaEvents(Check):
    """Every Sigma rule (exhunt's and `--sigma`) over the events this hunt read."""

    id = "sigma"
    title = "Sigma rule matched"
    severity = Severity.MEDIUM
    stage = Stage.POST_EXPLOITATION
    cves = ()
    kinds = frozenset({RecordKind.EVENT})

    def __init__(self, context: HuntContext) -> None:
        super().__init__(context)
        self.rules = load_sigma(tuple(context.sigma_dirs))
        # The prefilter of this hunt's rules (they depend on --sigma, so per instance).
        vars(self)["literals"] = self.rules.literals
        vars(self)["events"] = self.rules.events
        self._columns = self.rules.columns
        self._db = sqlite3.connect(":memory:")
        self._db.create_function("regexp", 2, _regexp, deterministic=True)
        columns = ", ".join(f'"{c}" TEXT COLLATE NOCASE' for c in self._columns)
        self._db.execute(f"CREATE TABLE logs ({columns})")
        names = ", ".join(f'"{c}"' for c in self._columns)
        self._insert = (f"INSERT INTO logs (rowid, {names}) VALUES "
                        f"(?, {', '.join('?' for _ in self._columns)})")
        self._records: list[LogRecord] = []
        self._rows: list[list[object]] = []
        self._fulltext = FULLTEXT_COLUMN in self._columns

    def feed(self, record: LogRecord) -> Iterable[Finding]:
        if (not self.rules.rules or len(self._records) >= MAX_EVENTS
                or record.get("Channel").lower() not in _CHANNELS):
            return ()
        row = event_row(record)
        if self._fulltext:
            row[FULLTEXT_COLUMN] = "\n".join(record.fields.values())
        if record.timestamp is not None:
            row[TIME_COLUMN] = _utc(record.timestamp).isoformat()
        self._records.append(record)
        self._rows.append([len(self._records)] + [row.get(c) for c in self._columns])
        if len(self._rows) >= 10_000:
            self._flush()
        return ()

    def _flush(self) -> None:
        self._db.executemany(self._insert, self._rows)
        self._rows.clear()

    def finalize(self) -> Iterable[Finding]:
        self._flush()
        failed: list[str] = []
        for rule in self.rules.rules:
            try:
                if rule.correlation:
                    yield from self._alerts(rule)
                    continue
                rows = self._db.execute(rule.query + f" LIMIT {MAX_MATCHES}").fetchall()
            except sqlite3.Error as exc:  # one bad rule must not silence the others
                failed.append(f"{rule.source}: {exc}")
                continue
            for (rowid,) in rows:
                yield self._finding(rule, self._records[int(rowid) - 1])
        self._db.close()
        if failed:  # after every other rule ran: the engine names it in the report's problems
            raise RuntimeError(f"{len(failed)} Sigma rules failed: {'; '.join(failed[:5])}")

    def _alerts(self, rule: SigmaCheck) -> Iterator[Finding]:
        """A correlation's alerts, one per group (its sliding windows overlap): the finding
        sits on the last event counted and names how many, when, and for what group."""
        cursor = self._db.execute(f"SELECT group_keys, metric_name, metric_value, event_ids, "
                                  f"window_start, window_end FROM ({rule.query})")
        groups: set[str] = set()
        for keys, metric, value, event_ids, start, end in cursor:
            if keys in groups:
                continue
            groups.add(keys)
            rowids = [int(e.rsplit(":", 1)[-1]) for e in json.loads(event_ids)]
            if not rowids:
                continue
            span = f"{_when(start)} to {_when(end)}"
            what = (f"correlation ({metric} {value} over {len(rowids)} events, {span}, "
                    f"grouped by {keys})")
            yield self._finding(rule, self._records[max(rowids) - 1], what)
            if len(groups) >= MAX_MATCHES:
                return

    def _finding(self, rule: SigmaCheck, record: LogRecord, what: str = "") -> Finding:
        row = event_row(record)
        shown = dict.fromkeys((*rule.fields, *_SHOWN))
        lines = [f"{name}: {_named(name, row[name])}" for name in shown
                 if name not in (*BASE_COLUMNS, FULLTEXT_COLUMN) and _present(row.get(name))]
        if _present(row.get("MemberSid")) or _present(row.get("MemberName")):
            lines.insert(0, "member: " + member_label(row.get("MemberName", ""),
                                                      row.get("MemberSid", "")))
        if FULLTEXT_COLUMN in rule.fields:
            lines.append("event: " + " | ".join(v for v in record.fields.values() if v)[:1500])
        head = (f"Sigma rule {rule.name} ({rule.source}): {what or ''}"
                f"{'; last ' if what else ''}{record.get('Channel')} event "
                f"{record.get('EventID')}")
        found = self.finding(record, "\n".join([head, *lines]), title=rule.title,
                             severity=Severity.INFO if rule.context else rule.severity)
        return replace(found, check=rule.name, context=rule.context)


def member_label(name: str, sid: str) -> str:
    """A group member by name and SID: 4732's MemberName is often empty or '-' (a local account
    or a well-known principal), so the SID is named from the well-known list when it can be."""
    name, sid = _present(name), _present(sid)
    if not name and sid:
        name = well_known_sid(sid)
    if name and sid:
        return f"{name} ({sid})"
    return name or sid or "?"


def well_known_sid(sid: str) -> str:
    upper = sid.strip().upper()
    if upper in _SIDS:
        return _SIDS[upper]
    if upper.startswith("S-1-5-21-"):
        return _SIDS.get("-" + upper.rsplit("-", 1)[-1], "")
    return ""


def _named(field: str, value: str) -> str:
    """A SID-valued field with its well-known name after it (`S-1-5-20 (NETWORK SERVICE)`)."""
    known = well_known_sid(value) if field.endswith("Sid") else ""
    return f"{value} ({known})" if known else value


def _present(value: str | None) -> str:
    """Windows writes '-' for an absent account field."""
    value = (value or "").strip()
    return "" if value == "-" else value


def _when(seconds: object) -> str:
    if not isinstance(seconds, (int, float)):
        return "?"
    return iso(datetime.fromtimestamp(seconds, UTC)) or "?"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# A rule's regular expression runs on at most this much of a value (hostile values are long).
_REGEX_SPAN = 8192


def _regexp(pattern: str | None, value: str | None) -> bool:
    if pattern is None or value is None:
        return False
    try:
        return _compiled(pattern).search(value[:_REGEX_SPAN]) is not None
    except re.error:
        return False


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
