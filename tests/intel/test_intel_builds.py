"""The build table and the HealthChecker-style status rule, one test per trap."""

from __future__ import annotations

import csv
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exhunt.intel.builds import TRACKED_CVES, explain, load_table, parse_build

PROXYLOGON = ("CVE-2021-26855", "CVE-2021-26857", "CVE-2021-26858", "CVE-2021-27065")
APRIL = ("CVE-2021-34473", "CVE-2021-34523")
MAY = ("CVE-2021-31207",)
NOTSHELL = ("CVE-2022-41040", "CVE-2022-41082")


def statuses(build: str, cves: tuple[str, ...]) -> set[str]:
    v = explain(build).vulnerabilities
    return {v[c] for c in cves}


def test_every_row_names_its_source_and_parses() -> None:
    text = resources.files("exhunt.intel").joinpath("data", "exchange_builds.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    assert len(rows) > 270
    for row in rows:
        assert row["source"].strip(), row
        assert parse_build(row["build"]) is not None, row
    for name in ("exchange_fixes.csv", "exchange_cve_scope.csv"):
        text = resources.files("exhunt.intel").joinpath("data", name).read_text()
        assert all(r["source"].strip() for r in csv.DictReader(text.splitlines()))


def test_cve_34473_and_34523_are_in_the_table() -> None:
    # HealthChecker has no entry for them; the table must add them (April update).
    cves = {f.cve for f in load_table().fixes}
    assert set(TRACKED_CVES) <= cves


@pytest.mark.parametrize(
    ("build", "proxylogon", "april", "may", "notshell"),
    [
        ("15.1.2176.4", "vulnerable", "vulnerable", "vulnerable", "vulnerable"),
        ("15.1.2176.9", "patched", "vulnerable", "vulnerable", "vulnerable"),
        ("15.1.2176.12", "patched", "patched", "vulnerable", "vulnerable"),
        ("15.1.2242.8", "patched", "patched", "vulnerable", "vulnerable"),
        ("15.1.2242.10", "patched", "patched", "patched", "vulnerable"),
        ("15.1.2375.37", "patched", "patched", "patched", "patched"),
        ("15.0.1497.44", "patched", "patched", "patched", "patched"),
        ("15.0.1497.42", "patched", "patched", "patched", "vulnerable"),
        ("15.2.986.36", "patched", "patched", "patched", "patched"),
        ("15.2.1118.20", "patched", "patched", "patched", "patched"),
        ("15.2.792.10", "patched", "vulnerable", "vulnerable", "vulnerable"),
    ],
)
def test_reference_spot_checks(
    build: str, proxylogon: str, april: str, may: str, notshell: str
) -> None:
    assert statuses(build, PROXYLOGON) == {proxylogon}
    assert statuses(build, APRIL) == {april}
    assert statuses(build, MAY) == {may}
    assert statuses(build, NOTSHELL) == {notshell}


@pytest.mark.parametrize(
    "build", ["15.1.1415.8", "15.1.1713.10", "15.0.1395.12", "15.2.330.11", "15.2.221.18"]
)
def test_special_march_updates_fix_only_the_march_cves(build: str) -> None:
    assert statuses(build, PROXYLOGON) == {"patched"}
    assert statuses(build, APRIL + MAY + NOTSHELL) == {"vulnerable"}


def test_april_update_fixes_34473_34523_but_not_31207() -> None:
    assert statuses("15.2.858.10", APRIL) == {"patched"}
    assert statuses("15.2.858.10", MAY) == {"vulnerable"}


@pytest.mark.parametrize("build", ["15.1.2308.8", "15.1.2308.27", "15.2.922.7", "15.2.922.27"])
def test_2016_cu21_and_2019_cu10_never_got_november_2022(build: str) -> None:
    assert statuses(build, PROXYLOGON + APRIL + MAY) == {"patched"}
    assert statuses(build, NOTSHELL) == {"vulnerable"}
    assert any("CU23" in a or "CU12" in a for a in explain(build).install)


def test_2019_cu9_owa_version_lag_is_cu_level_only() -> None:
    e = explain("15.2.858.2")
    assert e.product == "Exchange Server 2019" and e.cu == "CU9"
    # CU9 shipped with the March fixes, so ProxyLogon is closed whatever update follows.
    assert statuses("15.2.858.2", PROXYLOGON) == {"patched"}
    # OWA keeps reading 858.2, so whether April/May updates are in cannot be told.
    assert statuses("15.2.858.2", APRIL + MAY) == {"unknown"}
    assert statuses("15.2.858.2", NOTSHELL) == {"vulnerable"}
    assert any("lags" in n for n in e.notes)


@pytest.mark.parametrize(
    ("cu_build", "alt_build"), [("15.1.1415.8", "15.1.1415.10"), ("15.1.1466.13", "15.1.1466.16")]
)
def test_conflicting_sources_give_the_same_status(cu_build: str, alt_build: str) -> None:
    a, b = explain(cu_build), explain(alt_build)
    assert a.vulnerabilities == b.vulnerabilities
    assert a.update == b.update == "Mar21SU"
    assert any("disagree" in n for n in a.notes + b.notes)
    # The build right before the first March number is still vulnerable.
    assert statuses("15.1.1466.10", PROXYLOGON) == {"vulnerable"}


def test_cu_only_build_is_unknown_where_the_cu_had_a_fixing_update() -> None:
    v = explain("15.1.2176").vulnerabilities
    assert {v[c] for c in PROXYLOGON + APRIL + MAY} == {"unknown"}
    assert {v[c] for c in NOTSHELL} == {"vulnerable"}  # CU19 never got Nov22SU
    # A CU released after the March fixes is patched for March whatever its update.
    v = explain("15.1.2242").vulnerabilities
    assert {v[c] for c in PROXYLOGON} == {"patched"}
    assert {v[c] for c in APRIL + MAY} == {"unknown"}
    # A CU that never got any fixing update is plainly vulnerable.
    assert statuses("15.1.2044", APRIL + MAY + NOTSHELL) == {"vulnerable"}
    assert statuses("15.1.1261", PROXYLOGON) == {"vulnerable"}
    assert not explain("15.1.2176").exact


def test_exchange_2010_only_26857_applies() -> None:
    assert explain("14.3.123.4").vulnerabilities["CVE-2021-26857"] == "vulnerable"
    assert explain("14.3.513.0").vulnerabilities["CVE-2021-26857"] == "patched"
    others = [c for c in TRACKED_CVES if c != "CVE-2021-26857"]
    assert statuses("14.3.123.4", tuple(others)) == {"not-affected"}
    assert explain("14.3.513.0").product == "Exchange Server 2010"


def test_explain_names_product_cu_update_and_what_to_install() -> None:
    e = explain("15.1.2176.9")
    assert (e.product, e.cu, e.update, e.release) == (
        "Exchange Server 2016",
        "CU19",
        "Mar21SU",
        "CU19 Mar21SU",
    )
    assert e.exact and e.known
    assert any("2507.16" in line for line in e.install)
    assert e.sources


def test_unlisted_build_within_a_cu_follows_the_rule() -> None:
    e = explain("15.1.2176.7")
    assert not e.known and e.cu == "CU19"
    assert statuses("15.1.2176.7", PROXYLOGON) == {"vulnerable"}


def test_not_a_build_is_refused() -> None:
    with pytest.raises(ValueError):
        explain("15.1.x")
    with pytest.raises(ValueError):
        explain("<script>")


@given(st.text(max_size=40))
def test_explain_never_crashes_on_arbitrary_text(text: str) -> None:
    try:
        e = explain(text)
    except ValueError:
        return
    assert set(e.vulnerabilities) == set(TRACKED_CVES)


@given(
    st.sampled_from([(14, 3), (15, 0), (15, 1), (15, 2), (8, 3), (16, 0)]),
    st.integers(0, 5000),
    st.one_of(st.none(), st.integers(0, 2000)),
)
def test_status_rule_is_total_and_monotonic_within_a_cu(
    major: tuple[int, int], build: int, rev: int | None
) -> None:
    text = f"{major[0]}.{major[1]}.{build}" + ("" if rev is None else f".{rev}")
    e = explain(text)
    assert set(e.vulnerabilities.values()) <= {"vulnerable", "patched", "unknown", "not-affected"}
    if rev is not None:
        later = explain(f"{major[0]}.{major[1]}.{build}.{rev + 1}")
        for cve in TRACKED_CVES:
            if e.vulnerabilities[cve] == "patched":
                assert later.vulnerabilities[cve] in {"patched", "unknown"}
