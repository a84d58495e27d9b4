"""Parsers of the file stage: rule loading, URL paths, server pages, file judgement (the IOC
lists, headers, names and file reading: tests/readers/test_files.py)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from exhunt.checks.webshell import url_path
from exhunt.hunt.files import compile_rules
from exhunt.model import InputProblem
from exhunt.readers.files import rule_files


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


@given(st.text(max_size=80))
def test_url_paths_never_raise(name: str) -> None:
    url_path(name)


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
