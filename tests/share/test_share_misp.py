"""MISP out: an event PyMISP loads, objects its own templates accept, to_ids only on indicators."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymisp import MISPEvent, MISPObject
from typer.testing import CliRunner

from exhunt.cli import app
from exhunt.hunt.verdict import decide
from exhunt.model import Finding, HostInfo, HuntReport, Severity, Stage
from exhunt.share.misp import misp_text
from exhunt.share.options import ShareOptions

runner = CliRunner()
T0 = datetime(2021, 3, 3, 4, 5, tzinfo=UTC)


def load(text: str) -> MISPEvent:
    event = MISPEvent()
    event.load(text)
    # PyMISP's template check: every object rebuilt strictly from its own template.
    for obj in event.objects:
        strict = MISPObject(obj.name, strict=True)
        for attribute in obj.attributes:
            strict.add_attribute(attribute.object_relation, attribute.value)
    return event


def values(event: MISPEvent) -> dict[str, Any]:
    """Every attribute (standalone or in an object) by value."""
    found = {a.value: a for a in event.attributes}
    for obj in event.objects:
        found.update({a.value: a for a in obj.attributes})
    return found


def test_hunt_event_loads_and_flags_only_indicators(reentered: Any) -> None:
    _, truth, report = reentered
    event = load(misp_text([report], ShareOptions(producer="CERT-Lab", tlp="amber")))
    tags = {t.name for t in event.tags}
    assert "tlp:amber" in tags
    assert 'vulnerability:cve="CVE-2021-26855"' in tags
    names = {o.name for o in event.objects}
    assert {"ip-port", "file", "vulnerability", "http-request"} <= names
    found = values(event)
    attacker = truth["attacker_ips"][0]
    assert found[attacker].to_ids is True
    assert found[attacker].sightings, "an indicator carries its sighting"
    assert found["EXCH01"].type == "target-machine" and found["EXCH01"].to_ids is False
    assert any(a.type == "user-agent" and a.to_ids for a in event.attributes)
    assert event.Orgc.name == "CERT-Lab"


def test_internal_addresses_are_never_flagged_for_ids() -> None:
    findings = [
        Finding(check="proxylogon.ssrf", title="t", severity=Severity.CRITICAL,
                stage=Stage.EXPLOIT, cves=("CVE-2021-26855",), timestamp=T0, artifact="a",
                line=1, evidence="", client_ip=ip)
        for ip in ("10.1.2.3", "203.0.113.9")
    ]
    report = HuntReport(source="copy", host=HostInfo(name="MAIL"), findings=findings)
    decide(report)
    found = values(load(misp_text([report])))
    assert found["203.0.113.9"].to_ids is True
    assert found["10.1.2.3"].to_ids is False and not found["10.1.2.3"].sightings


def test_without_victims_no_server_is_named(reentered: Any) -> None:
    _, _, report = reentered
    text = misp_text([report], ShareOptions(with_victims=False))
    event = load(text)
    assert "EXCH01" not in text and str(report.source) not in text
    assert not any(a.type == "target-machine" for a in event.attributes)


def test_same_hunt_same_event_and_cli(reentered: Any, tmp_path: Path) -> None:
    path, _, report = reentered
    assert misp_text([report]) == misp_text([report])
    out = tmp_path / "event.json"
    result = runner.invoke(app, ["hunt", str(path), "-q", "-f", "misp", "-o", str(out),
                                 "--tlp", "clear"])
    assert result.exit_code == 0, result.output
    event = load(out.read_text("utf-8"))
    assert "tlp:clear" in {t.name for t in event.tags}
