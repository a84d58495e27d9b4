"""Indicators in: a STIX 2.1 bundle or a MISP event given to `--iocs` joins the hunt.

What the hunt can match joins it: addresses, user agents and URL paths go to the log check
`ioc.request`; hashes (MD5, SHA-1, SHA-256) and file names to the file stage. Everything else
is counted and named as skipped, by kind (a domain, a compound STIX pattern, a MISP attribute
not flagged `to_ids`: a victim's own address must never become an attacker's).

STIX: indicators with `pattern_type` stix whose pattern is one observation of equality
comparisons joined by OR (`[ipv4-addr:value = '...' OR ...]`); AND, FOLLOWEDBY, qualifiers,
LIKE/MATCHES and ranges are not single values a log line can be held against, so they are
skipped. MISP: attributes (standalone and in objects) of the types below with `to_ids` set.
The readers judge nothing and run nothing: a hostile file is named, and the hunt goes on.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from exhunt.model import InputProblem
from exhunt.share.imported import LogIndicators, normal_address, normal_agent, normal_path

MAX_INDICATORS = 2_000_000
MAX_PATTERN_CHARS = 20_000
MAX_VALUE_CHARS = 2_048
NAME_IOC_SCORE = 70  # a shell name a peer shared: high on its own (webshell.toml's scale)
_HASH_LENGTHS = {32: "MD5", 40: "SHA-1", 64: "SHA-256"}
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'", re.DOTALL)
_COMPOUND = re.compile(r"\b(?:AND|FOLLOWEDBY|WITHIN|REPEATS|START|STOP)\b")
_HTTP = ["extensions", "http-request-ext"]
# The one shape exporters write most, read without the (slow, ANTLR) pattern parser:
# [object-type:path = 'literal'] with a plain path. Anything else goes to the parser.
_SIMPLE = re.compile(r"^\[\s*([a-z0-9-]+):([A-Za-z0-9_.'-]+?)\s*=\s*('(?:[^'\\]|\\.)*')\s*\]$",
                     re.DOTALL)
_PATH_PART = re.compile(r"'([^']*)'|([A-Za-z0-9_-]+)")


@dataclass(slots=True)
class Imported:
    """What one file gave the hunt, and what it could not."""

    source: str
    log: LogIndicators = field(default_factory=LogIndicators)
    hashes: dict[str, str] = field(default_factory=dict)  # hex -> label
    file_names: dict[str, str] = field(default_factory=dict)  # lower-case name -> label
    skipped: Counter[str] = field(default_factory=Counter)
    problems: list[InputProblem] = field(default_factory=list)

    @property
    def used(self) -> int:
        log = self.log
        return (len(log.addresses) + len(log.user_agents) + len(log.url_paths)
                + len(self.hashes) + len(self.file_names))

    def summary(self) -> InputProblem | None:
        """The skipped kinds, named (a problem entry, so the report shows them)."""
        if not self.skipped:
            return None
        kinds = ", ".join(f"{kind} ({count})" for kind, count in self.skipped.most_common(20))
        return InputProblem(self.source, f"{self.used} indicators used; "
                                         f"{sum(self.skipped.values())} skipped: {kinds}")

    def add(self, kind: str, value: str, label: str) -> None:
        value = value.strip()
        if not value or len(value) > MAX_VALUE_CHARS:
            self.skipped[f"{kind}: empty or over {MAX_VALUE_CHARS} characters"] += 1
            return
        if self.used >= MAX_INDICATORS:
            self.skipped[f"over {MAX_INDICATORS} indicators"] += 1
            return
        if kind == "address":
            address = normal_address(value)
            if address is None:
                self.skipped["address that is not one address (range, junk)"] += 1
            else:
                self.log.addresses[address] = label
        elif kind == "hash":
            digest = value.lower()
            if len(digest) not in _HASH_LENGTHS or not all(c in "0123456789abcdef"
                                                           for c in digest):
                self.skipped["hash that is not MD5, SHA-1 or SHA-256 hex"] += 1
            else:
                self.hashes[digest] = label
        elif kind == "file-name":
            name = re.split(r"[\\/]", value)[-1].strip().lower()
            if name:
                self.file_names[name] = label
        elif kind == "user-agent":
            self.log.user_agents[normal_agent(value)] = label
        elif kind == "url-path":
            self.log.url_paths[normal_path(value)] = label


def sniff(text: str) -> str | None:
    """'stix', 'misp' or None (not JSON of either: one of the plain IOC list formats)."""
    head = text.lstrip()[:1]
    if head not in ("{", "["):
        return None
    sample = text[:4096]
    if '"type"' in sample and '"bundle"' in sample:
        return "stix"
    if any(key in sample for key in ('"Event"', '"Attribute"', '"Object"', '"response"')):
        return "misp"
    return None


def read_exchange_iocs(text: str, source: str) -> Imported | None:
    """The indicators of a STIX bundle or MISP event, or None if the text is neither."""
    kind = sniff(text)
    if kind is None:
        return None
    out = Imported(source)
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        out.problems.append(InputProblem(source, f"not readable {kind.upper()} JSON: "
                                                 f"{str(exc)[:200]}"))
        return out
    if kind == "stix":
        _read_stix(document, out)
    else:
        _read_misp(document, out)
    return out


# -- STIX 2.1 ---------------------------------------------------------------------------------


def _read_stix(document: object, out: Imported) -> None:
    objects = document.get("objects") if isinstance(document, dict) else None
    if not isinstance(objects, list):
        out.problems.append(InputProblem(out.source, "STIX bundle without an objects list"))
        return
    for obj in objects:
        if not isinstance(obj, dict) or obj.get("type") != "indicator":
            continue
        if obj.get("revoked") is True:
            out.skipped["revoked indicator"] += 1
            continue
        pattern = obj.get("pattern")
        if obj.get("pattern_type") != "stix" or not isinstance(pattern, str):
            out.skipped[f"pattern type {str(obj.get('pattern_type'))[:40]!r}"] += 1
            continue
        label = f"{out.source}: {str(obj.get('name') or obj.get('id'))[:200]}"
        _read_pattern(pattern, label, out)


def _read_pattern(pattern: str, label: str, out: Imported) -> None:
    if len(pattern) > MAX_PATTERN_CHARS:
        out.skipped[f"pattern over {MAX_PATTERN_CHARS} characters"] += 1
        return
    bare = _QUOTED.sub("''", pattern)
    if _COMPOUND.search(bare) or bare.count("[") != 1:
        out.skipped["compound pattern (AND, FOLLOWEDBY, several observations, qualifiers)"] += 1
        return
    simple = _SIMPLE.match(pattern.strip())
    if simple is not None:
        path = [a or b for a, b in _PATH_PART.findall(simple.group(2))]
        _take(simple.group(1), path, "=", simple.group(3), label, out)
        return
    try:
        from stix2patterns.pattern import Pattern

        comparisons = Pattern(pattern).inspect().comparisons
    except Exception:  # the third-party parser raises many kinds on hostile text
        out.skipped["pattern that does not parse"] += 1
        return
    for object_type, found in comparisons.items():
        for path, operator, literal in found:
            _take(str(object_type), [str(p) for p in path], operator, literal, label, out)


def _take(object_type: str, path: list[str], operator: object, literal: object, label: str,
          out: Imported) -> None:
    kind = _kind_of(object_type, path)
    if operator != "=" or not isinstance(literal, str) or not literal.startswith("'"):
        out.skipped[f"{object_type} compared with {str(operator)[:20]}"] += 1
    elif kind is None:
        out.skipped[f"{object_type}:{'.'.join(path)[:60]}"] += 1
    else:
        value = _unquote(literal)
        if kind == "url":
            kind, value = "url-path", urlsplit(value).path
        out.add(kind, value, label)


def _kind_of(object_type: str, path: list[str]) -> str | None:
    if object_type in ("ipv4-addr", "ipv6-addr") and path == ["value"]:
        return "address"
    if object_type == "file" and len(path) == 2 and path[0] == "hashes" and (
            path[1].upper() in ("MD5", "SHA-1", "SHA-256", "SHA1", "SHA256")):
        return "hash"
    if object_type == "file" and path == ["name"]:
        return "file-name"
    if object_type == "network-traffic" and path[:2] == _HTTP:
        if path[2:] == ["request_value"]:
            return "url-path"
        if len(path) == 4 and path[2] == "request_header" and path[3].lower() == "user-agent":
            return "user-agent"
    if object_type == "url" and path == ["value"]:
        return "url"
    return None


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1], flags=re.DOTALL)


# -- MISP ---------------------------------------------------------------------------------------

_MISP_TYPES: dict[str, tuple[str, ...]] = {
    "ip-src": ("address",), "ip-dst": ("address",),
    "ip-src|port": ("address", ""), "ip-dst|port": ("address", ""),
    "md5": ("hash",), "sha1": ("hash",), "sha256": ("hash",),
    "filename": ("file-name",),
    "filename|md5": ("file-name", "hash"), "filename|sha1": ("file-name", "hash"),
    "filename|sha256": ("file-name", "hash"),
    "user-agent": ("user-agent",), "uri": ("url-path",), "url": ("url",),
}


def _events(document: object) -> list[dict[str, Any]]:
    """A MISP export is `{"Event": ...}`, a bare event, or an API search's `response` list."""
    if isinstance(document, list):
        return [e for item in document[:10_000] for e in _events(item)]
    if not isinstance(document, dict):
        return []
    if "response" in document:
        return _events(document["response"])
    inner = document.get("Event")
    return [inner] if isinstance(inner, dict) else [document]


def _read_misp(document: object, out: Imported) -> None:
    events = _events(document)
    if not events:
        out.problems.append(InputProblem(out.source, "MISP JSON without an event"))
    for event in events:
        info = str(event.get("info") or event.get("uuid") or "MISP event")[:200]
        attributes = _list(event.get("Attribute"))
        for obj in _list(event.get("Object")):
            if isinstance(obj, dict):
                attributes.extend(_list(obj.get("Attribute")))
        for attribute in attributes:
            if isinstance(attribute, dict):
                _read_attribute(attribute, f"{out.source}: {info}", out)


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _read_attribute(attribute: dict[str, Any], label: str, out: Imported) -> None:
    kind = str(attribute.get("type"))[:60]
    value = attribute.get("value")
    if not isinstance(value, str):
        out.skipped[f"{kind}: value that is not text"] += 1
        return
    if attribute.get("to_ids") not in (True, "1", 1, "true"):
        out.skipped[f"{kind} not flagged to_ids"] += 1
        return
    parts = _MISP_TYPES.get(kind)
    if parts is None:
        out.skipped[kind] += 1
        return
    values = value.split("|") if len(parts) > 1 else [value]
    if len(values) != len(parts):
        out.skipped[f"{kind}: value not in its two parts"] += 1
        return
    for part, text in zip(parts, values, strict=True):
        if part == "url":
            out.add("url-path", urlsplit(text).path, label)
        elif part:
            out.add(part, text, label)
