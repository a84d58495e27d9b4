"""STIX 2.1 out: every bundle passes the OASIS validator with no error and no warning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from stix2validator import ValidationOptions, validate_string
from typer.testing import CliRunner

from exhunt.cli import app
from exhunt.model import Finding, HostInfo, HuntReport, Severity, Stage
from exhunt.share.options import ShareOptions
from exhunt.share.stix import pattern_of, stix_text

runner = CliRunner()


def validate(text: str) -> None:
    """The validator's default profile: every MUST as an error, every SHOULD as a warning."""
    result = validate_string(text, ValidationOptions(version="2.1"))
    problems = [str(e) for e in result.errors] + [str(w) for w in result.warnings]
    assert result.is_valid and not problems, problems


def objects(text: str, kind: str) -> list[dict[str, Any]]:
    return [o for o in json.loads(text)["objects"] if o["type"] == kind]


def test_validator_catches_what_it_should() -> None:
    """The check above can fail: a random (v4) id on an observable is a warning."""
    bad = {"type": "bundle", "id": "bundle--6b3f0c1a-7c2e-4b55-9d1e-8e2a1f0c9b3d", "objects": [
        {"type": "ipv4-addr", "spec_version": "2.1",
         "id": "ipv4-addr--6b3f0c1a-7c2e-4b55-9d1e-8e2a1f0c9b3d", "value": "192.0.2.1"}]}
    with pytest.raises(AssertionError):
        validate(json.dumps(bad))


def test_hunt_bundle_is_valid_and_says_what_the_hunt_found(reentered: Any) -> None:
    _, truth, report = reentered
    text = stix_text([report], ShareOptions(producer="CERT-Lab", tlp="green"))
    validate(text)
    [producer] = [o for o in objects(text, "identity") if o["identity_class"] == "organization"]
    assert producer["name"] == "CERT-Lab"
    patterns = {o["pattern"] for o in objects(text, "indicator")}
    for ip in truth["attacker_ips"]:
        if any(f.client_ip == ip for f in report.findings):
            assert f"[ipv4-addr:value = '{ip}']" in patterns
    shell = Path(truth["shell_paths"][0]).name.lower()
    assert f"[file:name = '{shell}']" in patterns
    assert any(p.startswith("[file:hashes.'SHA-256' = ") for p in patterns)
    assert any("request_header.'User-Agent'" in p for p in patterns)
    assert any(p.startswith("[network-traffic:extensions.'http-request-ext'.request_value")
               for p in patterns)
    cves = {o["name"] for o in objects(text, "vulnerability")}
    assert "CVE-2021-26855" in cves and "CVE-2021-27065" in cves
    host = next(o for o in objects(text, "identity") if o["identity_class"] == "system")
    sightings = objects(text, "sighting")
    shell_indicator = next(o for o in objects(text, "indicator")
                           if o["pattern"] == f"[file:name = '{shell}']")
    [seen] = [s for s in sightings if s["sighting_of_ref"] == shell_indicator["id"]]
    assert seen["where_sighted_refs"] == [host["id"]]
    assert seen["first_seen"] <= seen["last_seen"]
    assert objects(text, "observed-data")
    green = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
    for obj in json.loads(text)["objects"]:
        if obj["type"] != "marking-definition":
            assert obj["object_marking_refs"] == [green], obj["id"]


def test_same_hunt_same_bundle(reentered: Any) -> None:
    _, _, report = reentered
    assert stix_text([report]) == stix_text([report])
    assert stix_text([report]) != stix_text([report], ShareOptions(producer="other"))


def test_fleet_bundle_has_one_intrusion_set_per_cluster(fleet: Any) -> None:
    reports, truths = fleet
    text = stix_text(reports)
    validate(text)
    groups = objects(text, "intrusion-set")
    assert len(groups) == 2
    indicators = {o["id"]: o for o in objects(text, "indicator")}
    relations = objects(text, "relationship")
    for group in groups:
        pointing = [indicators[r["source_ref"]]["pattern"] for r in relations
                    if r["target_ref"] == group["id"] and r["relationship_type"] == "indicates"]
        assert pointing
        # The indicators of one group are one intrusion's: all from one truth.
        ips = {p.split("'")[1] for p in pointing if p.startswith("[ipv4-addr")}
        assert any(ips <= set(t["attacker_ips"]) for t in truths[:2]), ips
        assert any(r["source_ref"] == group["id"] and r["relationship_type"] == "targets"
                   for r in relations)


def test_hostile_values_become_valid_patterns() -> None:
    evil = "x' OR 1=1 ]\\ <script>alert(1)</script>\u202e\x00"
    finding = Finding(check="webshell.request", title="t", severity=Severity.HIGH,
                      stage=Stage.REENTRY, cves=(), timestamp=None, artifact="a", line=1,
                      evidence=f"1 request (first POST, UA '{evil[:-1]}')",
                      client_ip="2001:db8::bad", webshell_path="/owa/auth/" + evil[:-1])
    report = HuntReport(source="<img src=x>", host=HostInfo(name="'; DROP"), findings=[finding])
    text = stix_text([report])
    validate(text)
    assert pattern_of("file-name", "a'b\\c") == "[file:name = 'a\\'b\\\\c']"


def test_cli_format_stix_and_fleet_stix_file(reentered: Any, tmp_path: Path) -> None:
    path, _, _ = reentered
    out, fleet_file = tmp_path / "one.json", tmp_path / "fleet.json"
    result = runner.invoke(app, ["hunt", str(path), "-q", "--format", "stix", "-o", str(out),
                                 "--stix", str(fleet_file), "--tlp", "red"])
    assert result.exit_code == 0, result.output
    validate(out.read_text("utf-8"))
    assert "TLP:RED" in out.read_text("utf-8")
    assert fleet_file.read_text("utf-8") == out.read_text("utf-8")
