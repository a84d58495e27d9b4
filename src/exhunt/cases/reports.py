"""What a CSV handed to `ingest` is: which Shadowserver report, or no report at all.

Shadowserver names its files `YYYY-MM-DD-<report type>-<identifier>.csv`; a file that lost
that name is known by its columns. Only the Exchange reports make every row Exchange evidence;
in any other scan report a row counts only where its tag or a field names Exchange or one of
its flaws. An event report (src_ip/dst_ip) never opens a case: a honeypot event names the
attacking address, not a server on its owner's network (docs/feeds.md, "Event reports").
Knowledge lives in data/shadowserver_reports.toml; this module only applies it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

EXCHANGE = "exchange"  # every row is Exchange evidence
SCAN = "scan"  # rows are Exchange evidence only where they name Exchange
EVENT = "event"  # src_ip/dst_ip: read, counted, set aside
NOT_A_REPORT = "not a report"

# published name; the identifier is optional (IntelMQ's fixtures and many archives drop it)
_PUBLISHED = re.compile(r"^\d{4}-\d{2}-\d{2}-([a-z0-9_]+)(?:-.*)?\.csv$", re.IGNORECASE)
_CONTACT_COLUMNS = {"network", "org", "email"}


@dataclass(frozen=True, slots=True)
class ReportKind:
    """The report a file holds, the family that decides how its rows are read, and how the
    type was told (from the file name or from the columns)."""

    report: str
    family: str
    by: str

    @property
    def summary(self) -> str:
        return f"Shadowserver {self.report} (known by its {self.by})"


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    text = resources.files("exhunt.cases").joinpath("data", "shadowserver_reports.toml")
    return tomllib.loads(text.read_text("utf-8"))


@lru_cache(maxsize=1)
def _exchange_pattern() -> re.Pattern[str]:
    data = _data()
    words = [re.escape(w) for w in data["exchange_words"]]
    cves = [re.escape(c) for c in data["exchange_cves"]]
    return re.compile(r"(?<![a-z])(" + "|".join(words + cves) + r")(?![a-z])", re.IGNORECASE)


def report_from_name(name: str) -> str | None:
    """The report type a file name gives: the published pattern, else an Exchange report's
    type anywhere in the name (`copy-scan_exchange.csv`)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    match = _PUBLISHED.match(base)
    if match:
        return match.group(1).lower()
    lowered = base.lower()
    for report in sorted(_data()["exchange_reports"], key=len, reverse=True):
        if re.search(rf"(?<![a-z0-9]){report}(?![a-z0-9])", lowered):
            return str(report)
    return None


def family_of(report: str) -> str:
    if report in _data()["exchange_reports"]:
        return EXCHANGE
    if report.startswith(("event4_", "event6_")):
        return EVENT
    return SCAN


def report_from_columns(columns: list[str]) -> ReportKind:
    """The report a header belongs to when the file name does not say."""
    present = set(columns)
    if "ip" not in present:
        if "src_ip" in present:
            return ReportKind("event", EVENT, "columns")
        from exhunt.cases.contacts import ALIASES  # contacts reads feeds, which reads this

        named = {ALIASES.get(c, c) for c in present}
        what = "contacts list" if named >= _CONTACT_COLUMNS else NOT_A_REPORT
        return ReportKind(what, NOT_A_REPORT, "columns")
    data = _data()
    if present <= set(data["exchange_columns"]):
        return ReportKind("scan_exchange", EXCHANGE, "columns")
    best, hits = "unknown report", 0
    for report, layout in data["layouts"].items():
        found = len(present & set(layout))
        if found == len(layout):
            return ReportKind(report, SCAN, "columns")
        if found > hits:
            best, hits = report, found
    return ReportKind(best, SCAN, "columns")


def classify(columns: list[str], name: str) -> ReportKind:
    """What a CSV is, from its (normalised) header and its file name."""
    by_columns = report_from_columns(columns)
    report = report_from_name(name)
    if report is None or by_columns.family == NOT_A_REPORT:
        return by_columns
    family = family_of(report)
    if family == EVENT and "src_ip" not in columns and "ip" in columns:
        family = SCAN  # an event name on a scan layout: read it by what it holds
    return ReportKind(report, family, "file name")


def exchange_mention(row: dict[str, str]) -> tuple[str, str] | None:
    """(column, text) of the first cell naming Exchange or its flaws, the tag first."""
    pattern = _exchange_pattern()
    tag = row.get("tag", "")
    if tag and pattern.search(tag):
        return "tag", tag
    names = _data()["name_columns"]
    for column, value in row.items():
        if column != "tag" and column not in names and value and pattern.search(value):
            return column, value
    return None
