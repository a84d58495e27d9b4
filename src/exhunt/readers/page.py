"""What an ASP.NET page (aspx, ashx, asmx, ascx, asax, asp) can do, read from its text.

A reader: it states facts (the directive, the server-side code's capabilities, where input
comes from and whether it reaches them, how the code is hidden) and never judges;
checks/webshell.py weighs them. Patterns are data (`[page]` in intel/data/webshell.toml).

Only server-side code counts: `<script runat="server">` blocks, `<% %>` blocks, and all that
follows the directive of a handler or a web service. Client-side JavaScript (which may well
call eval) is not server code. Before looking, escapes (`\\x61`, `\\u0061`) are decoded and
adjacent string literals joined (`"un"+"safe"`), so hidden calls show; that they had to be is
itself a fact (obfuscation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from exhunt.intel import indicators
from exhunt.model import PageTraits

_FLAGS = re.IGNORECASE | re.DOTALL
_DIRECTIVE = re.compile(r"<%@\s*(.*?)%>", _FLAGS)
_ATTRIBUTE = re.compile(r"([A-Za-z]+)\s*=\s*[\"']?([^\"'\s%>]*)")
_SERVER_SCRIPT = re.compile(
    r"<\s*script\b[^>]*\brunat\s*=\s*[\"']?server[^>]*>(.*?)(</\s*script|$)", _FLAGS)
_CODE_BLOCK = re.compile(r"<%(?!@|--)(.*?)(%>|$)", re.DOTALL)
_HEX = re.compile(r"\\x([0-9a-fA-F]{2})")
_UNICODE = re.compile(r"\\u([0-9a-fA-F]{4})")
# Two short literals joined: "un"+"safe", 'a' & 'b' (VB). Long ones are ordinary text building.
_SPLIT = re.compile(r"([\"'])([^\"'\\\n]{0,8})\1\s*[+&]\s*([\"'])([^\"'\\\n]{0,8})\3")
_BASE64_LITERAL = re.compile(r"FromBase64String\s*\(\s*[\"'][A-Za-z0-9+/=]{40,}", re.IGNORECASE)
_DECODED_INPUT = re.compile(r"FromBase64String\s*\([^;]{0,80}Request", re.IGNORECASE)
_CHAR_CODES = re.compile(r"(fromCharCode|\bChrW?\s*\(|\(\s*char\s*\)\s*\d)", re.IGNORECASE)
_MANGLED = re.compile(r"\b_0x[0-9a-f]{4,6}\b", re.IGNORECASE)
# `var m = Request;`: the request under another name.
_ALIAS = re.compile(r"^\s*((HttpContext\s*\.\s*Current|context|this)\s*\.\s*)?Request\s*$",
                    re.IGNORECASE)
# Parameter types whose values carry no text (C# keywords and their .NET names).
_VALUE_TYPES = frozenset({"int", "long", "short", "byte", "sbyte", "uint", "ulong", "ushort",
                          "bool", "decimal", "double", "float", "int16", "int32", "int64",
                          "uint16", "uint32", "uint64", "boolean", "single", "guid",
                          "datetime", "timespan"})
# `x = ...`, and `args["CommandLine"] = ...` (an indexer set: WMI's method parameters).
_ASSIGNED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[[^\]\n]{0,100}\]|\]|\))?\s*=(?!=)\s*"
                       r"([^;\n]{0,300})")
_WEB_METHOD = re.compile(r"\[\s*WebMethod[^\]]*\]\s*(?:public\s+)?(?:static\s+)?[\w.<>\[\]]+\s+\w+"
                         r"\s*\(([^)]{0,400})\)", re.IGNORECASE)
_HANDLER_CODE = re.compile(r"IHttpHandler|ProcessRequest\s*\(|:\s*System\s*\.\s*Web\s*\.\s*Services"
                           r"|\bclass\s+\w+", re.IGNORECASE)
_PROPERTY_READ = re.compile(r"\.\s*(Text|Value|SelectedValue|InnerText|PostedFile)\b",
                            re.IGNORECASE)
_MAP_PATH = re.compile(r"MapPath\s*\(", re.IGNORECASE)
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_EMBEDDED_PROGRAM = re.compile(r"[\"']TVq[A-Za-z0-9+/]{60,}")
# How far after a capability's call its input may appear (the next statements set it up).
_REACH = 400


@dataclass(frozen=True, slots=True)
class _Patterns:
    capabilities: dict[str, re.Pattern[str]]
    sinks: dict[str, re.Pattern[str]]
    inputs: dict[str, re.Pattern[str]]
    control: re.Pattern[str]
    guards: re.Pattern[str]
    sanitizers: re.Pattern[str]
    path_checks: re.Pattern[str]
    max_bytes: int


@cache
def _patterns() -> _Patterns:
    page = indicators("webshell")["page"]

    def union(items: list[str]) -> re.Pattern[str]:
        return re.compile("|".join(f"(?:{p})" for p in items), re.IGNORECASE)

    inputs = page["inputs"]
    return _Patterns(
        capabilities={name: union(items) for name, items in page["capabilities"].items()},
        sinks={name: union(items) for name, items in page["sinks"].items()},
        inputs={name: union(inputs[name]) for name in ("request", "upload", "web_method")},
        control=re.compile(inputs["control_markup"], re.IGNORECASE),
        guards=union(page["guards"]["patterns"]),
        sanitizers=union(page["guards"]["sanitizers"]),
        path_checks=union(page["guards"]["path_checks"]),
        max_bytes=int(page["max_bytes"]),
    )


def decode_page(data: bytes) -> str:
    """Page bytes as text: UTF-16 by its byte-order mark, else UTF-8 with replacements."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace")
    return data.decode("utf-8", "replace").lstrip("\ufeff")


def read_page(data: bytes) -> PageTraits:
    """The traits of one page (a bounded prefix of it is read)."""
    known = _patterns()
    text = decode_page(data[: known.max_bytes])
    directive, attributes = _directive(text)
    code = server_code(text, directive) if ("<%" in text or "runat" in text.lower()) else ""
    if not code.strip():
        return PageTraits(directive=directive, language=attributes.get("language", ""),
                          handler_class=attributes.get("class", ""))
    # Only server code is deobfuscated and read: most of a page is markup.
    raw = code
    code, obfuscation = undo_obfuscation(code)
    # Names inside SQL text or messages are not the variables they look like ("@customerId"):
    # inputs are looked for with literals blanked (same length, so positions agree).
    blank = blank_strings(code)
    capabilities = [name for name, pattern in known.capabilities.items() if pattern.search(code)]
    inputs = [name for name, pattern in known.inputs.items() if pattern.search(code)]
    control_use = None
    if _PROPERTY_READ.search(code):  # only then are form controls worth finding in the markup
        control_use = _control_use({m.group(3) for m in known.control.finditer(text)})
    if control_use is not None and control_use.search(code):
        inputs.append("form_control")
    sources = _input_sources(blank, known, control_use)
    tainted = _tainted(code, blank, capabilities, sources, known)
    obfuscation += _code_obfuscation(code, raw)
    return PageTraits(
        directive=directive, language=attributes.get("language", "").lower(),
        handler_class=attributes.get("class", ""), server_code=True,
        capabilities=tuple(capabilities), inputs=tuple(inputs), tainted=tuple(tainted),
        obfuscation=tuple(dict.fromkeys(obfuscation)), guarded=bool(known.guards.search(code)))


def undo_obfuscation(text: str) -> tuple[str, list[str]]:
    """The text with escapes decoded and short literals joined, and which of these it took."""
    kinds: list[str] = []
    if "\\" not in text and '"' not in text and "'" not in text:
        return text, kinds
    hexes = len(_HEX.findall(text))
    if hexes >= 4:
        kinds.append("hex escapes")
    text = _HEX.sub(lambda m: _safe_char(int(m.group(1), 16)), text)
    unicodes = len(_UNICODE.findall(text))
    if unicodes >= 4:
        kinds.append("unicode escapes")
    text = _UNICODE.sub(lambda m: _safe_char(int(m.group(1), 16)), text)
    joins = 0
    for _ in range(8):  # "a"+"b"+"c": each pass joins neighbours
        text, count = _SPLIT.subn(lambda m: f"{m.group(1)}{m.group(2)}{m.group(4)}{m.group(1)}",
                                  text)
        joins += count
        if not count:
            break
    if joins >= 2:
        kinds.append("split string literals")
    return text, kinds


def _safe_char(code: int) -> str:
    """A decoded escape; quotes and backslashes stay escaped so literals keep their bounds."""
    char = chr(code)
    return "\\" + char if char in "\"'\\" else char


def blank_strings(code: str) -> str:
    """Double-quoted literals' contents replaced by spaces (lengths kept)."""
    return _STRING.sub(lambda m: '"' + " " * (len(m.group(0)) - 2) + '"', code)


def _directive(text: str) -> tuple[str, dict[str, str]]:
    match = _DIRECTIVE.search(text)
    if match is None:
        return "", {}
    body = match.group(1).strip()
    first = re.match(r"([A-Za-z]+)\b", body)
    kind = "-"
    if first is not None and not body[first.end():].lstrip().startswith("="):
        kind = first.group(1).lower()
    attributes = {name.lower(): value for name, value in _ATTRIBUTE.findall(body)}
    return kind, attributes


def server_code(text: str, directive: str) -> str:
    """The server-side code of a page, joined (client-side script left out)."""
    parts = [m.group(1) for m in _SERVER_SCRIPT.finditer(text)]
    parts += [m.group(1) for m in _CODE_BLOCK.finditer(text)]
    if directive in ("webhandler", "webservice", "-"):
        end = _DIRECTIVE.search(text)
        rest = text[end.end():] if end else ""
        if directive != "-" or _HANDLER_CODE.search(rest):
            parts.append(rest)
    return "\n".join(parts)


def _control_use(controls: set[str]) -> re.Pattern[str] | None:
    names = sorted(c for c in controls if len(c) <= 64)[:200]
    if not names:
        return None
    return re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\s*\.\s*(Text|Value|"
                      r"SelectedValue|InnerText|PostedFile)\b", re.IGNORECASE)


def _input_sources(code: str, known: _Patterns,
                   control_use: re.Pattern[str] | None) -> re.Pattern[str]:
    """One pattern for every expression that carries input: request reads, form controls,
    web-method parameters, and variables assigned from any of these (two hops)."""
    direct = [known.inputs["request"]] + ([control_use] if control_use is not None else [])
    names: set[str] = set()
    for method in _WEB_METHOD.finditer(code):
        for parameter in method.group(1).split(","):
            words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", parameter)
            if words and words[0].lower() not in _VALUE_TYPES:
                names.add(words[-1])  # `int id` carries no text: no path, no query, no code
    assignments = [(m.group(1), m.group(2)) for m in _ASSIGNED.finditer(code)][:2000]
    for _ in range(2):
        named = _names_pattern(names)
        for name, value in assignments:
            if name in names or known.sanitizers.search(value):
                continue  # Path.GetFileName(...), int.Parse(...): no longer the sender's text
            if (_ALIAS.match(value) or any(p.search(value) for p in direct)
                    or (named is not None and named.search(value))):
                names.add(name)
    parts = [p.pattern for p in direct]
    named = _names_pattern(names)
    if named is not None:
        parts.append(named.pattern)
    return re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE)


def _names_pattern(names: set[str]) -> re.Pattern[str] | None:
    if not names:
        return None
    return re.compile(r"\b(" + "|".join(map(re.escape, sorted(names)[:500])) + r")\b",
                      re.IGNORECASE)


def _tainted(code: str, blank: str, capabilities: list[str], sources: re.Pattern[str],
             known: _Patterns) -> list[str]:
    tainted: list[str] = []
    for name in capabilities:
        pattern = known.capabilities[name]
        if any(sources.search(blank, m.start(), m.start() + _REACH)
               for m in pattern.finditer(code)):
            tainted.append(name)
    # Paths under the site's own folder, checked for what a file name may hold: confined.
    confined = bool(_MAP_PATH.search(code) and known.path_checks.search(code))
    for name, label in (("sql", "sql_raw"), ("file_write", "file_path"),
                        ("file_browse", "file_read_path")):
        if name not in capabilities or (confined and name != "sql"):
            continue
        for match in known.sinks[name].finditer(code):
            statement = _statement(blank, match.end())
            if (sources.search(statement) and not _only_upload_name(statement, sources)
                    and not known.sanitizers.search(statement)):
                tainted.append(label)
                break
    return tainted


def _statement(code: str, start: int) -> str:
    """A call's arguments (to the matching parenthesis) or an assignment's value (to the end of
    the statement or line), bounded."""
    if code[start - 1: start] == "(":
        depth = 1
        for at in range(start, min(len(code), start + _REACH)):
            depth += {"(": 1, ")": -1}.get(code[at], 0)
            if depth == 0:
                return code[start:at]
        return code[start: start + _REACH]
    stops = (code.find(";", start, start + _REACH), code.find("\n", start, start + _REACH))
    ends = [at for at in stops if at >= 0]
    return code[start: min(ends) if ends else start + _REACH]


def _only_upload_name(statement: str, sources: re.Pattern[str]) -> bool:
    """`SaveAs(folder + upload.FileName)`: the client names the file, not where it goes."""
    hits = [m.group(0) for m in sources.finditer(statement)]
    return bool(hits) and all(h.lower().endswith("postedfile") for h in hits)


def _code_obfuscation(code: str, raw: str) -> list[str]:
    kinds: list[str] = []
    if _BASE64_LITERAL.search(code):
        kinds.append("base64 payload")
    if _EMBEDDED_PROGRAM.search(code):
        kinds.append("embedded program (base64 of an MZ header)")
    if _DECODED_INPUT.search(code):
        kinds.append("base64-decoded input")
    if len(_CHAR_CODES.findall(code)) >= 5:
        kinds.append("character codes")
    if len(_MANGLED.findall(raw)) >= 3:
        kinds.append("mangled names (_0x...)")
    return kinds
