"""Compiled Sigma rules are kept between hunts: a second hunt reads the same rules without
loading pySigma, and a changed rule folder or a damaged cache file is compiled again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from exhunt.checks import sigma

RULE = """title: Whoami by a web server
name: test.whoami
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: '\\\\whoami.exe'}
  condition: sel
level: high
"""


def _load(folder: Path) -> sigma.SigmaRules:
    sigma.load_sigma.cache_clear()
    return sigma.load_sigma((str(folder),))


def test_a_second_load_gives_the_same_rules_from_the_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXHUNT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "whoami.yml").write_text(RULE)
    first = _load(tmp_path / "rules")
    assert list((tmp_path / "cache" / "sigma").glob("*.json"))
    second = _load(tmp_path / "rules")
    assert second == first
    assert "test.whoami" in {rule.name for rule in second.rules}


def test_a_warm_cache_loads_no_pysigma(tmp_path: Path) -> None:
    code = ("import sys; from exhunt.checks.sigma import load_sigma; "
            "rules = load_sigma(); "
            "print(len(rules.rules), any(m.split('.')[0] == 'sigma' for m in sys.modules))")
    env = {"EXHUNT_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": ":".join(sys.path)}
    cold = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True).stdout.split()
    warm = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True).stdout.split()
    assert cold[1] == "True" and warm[1] == "False"
    assert cold[0] == warm[0] and int(warm[0]) > 10


def test_a_changed_rule_or_a_damaged_cache_is_compiled_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXHUNT_CACHE", str(tmp_path / "cache"))
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "whoami.yml").write_text(RULE)
    _load(rules)
    (rules / "whoami.yml").write_text(RULE.replace("level: high", "level: low"))
    changed = {r.name: r.severity.label for r in _load(rules).rules}
    assert changed["test.whoami"] == "low"
    for cached in (tmp_path / "cache" / "sigma").glob("*.json"):
        cached.write_text(json.dumps({"rules": [{"name": 1}]}))
    again = {r.name: r.severity.label for r in _load(rules).rules}
    assert again == changed
