"""The build table against Microsoft's published list, its validation command, and `exhunt
builds` on many builds at once."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exhunt.cli.builds_plain import main, run
from exhunt.intel.builds import check_table, explain

MICROSOFT = Path(__file__).resolve().parent.parent / "data" / "intel" / "microsoft_build_numbers.csv"
NAME = re.compile(r"^(Exchange Server (?:SE|\d{4})) (RTM|CU\d+)(?: (\w+))?$")


def microsoft_rows() -> list[dict[str, str]]:
    lines = [line for line in MICROSOFT.read_text().splitlines() if not line.startswith("#")]
    return list(csv.DictReader(lines))


@pytest.mark.parametrize("row", microsoft_rows(), ids=lambda r: r["name"])
def test_the_table_names_every_build_as_microsoft_does(row: dict[str, str]) -> None:
    match = NAME.match(row["name"])
    assert match, row
    product, cu, update = match.groups()
    info = explain(row["build"])
    assert (info.product, info.cu, info.update, info.known) == (product, cu, update, True)


def test_exchange_se_is_rtm_not_a_2019_cu() -> None:
    info = explain("15.2.2562.37")
    assert (info.product, info.cu, info.update) == ("Exchange Server SE", "RTM", "Feb26SU")
    assert explain("15.2.2562").cu == "RTM"


def test_the_shipped_table_passes_its_own_check() -> None:
    text = resources.files("exhunt.intel").joinpath("data", "exchange_builds.csv").read_text()
    assert check_table(text) == []


def shipped() -> str:
    return resources.files("exhunt.intel").joinpath("data", "exchange_builds.csv").read_text()


def cli(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin), out, err
    try:
        status = main(argv)
    finally:
        sys.stdin, sys.stdout, sys.stderr = old
    return status, out.getvalue(), err.getvalue()


def test_the_next_update_is_added_as_data_and_checked(tmp_path: Path) -> None:
    local = tmp_path / "exchange_builds.csv"
    local.write_text(shipped() + "Exchange Server SE,RTM,Nov26SU,15.2.2562.60,su,2026-11-10,"
                     "KB5099999,local copy of Microsoft's list\n")
    status, out, _ = cli(["--check-table", str(local)])
    assert status == 0 and "no problem found" in out
    status, out, _ = cli(["--table", str(local), "15.2.2562.60", "--format", "json"])
    assert status == 0 and json.loads(out)["update"] == "Nov26SU"
    assert "Nov26SU" not in cli(["15.2.2562.60", "--format", "json"])[1]  # shipped: unknown
    broken = tmp_path / "broken.csv"
    broken.write_text(shipped() + "Exchange Server 2019,RTM,Nov26SU,15.2.2562.61,su,,KB1,\n"
                      "Exchange Server SE,CU9,November,15.2.9999.1,su,11/10/2026,,x\n")
    status, out, _ = cli(["--check-table", str(broken)])
    lines = len(shipped().splitlines())
    assert status == 1
    assert f"line {lines + 1}: 15.2.2562.61 is Exchange Server SE, not 'Exchange Server 2019'" \
        in out
    assert f"line {lines + 1}: no source" in out and "kb 'KB1'" in out
    assert f"line {lines + 2}: update 'November' is not named like" in out
    assert f"line {lines + 2}: no CU row for 15.2.9999.1" in out
    status, _, err = cli(["--table", str(broken), "15.2.2562.60"])
    assert status == 2 and "--check-table" in err


def test_many_builds_as_a_json_array_or_jsonl() -> None:
    status, out, _ = cli(["15.2.721", "15.1.2176.9", "--format", "json"])
    answers = json.loads(out)
    assert status == 0 and [a["cu"] for a in answers] == ["CU7", "CU19"]
    feed = "15.2.721\n\n15.2.2562.37\n<b>x</b>\n15.0.1497.12\n"
    status, out, err = cli(["-", "--format", "jsonl"], stdin=feed)
    lines = [json.loads(line) for line in out.splitlines()]
    assert status == 2 and len(lines) == 4 and "not an Exchange build" in err
    assert lines[2] == {"build": "<b>x</b>", "error": "not an Exchange build number: '<b>x</b>'"}
    assert lines[1]["update"] == "Feb26SU" and lines[3]["update"] == "Mar21SU"
    status, out, _ = cli(["15.2.721"])
    assert "install:" in out and "Mar21SU (15.2.721.13, KB5000871)" in out
    assert cli(["--format", "xml", "15.2.721"])[0] == 2 and cli([])[0] == 2


def test_a_cu_level_build_says_what_to_install_with_kb() -> None:
    info = explain("15.2.721")
    assert info.install[0].startswith("upgrade to Exchange Server 2019 CU15 and install")
    assert "KB5000871" in info.install[1]
    assert "only the CU is visible" in " ".join(info.notes)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=30).filter(lambda t: "\n" not in t and "\r" not in t),
                max_size=5))
def test_any_input_lines_get_one_answer_each(lines: list[str]) -> None:
    out, err = io.StringIO(), io.StringIO()
    run(["-"], "jsonl", out, err, io.StringIO("\n".join(lines)))
    answers = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(answers) == len([t for t in lines if t.strip()])


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=400))
def test_any_table_text_is_checked_without_crashing(text: str) -> None:
    problems = check_table("product,cu,update,build,kind,released,kb,source\n" + text)
    assert all(p.startswith("line ") for p in problems)
    assert all(isinstance(p, str) for p in check_table(text))
