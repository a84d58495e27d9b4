"""Which events a hunt asks for, and the pre-filter that lets the EVTX reader skip the rest."""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from itertools import accumulate

import hyperscan


@dataclass(frozen=True, slots=True)
class EventSelection:
    """The events a hunt's checks read, so the EVTX reader can skip the rest undecoded.

    An event is selected when its EventID is in `event_ids`, or its provider (Name or
    EventSourceName) in `providers`, or its channel in `channels`, or its data holds a value
    named in `data_names`; names compare case-insensitively. It is a superset test: the
    reader may return events outside it (XML and JSON exports are read whole), never fewer.
    No selection at all (None where one is asked for) means every event.
    """

    event_ids: frozenset[str] = frozenset()
    providers: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    data_names: frozenset[str] = frozenset()

    def __or__(self, other: EventSelection) -> EventSelection:
        return EventSelection(self.event_ids | other.event_ids, self.providers | other.providers,
                              self.channels | other.channels, self.data_names | other.data_names)

    @classmethod
    def union(cls, selections: Iterable[EventSelection | None]) -> EventSelection | None:
        """What a set of checks reads together: None (every event) if any of them says None."""
        total = cls()
        for selection in selections:
            if selection is None:
                return None
            total = total | selection
        return total

    def raw_patterns(self) -> list[bytes]:
        """Hyperscan expressions over the evtx parser's compact JSON of one record (its
        shapes: `"EventID":4624` or `"EventID":{"#attributes":{"Qualifiers":..},"#text":1000}`,
        `"Provider":{"#attributes":{"Name":"..",..}}`, `"Channel":".."`, named data as keys)."""
        patterns: list[bytes] = []
        ids = sorted(i for i in self.event_ids if i.isdigit())
        if ids:
            patterns.append(rb'"EventID":(\{"#attributes":\{[^{}\n]*\},"#text":)?"?('
                            + "|".join(ids).encode() + rb')"?[,}]')
        for provider in sorted(self.providers):
            patterns.append(rb'"Provider":\{"#attributes":\{([^{}\n]*,)?"(Name|EventSourceName)":'
                            + _json_pattern(provider))
        patterns += [rb'"Channel":' + _json_pattern(channel) for channel in sorted(self.channels)]
        patterns += [_json_pattern(name) + b":" for name in sorted(self.data_names)]
        return patterns


def _json_pattern(text: str) -> bytes:
    """A hyperscan expression for `text` as a JSON string literal, quotes included; letters
    beyond ASCII in either case (hyperscan's caseless flag knows only ASCII)."""
    parts: list[bytes] = []
    for char in json.dumps(text, ensure_ascii=False):
        if char.isascii():
            parts.append(char.encode() if char.isalnum() else b"\\x%02x" % ord(char))
            continue
        variants = sorted({char, char.lower(), char.upper()})
        parts.append(b"(" + b"|".join(_escaped(v) for v in variants) + b")")
    return b"".join(parts)


def _escaped(text: str) -> bytes:
    return b"".join(b"\\x%02x" % b for b in text.encode("utf-8", "surrogatepass"))


class RawSelector:
    """Finds, in one hyperscan pass over a batch of records' JSON, the records selected."""

    def __init__(self, selection: EventSelection) -> None:
        patterns = selection.raw_patterns()
        self._db: hyperscan.Database | None = None
        if patterns:
            self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            self._db.compile(expressions=patterns, ids=list(range(len(patterns))),
                             elements=len(patterns),
                             flags=[hyperscan.HS_FLAG_CASELESS] * len(patterns))

    def selected(self, texts: list[str]) -> set[int]:
        """Indexes of the texts (one record's JSON each, no raw newline) that are selected."""
        if self._db is None or not texts:
            return set()
        joined = "\n".join(texts).encode("utf-8", "surrogatepass")
        chars = [len(t) + 1 for t in texts]
        if len(joined) + 1 != sum(chars):  # not ASCII: offsets in bytes differ from chars
            chars = [len(t.encode("utf-8", "surrogatepass")) + 1 for t in texts]
        ends = list(accumulate(chars))  # ends[i]: offset just past record i's newline
        found: set[int] = set()

        def on_match(_id: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            found.add(bisect_left(ends, end))

        self._db.scan(joined, match_event_handler=on_match)
        return found


@cache
def raw_selector(selection: EventSelection) -> RawSelector:
    return RawSelector(selection)

