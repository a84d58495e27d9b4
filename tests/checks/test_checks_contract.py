"""The contract every registered check keeps (checks/base.py), checked over all of them, and the
check table that `exhunt checks` prints and the README shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exhunt.checks.base import Check, HuntContext, registered_checks
from exhunt.checks.catalog import check_table, described, markdown
from exhunt.cli import app
from exhunt.model import RecordKind, Severity, Stage
from helpers.private_notes import private_notes_named

CHECKS = list(registered_checks())
README = Path(__file__).resolve().parents[2] / "README.md"
TABLE = re.compile(r"<!-- exhunt checks --format markdown -->\n(.*?)<!-- end of exhunt checks -->",
                   re.S)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.id)
def test_check_keeps_the_contract(check: type[Check]) -> None:
    assert re.fullmatch(r"[a-z]+(\.[a-z0-9-]+)?", check.id)
    assert check.title.strip() and isinstance(check.stage, Stage)
    assert isinstance(check.severity, Severity)
    assert check.kinds and all(isinstance(k, RecordKind) for k in check.kinds)
    assert all(re.fullmatch(r"CVE-\d{4}-\d{4,}", cve) for cve in check.cves)
    assert check.literals is None or all(lit for lit in check.literals)
    assert isinstance(check.wants_line(b""), bool)
    alone = check(HuntContext())
    assert list(alone.finalize()) == [], "nothing fed, nothing found"
    halves = check(HuntContext())
    halves.merge(check(HuntContext()))  # two empty halves of a split log
    assert list(halves.finalize()) == []


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.id)
def test_check_says_what_it_sees_and_cites_public_sources(check: type[Check]) -> None:
    data = described()
    about = data["checks"].get(check.id)  # type: ignore[attr-defined]
    assert about, f"{check.id} is missing from intel/data/checks.toml"
    assert about["sees"].strip() and about["sources"]
    for key in about["sources"]:
        source = data["sources"][key]  # type: ignore[index]
        assert source["url"].startswith("https://") and source["title"].strip()
        assert not private_notes_named(source["url"] + source["title"])


def test_the_data_describes_no_check_that_is_not_registered() -> None:
    assert set(described()["checks"]) == {c.id for c in CHECKS}  # type: ignore[arg-type]


def test_exhunt_checks_prints_every_check() -> None:
    result = CliRunner().invoke(app, ["checks"])
    assert result.exit_code == 0, result.output
    for check in CHECKS:
        assert f"{check.id}  ({check.stage.value}, {check.severity.label})" in result.output
    as_json = CliRunner().invoke(app, ["checks", "--format", "json"])
    assert '"sources"' in as_json.output


def test_the_readme_table_is_the_output_of_exhunt_checks() -> None:
    found = TABLE.search(README.read_text("utf-8"))
    assert found, "README.md lost its check table markers"
    assert found.group(1) == markdown(check_table()), (
        "README's check table differs: paste `exhunt checks --format markdown` between the "
        "markers")
