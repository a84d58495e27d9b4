"""exhunt's own YARA rules and the file judgement: every shell family, none of the benign pages."""

from __future__ import annotations

from pathlib import Path

import pytest
import yara_x

from exhunt.checks.base import HuntContext
from exhunt.checks.webshell import WebShellFile, judge_file
from exhunt.hunt.files import FileStageSettings, builtin_name_hits, knowledge
from exhunt.model import FileFacts, LogRecord, RecordKind, RuleHit, Severity
from exhunt.readers.page import read_page
from helpers.webshell_samples import CHOPPER, SHELLS, oab_dump

EXPECTED_FAMILY = {
    "chopper": "exhunt_chopper_jscript_eval",
    "chopper_item": "exhunt_chopper_jscript_eval",
    "chopper_form": "exhunt_chopper_jscript_eval",
    "chopper_b64": "exhunt_chopper_jscript_eval",
    "chopper_obfuscated": "exhunt_chopper_unsafe_flag",
    "chopper_split": "exhunt_chopper_unsafe_flag",
    "simpleseesharp": "exhunt_simpleseesharp_uploader",
    "sportsball": "exhunt_sportsball",
    "regeorg": "exhunt_regeorg_tunnel",
}


def matches(data: bytes) -> set[str]:
    rules = knowledge(FileStageSettings()).rules
    return {r.identifier for r in yara_x.Scanner(rules).scan(data).matching_rules}


def file_record(path: str, data: bytes, **extra: str) -> LogRecord:
    """The record the file stage writes for `data` at `path` (its rules, names, traits)."""
    rules = knowledge(FileStageSettings()).rules
    hits = []
    for rule in yara_x.Scanner(rules).scan(data).matching_rules:
        meta = dict(rule.metadata)
        hits.append(RuleHit(rule.identifier, str(meta["kind"]), int(meta["score"]),  # type: ignore[call-overload]
                            str(meta["family"])))
    fields = {"path": path, "zone": "web", "size": str(len(data))}
    fields.update(extra)
    facts = FileFacts(tuple(hits), tuple(builtin_name_hits(path)), read_page(data))
    return LogRecord(RecordKind.FILE, path, None, None, fields, facts)


@pytest.mark.parametrize("name", sorted(EXPECTED_FAMILY))
def test_each_family_is_named(name: str) -> None:
    assert EXPECTED_FAMILY[name] in matches(SHELLS[name].encode())


@pytest.mark.parametrize("name", sorted(SHELLS))
def test_every_shell_sample_is_at_least_medium_anywhere(name: str) -> None:
    # Outside aspnet_client, so the score comes from the content alone.
    record = file_record("C/Program Files/Microsoft/Exchange Server/V15/FrontEnd/HttpProxy/"
                         "owa/auth/Current/themes/x.aspx", SHELLS[name].encode())
    judgement = judge_file(record)
    assert judgement.severity is not None and judgement.severity >= Severity.MEDIUM, (
        judgement.reasons)


@pytest.mark.parametrize("prefix", ["http://f/", "http://o/#", "http://ooo/#", "http://iml/#"])
def test_oab_config_dump_with_chopper_in_external_url(prefix: str) -> None:
    dump = oab_dump(prefix + CHOPPER.replace("{p}", "a1")).encode()
    assert "exhunt_oab_vdir_dump_with_script" in matches(dump)


def test_oab_dump_with_a_normal_url_is_not_a_shell() -> None:
    assert matches(oab_dump("https://mail.example.test/OAB").encode()) == set()


def test_pst_and_der_headed_pages() -> None:
    page = b'<%@ Page Language="Jscript"%><%Response.Write("hi");%>'
    pst = b"!BDN" + bytes(range(256)) * 4 + page + b"\x00" * 64
    der = b"\x30\x82\x04\x10" + bytes(200) + page
    assert "exhunt_proxyshell_pst_headed_page" in matches(pst)
    assert "exhunt_proxyshell_der_headed_page" in matches(der)
    assert "exhunt_dropper_binary_headed_page" in matches(b"\x9a\xfe\x01" + page)
    # A byte-order mark in front of a page is normal.
    assert matches(b"\xef\xbb\xbf" + page) == set()


def test_benign_pages_raise_nothing(benign_dir: Path) -> None:
    check = WebShellFile(HuntContext())
    for page in sorted(benign_dir.iterdir()):
        for where in ("C/Program Files/Microsoft/Exchange Server/V15/FrontEnd/HttpProxy/owa/auth/",
                      "C/inetpub/wwwroot/"):
            found = list(check.feed(file_record(where + page.name, page.read_bytes())))
            assert not [f for f in found if f.severity > Severity.INFO], (page.name, found)


def test_a_name_alone_is_only_context() -> None:
    record = file_record("C/Program Files/Microsoft/Exchange Server/V15/FrontEnd/HttpProxy/"
                         "owa/auth/RedirSuiteServerProxy.aspx",
                         (Path(__file__).parent.parent / "data/webshell/benign/errorFE.aspx")
                         .read_bytes())
    judgement = judge_file(record)
    assert judgement.severity is Severity.INFO and "web-shell lists" in judgement.reasons[0]


def test_any_script_page_in_aspnet_client_counts() -> None:
    record = file_record("C/inetpub/wwwroot/aspnet_client/system_web/report.aspx",
                         b'<%@ Page Language="C#" %><html></html>')
    judgement = judge_file(record)
    assert judgement.severity is not None and judgement.severity >= Severity.MEDIUM
    other = file_record("C/inetpub/wwwroot/aspnet_client/system_web/viewer.js", b"var a=1;")
    assert (judge_file(other).severity or Severity.INFO) <= Severity.INFO


def test_known_good_baseline_silences_heuristics_but_not_known_bad() -> None:
    data = SHELLS["unknown_cmd"].encode()
    where = "C/Program Files/Microsoft/Exchange Server/V15/FrontEnd/HttpProxy/owa/auth/a.aspx"
    assert judge_file(file_record(where, data, baseline="known-good")).severity is None
    bad = "893cd3583b49cb706b3e55ecb2ed0757b977a21f5c72e041392d1256f31166e2"
    judged = judge_file(file_record(where, b"x", sha256=bad))
    assert judged.severity is Severity.CRITICAL and "SIMPLESEESHARP" in judged.family


def test_script_page_in_a_proxyshell_programdata_folder() -> None:
    page = b'<%@ Page Language="C#" %><html></html>'
    staged = file_record("C/ProgramData/ZING/a.aspx", page, zone="other")
    assert (judge_file(staged).severity or Severity.INFO) >= Severity.MEDIUM
    vendor = file_record("C/ProgramData/Vendor/help.aspx", page, zone="other")
    assert judge_file(vendor).severity is None


def test_compiled_page_assembly_calling_the_jscript_evaluator() -> None:
    # The parts of a compiled JScript page that matter: a PE, the evaluator's name in the
    # metadata strings (UTF-8), the 'unsafe' literal in the user-string heap (UTF-16).
    body = b"MZ" + bytes(126) + b"PE\x00\x00" + bytes(300)
    body += b"get_Request\x00JScriptEvaluate\x00" + "unsafe".encode("utf-16-le") + bytes(64)
    assert "exhunt_compiled_jscript_eval_page" in matches(body)
    plain = b"MZ" + bytes(126) + b"PE\x00\x00" + b"get_Request\x00Render\x00" + bytes(64)
    assert matches(plain) == set()


def test_iis_config_mapping_a_web_path_onto_programdata() -> None:
    bad = (b'<configuration><system.applicationHost><sites><site name="Default Web Site" id="1">'
           b'<application path="/zing"><virtualDirectory path="/" physicalPath="C:\\ProgramData'
           b'\\ZING" /></application></site></sites></system.applicationHost></configuration>')
    good = bad.replace(b"C:\\ProgramData\\ZING", b"%SystemDrive%\\inetpub\\wwwroot")
    assert "exhunt_iis_vdir_into_writable_folder" in matches(bad)
    assert matches(good) == set()
