"""Property-based checks: whatever the scenario, seed, size and layout, a copy keeps the
structural invariants readers and hunters rely on."""

from __future__ import annotations

import ipaddress
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exhunt.lab.formats import csv_field, ecp_cmd, ecp_item
from exhunt.lab.triage import LAYOUTS, Scenario, TriageSpec, build_triage, truth_path
from exhunt.model import iso
from helpers.lab_triage import all_bytes, csv_rows, line_time, log_files

DOC_NETS = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24",
                                              "203.0.113.0/24")]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scenario=st.sampled_from(list(Scenario)),
    seed=st.integers(min_value=0, max_value=2**32),
    size=st.integers(min_value=400_000, max_value=1_200_000),
    layout=st.sampled_from(LAYOUTS),
    days=st.integers(min_value=2, max_value=20),
)
def test_any_copy_keeps_the_structural_invariants(scenario: Scenario, seed: int, size: int,
                                                  layout: str, days: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="lab-prop-"))
    try:
        out = base / "copy"
        truth = build_triage(out, TriageSpec(scenario, size_bytes=size, seed=seed,
                                             layout=layout, days=days))  # type: ignore[arg-type]
        assert truth_path(out).is_file() and not truth_path(out).is_relative_to(out)
        for lf in log_files(out):
            assert lf.lines, lf.path
            times = [line_time(lf, line) for line in lf.lines]
            assert times == sorted(times), lf.path
            if lf.kind == "iis":
                assert all(len(line.split(" ")) == len(lf.fields) for line in lf.lines)
            else:
                assert all(len(row) == len(lf.fields) for row in csv_rows(lf)), lf.path
        for ip in truth.attacker_ips:
            assert any(ipaddress.ip_address(ip) in net for net in DOC_NETS)
        for shell in truth.shell_paths:
            assert (out / shell).is_file()
        assert (truth.first_exploitation is None) == (
            scenario in (Scenario.CLEAN, Scenario.PROBED))
        assert bool(truth.shell_paths) == (scenario in (Scenario.BACKDOORED, Scenario.REENTERED))
        stages = {e["stage"] for e in truth.timeline}
        assert "benign" in stages
        success = sorted(e["time"] for e in truth.timeline
                         if e["stage"] in ("exploit", "backdoor", "reentry", "post-exploitation"))
        if truth.first_exploitation is None:
            assert not success
        else:
            assert success[0] == iso(truth.first_exploitation)
        # Small copies are dominated by fixed files (EVTX chunks are 64 KiB); bigger ones
        # land near the request.
        assert abs(all_bytes(out) - size) <= size * 0.15
        if scenario == Scenario.CLEAN:
            assert not any(b"ServerInfo~" in p.read_bytes() for p in out.rglob("*")
                           if p.is_file())
    finally:
        shutil.rmtree(base)


@given(st.text(max_size=60))
def test_csv_field_round_trips_through_the_csv_module(value: str) -> None:
    import csv
    import io

    value = value.replace("\r", "").replace("\n", "")
    line = "a," + csv_field(value) + ",b"
    assert next(csv.reader(io.StringIO(line))) == ["a", value, "b"]


@given(st.text(alphabet=st.characters(blacklist_characters="\r\n\x00"), max_size=40))
def test_ecp_items_single_quote_and_double_their_quotes(value: str) -> None:
    item = ecp_item("CMD", ecp_cmd("Set-OabVirtualDirectory", [("ExternalUrl", value)]))
    assert item.startswith("'S:CMD=") and item.endswith("'")
    inner = item[1:-1]
    # Every quote inside is doubled, so splitting on "''" leaves no lone quote.
    assert "'" not in inner.replace("''", "")
    assert inner.replace("''", "'") == f"S:CMD=Set-OabVirtualDirectory.ExternalUrl='{value}'"
