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

import hashlib
import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

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
        rules += _rules_of(texts, "exhunt's Sigma rules", problems)
    for folder in folders:
        rules += _rules_of(list(_rule_files(folder, problems)), folder, problems)
    return SigmaRules(tuple(rules), tuple(problems))


def _rules_of(texts: list[tuple[str, str]], where: str,
              problems: list[InputProblem]) -> list[SigmaCheck]:
    """The rules' checks, from the compiled-rule cache when these very texts were compiled
    before by this very code: pySigma's import and conversion cost over a second a hunt."""
    key = _cache_key(texts, where)
    cached = _cache_read(key)
    if cached is not None:
        rules, found = cached
        problems.extend(found)
        return rules
    from exhunt.checks.sigma_rules import compile_rules  # pySigma loads only here

    before = len(problems)
    rules = compile_rules(texts, where, problems)
    _cache_write(key, rules, problems[before:])
    return rules


def _cache_dir() -> Path:
    """EXHUNT_CACHE, else the user's cache folder (XDG_CACHE_HOME or ~/.cache)."""
    chosen = os.environ.get("EXHUNT_CACHE")
    if chosen:
        return Path(chosen) / "sigma"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "exhunt" / "sigma"


def _cache_key(texts: list[tuple[str, str]], where: str) -> str:
    """What the compiled rules depend on: the texts, where they came from, the log-source
    data, the compiling code and the versions of pySigma and its backend."""
    from importlib import metadata

    digest = hashlib.sha256()
    parts = [where, json.dumps(_SOURCES, sort_keys=True, default=str), *_compiler_code()]
    for package in ("pySigma", "pySigma-backend-sqlite"):
        try:
            parts.append(metadata.version(package))
        except metadata.PackageNotFoundError:
            parts.append("?")
    for source, text in texts:
        parts += [source, text]
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


def _compiler_code() -> list[str]:
    """The compiling code's own text; an install without sources (byte code only) keys on
    the package's version instead."""
    here = Path(__file__).parent
    try:
        return [(here / name).read_text("utf-8") for name in ("sigma.py", "sigma_rules.py")]
    except OSError:
        from importlib import metadata

        return [metadata.version("exhunt")]


def _cache_read(key: str) -> tuple[list[SigmaCheck], list[InputProblem]] | None:
    try:
        doc = json.loads((_cache_dir() / f"{key}.json").read_bytes())
        return ([_check_from_json(item) for item in doc["rules"]],
                [InputProblem(str(a), str(m)) for a, m in doc["problems"]])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no cache, or not one this code wrote: compile


def _cache_write(key: str, rules: list[SigmaCheck], problems: list[InputProblem]) -> None:
    doc = {"rules": [_check_json(rule) for rule in rules],
           "problems": [[p.artifact, p.message] for p in problems]}
    folder = _cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".tmp", delete=False,
                                         encoding="utf-8") as out:
            json.dump(doc, out)
        os.replace(out.name, folder / f"{key}.json")
    except OSError:
        return  # a read-only home: the next hunt compiles again


def _check_json(rule: SigmaCheck) -> dict[str, object]:
    events = rule.events
    return {"name": rule.name, "title": rule.title, "severity": rule.severity.label,
            "context": rule.context, "query": rule.query, "fields": list(rule.fields),
            "source": rule.source, "literals": list(rule.literals),
            "channels": list(rule.channels), "correlation": rule.correlation,
            "events": None if events is None else {
                "event_ids": sorted(events.event_ids), "providers": sorted(events.providers),
                "channels": sorted(events.channels), "data_names": sorted(events.data_names)}}


def _check_from_json(item: dict[str, Any]) -> SigmaCheck:
    events = item["events"]
    return SigmaCheck(
        name=str(item["name"]), title=str(item["title"]), severity=_SEVERITY[item["severity"]],
        context=bool(item["context"]), query=str(item["query"]),
        fields=tuple(map(str, item["fields"])), source=str(item["source"]),
        literals=tuple(map(str, item["literals"])), channels=tuple(map(str, item["channels"])),
        correlation=bool(item["correlation"]),
        events=None if events is None else EventSelection(
            frozenset(events["event_ids"]), frozenset(events["providers"]),
            frozenset(events["channels"]), frozenset(events["data_names"])))


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
