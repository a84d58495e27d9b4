"""Parsers of the file stage: IOC lists, rule loading, header sniffing, names and paths."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from exhunt.checks.webshell import url_path
from exhunt.hunt.files import (
    compile_rules,
    odd_name,
    parse_filename_iocs,
    parse_hash_iocs,
    rule_files,
    sniff_header,
    windows_path,
)
from exhunt.model import InputProblem

HEADER_NAMES = {"pst", "minidump", "zip", "7z", "rar", "cab", "pe", "ole", "evtx", "gzip", "der",
                "utf16-text", "text", "binary", "empty"}


@given(st.text(max_size=600))
def test_hash_ioc_parser_never_raises(text: str) -> None:
    hashes, problems = parse_hash_iocs(text, "hash-iocs.txt")
    assert all(len(h) in (32, 40, 64) and h == h.lower() for h in hashes)
    assert all(p.artifact == "hash-iocs.txt" for p in problems)


@given(st.lists(st.tuples(st.sampled_from([16, 20, 32]).flatmap(
    lambda n: st.binary(min_size=n, max_size=n)), st.text(alphabet="abc XYZ-_.", max_size=30)),
    max_size=30))
def test_hash_ioc_lines_round_trip(rows: list[tuple[bytes, str]]) -> None:
    text = "# hashes\n\n" + "".join(f"{h.hex().upper()};{c}\n" for h, c in rows)
    hashes, problems = parse_hash_iocs(text, "x")
    assert problems == []
    assert set(hashes) == {h.hex() for h, _ in rows}


@given(st.text(max_size=600))
def test_filename_ioc_parser_never_raises(text: str) -> None:
    iocs, problems = parse_filename_iocs(text, "filename-iocs.txt")
    assert len(iocs) + len(problems) <= len(text.splitlines())
    for ioc in iocs:
        ioc.matches("C:\\inetpub\\wwwroot\\aspnet_client\\x.aspx")


def test_filename_ioc_lines() -> None:
    text = ("# comment\n"
            "\\\\aspnet_client\\\\[a-z]{1,3}\\.aspx$;70\n"
            "\\\\owa\\\\auth\\\\.+\\.aspx$;50;\\\\owa\\\\auth\\\\logon\\.aspx$\n"
            "(unclosed;40\n"
            "\\\\x\\.aspx;notanumber\n"
            "only-one-field\n")
    iocs, problems = parse_filename_iocs(text, "f.txt")
    assert [i.score for i in iocs] == [70, 50]
    assert len(problems) == 3 and all(re.match(r"line [456]:", p.message) for p in problems)
    owa = iocs[1]
    assert owa.matches("C:\\Program Files\\x\\owa\\auth\\errorEE.aspx")
    assert not owa.matches("C:\\Program Files\\x\\owa\\auth\\logon.aspx")


def test_rule_loading_names_each_broken_file_and_keeps_the_rest(tmp_path: Path) -> None:
    (tmp_path / "a.yar").write_text('rule A { strings: $a = "aaa" condition: $a }')
    (tmp_path / "b.yara").write_text("rule B { condition: nonsense_identifier }")
    (tmp_path / "c.yar").write_bytes(b"\xff\xfe\x00garbage{{{")
    (tmp_path / "d.txt").write_text("not a rule file")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "e.yar").write_text('rule A { strings: $a = "eee" condition: $a }')  # same name
    problems: list[InputProblem] = []
    sources = rule_files(str(tmp_path), problems)
    assert len(sources) == 4
    rules, _ = compile_rules(sources, problems)
    assert {Path(p.artifact).name for p in problems} == {"b.yara", "c.yar"}
    import yara_x

    found = {r.identifier for r in yara_x.Scanner(rules).scan(b"aaa eee").matching_rules}
    assert found == {"A"}


@given(st.binary(max_size=300))
def test_header_sniffing_never_raises(head: bytes) -> None:
    assert sniff_header(head) in HEADER_NAMES


def test_header_examples() -> None:
    assert sniff_header(b"!BDN\x00\x01") == "pst"
    assert sniff_header(b"MDMP\x93\xa7") == "minidump"
    assert sniff_header(b"\x30\x82\x01\x00") == "der"
    assert sniff_header(b"PK\x03\x04") == "zip"
    assert sniff_header(b"<%@ Page %>") == "text"
    assert sniff_header(b"\x00\x01\x02\x03") == "binary"
    assert sniff_header(b"") == "empty"


@given(st.text(max_size=80))
def test_names_and_paths_never_raise(name: str) -> None:
    odd_name(name)
    windows_path(name)
    url_path(name)


def test_odd_names_and_windows_paths() -> None:
    assert odd_name("a/b/logon\u202excod.aspx") and odd_name("a/x\nb.aspx")
    assert not odd_name("a/b/logon.aspx")
    assert windows_path("C%3A/inetpub/wwwroot/a.aspx") == "C:\\inetpub\\wwwroot\\a.aspx"
    assert windows_path("kape/C/ProgramData/ZING/a.aspx") == "C:\\ProgramData\\ZING\\a.aspx"


def test_url_paths_of_disk_paths() -> None:
    assert url_path("C/inetpub/wwwroot/aspnet_client/system_web/X.aspx") == (
        "/aspnet_client/system_web/x.aspx")
    assert url_path("C:\\Program Files\\Microsoft\\Exchange Server\\V15\\FrontEnd\\HttpProxy\\"
                    "owa\\auth\\Err0r.aspx") == "/owa/auth/err0r.aspx"
    assert url_path("\\\\127.0.0.1\\c$\\inetpub\\wwwroot\\aspnet_client\\a.aspx") == (
        "/aspnet_client/a.aspx")
    assert url_path("C/ProgramData/COM/a.aspx") is None


@given(st.binary(max_size=600) | st.text(max_size=600).map(lambda t: t.encode("utf-8",
                                                                                "surrogatepass")))
def test_page_reader_never_raises(data: bytes) -> None:
    from exhunt.checks.webshell import page_score
    from exhunt.readers.page import read_page

    traits = read_page(b'<%@ Page Language="C#" %><script runat="server">' + data)
    assert set(traits.tainted) <= set(traits.capabilities) | {"sql_raw", "file_path"}
    assert 0 <= page_score(traits)[0] <= 90
    read_page(data)


def test_non_ascii_digits_are_not_scores() -> None:
    iocs, problems = parse_filename_iocs("\\\\a\\.aspx;\u0663\n", "f")
    assert iocs == [] and len(problems) == 1


@given(st.text(max_size=300))
def test_rule_loading_never_raises(text: str) -> None:
    problems: list[InputProblem] = []
    rules, _ = compile_rules([("random.yar", text)], problems)
    assert (rules is None) == bool(problems) or rules is not None


FIELD_NAMES = ("path", "zone", "hash_ioc", "baseline", "sha256", "header", "size", "mtime")


@given(st.dictionaries(st.sampled_from(FIELD_NAMES), st.text(max_size=120)),
       st.lists(st.tuples(st.text(max_size=20), st.sampled_from(["family", "heuristic", "x"]),
                          st.integers(-5, 500), st.text(max_size=20)), max_size=4),
       st.lists(st.tuples(st.integers(-5, 500), st.text(max_size=30)), max_size=3))
def test_file_judgement_never_raises(fields: dict[str, str],
                                     rules: list[tuple[str, str, int, str]],
                                     names: list[tuple[int, str]]) -> None:
    from exhunt.checks.webshell import judge_file
    from exhunt.model import FileFacts, LogRecord, NameHit, RecordKind, RuleHit

    facts = FileFacts(tuple(RuleHit(*r) for r in rules), tuple(NameHit(*n) for n in names))
    judgement = judge_file(LogRecord(RecordKind.FILE, "x", None, None, fields, facts))
    assert judgement.score >= 0
