"""The check table: every registered check with what it sees and its public sources.

The check classes say what they are (id, stage, severity); `intel/data/checks.toml` says, in a
responder's words, what each one sees and where that knowledge comes from. `exhunt checks`
prints this table and the README's table is its Markdown output.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources

from exhunt.checks.base import registered_checks


@dataclass(frozen=True, slots=True)
class Source:
    title: str
    url: str


@dataclass(frozen=True, slots=True)
class CheckEntry:
    id: str
    stage: str
    severity: str
    sees: str
    sources: tuple[Source, ...]

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "stage": self.stage, "severity": self.severity,
                "sees": self.sees,
                "sources": [{"title": s.title, "url": s.url} for s in self.sources]}


def described() -> dict[str, object]:
    """The data file as read: `sources` by key and `checks` by id."""
    text = resources.files("exhunt.intel").joinpath("data/checks.toml").read_text("utf-8")
    return tomllib.loads(text)


def check_table() -> list[CheckEntry]:
    """One entry per registered check, in id order; a check the data file does not describe
    is still listed (with nothing seen and no source) so that it cannot hide."""
    data = described()
    sources: dict[str, dict[str, str]] = data.get("sources", {})  # type: ignore[assignment]
    checks: dict[str, dict[str, object]] = data.get("checks", {})  # type: ignore[assignment]
    entries = []
    for check in registered_checks():
        about = checks.get(check.id, {})
        keys = about.get("sources", [])
        cited = [str(k) for k in keys] if isinstance(keys, list) else []
        entries.append(CheckEntry(
            id=check.id, stage=check.stage.value, severity=check.severity.label,
            sees=str(about.get("sees", "")),
            sources=tuple(Source(sources[k]["title"], sources[k]["url"])
                          for k in cited if k in sources)))
    return entries


def markdown(entries: list[CheckEntry]) -> str:
    """The table as the README shows it."""
    lines = ["| check | stage | severity | what it sees | sources |", "|---|---|---|---|---|"]
    for e in entries:
        cited = ", ".join(f"[{s.title}]({s.url})" for s in e.sources)
        lines.append(f"| `{e.id}` | {e.stage} | {e.severity} | {e.sees} | {cited} |")
    return "\n".join(lines) + "\n"


def text(entries: list[CheckEntry]) -> str:
    """The table for a terminal: one block per check."""
    blocks = []
    for e in entries:
        lines = [f"{e.id}  ({e.stage}, {e.severity})", f"  sees: {e.sees}"]
        lines += [f"  source: {s.title} <{s.url}>" for s in e.sources]
        blocks.append("\n".join(lines))
    return "\n".join(blocks) + "\n"
