"""Sigma rules compiled into SQL for exhunt's event table (pySigma and its SQLite backend).

Only a hunt whose rules are not in the compiled-rule cache (checks/sigma.py) loads pySigma:
importing it and converting exhunt's rules costs more than a second of CPU.
"""

from __future__ import annotations

from collections.abc import Iterator
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

from exhunt.checks.sigma import (
    _IDENTIFIER,
    _SEVERITY,
    _SOURCES,
    CATEGORY_COLUMN,
    CONTEXT_TAG,
    FULLTEXT_COLUMN,
    TIME_COLUMN,
    SigmaCheck,
)
from exhunt.model import InputProblem
from exhunt.readers.events import EventSelection

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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


def compile_rules(texts: list[tuple[str, str]], where: str,
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
