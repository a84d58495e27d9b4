"""Hostile text in every field of a finding: every writer still writes what its tools accept."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymisp import MISPEvent
from stix2validator import ValidationOptions, validate_string

from exhunt.hunt.verdict import decide
from exhunt.model import Finding, HostInfo, HuntReport, Severity, Stage
from exhunt.share.ecs import ecs_jsonl
from exhunt.share.misp import misp_text
from exhunt.share.stix import stix_text
from exhunt.share.timeline import timeline_csv, timeline_jsonl

nasty = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60) | \
    st.sampled_from(["<script>alert(1)</script>", "=cmd|'/c calc'!A1", "x' OR '1'='1",
                     "\\'\\\\", "../../etc/passwd", "\u202egnp.exe", "UA 'evil'"])


@st.composite
def findings(draw: st.DrawFn) -> Finding:
    return Finding(
        check=draw(st.sampled_from(["webshell.request", "iis.attack-post", "x.y"])),
        title=draw(nasty), severity=draw(st.sampled_from(list(Severity))),
        stage=draw(st.sampled_from(list(Stage))),
        cves=tuple(draw(st.lists(st.sampled_from(["CVE-2021-26855", "CVE-2021-27065"]),
                                 max_size=2))),
        timestamp=draw(st.none() | st.datetimes(datetime(2000, 1, 1), datetime(2030, 1, 1),
                                                timezones=st.just(UTC))),
        artifact=draw(nasty), line=draw(st.none() | st.integers(0, 10**9)),
        evidence=draw(nasty) + f" UA '{draw(nasty)}' sha256 {'ab' * 32}",
        client_ip=draw(st.none() | nasty | st.ip_addresses().map(str)),
        webshell_path=draw(st.none() | nasty | nasty.map(lambda t: "/owa/auth/" + t)),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(findings(), min_size=1, max_size=4), nasty)
def test_every_writer_survives_hostile_findings(found: list[Finding], host: str) -> None:
    report = HuntReport(source=host or "s", host=HostInfo(name=host or None), findings=found)
    decide(report)
    check = validate_string(stix_text([report]), ValidationOptions(version="2.1"))
    assert check.is_valid and not check.warnings, [str(w) for w in check.warnings]
    MISPEvent().load(misp_text([report]))
    for line in ecs_jsonl([report]).splitlines() + timeline_jsonl([report]).splitlines():
        json.loads(line)
    for row in csv.reader(io.StringIO(timeline_csv([report]))):
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row)
