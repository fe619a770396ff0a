"""The rule schema is a pydantic model whose metric names and grains are the analyzers' own (catalog and
grains), so they cannot drift; `aiwatch alerts check` and the server's start-up both use it, and each
problem names the rules file, the rule and the field."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aiwatch.config import ConfigError, Settings
from alerts.rules import RulesError, RuleSpec, load_config, parse_config
from analysis import metrics_catalog
from core import grains

ROOT = Path(__file__).resolve().parents[2]
BAD = """
rules:
  - name: Mixed
    severity: P2
    x-note: notes are allowed
    condition:
      metric: error_rate
      threshold: 0.05
      match: {servce: checkout}
      also: [{metric: errors_total, op: ">=", threshold: 3}]
  - name: Counted
    severity: P1
    condition: {evidence: {bad: error_rate, total: requests, p_value: 0}, over: 10m}
  - name: Slow
    severity: P3
    for: 5 minutes
    condition: {metric: latency_p99_ms, grains: [], baseline: {window: 7d, factor: null}}
"""
EXPECTED = ["rule 'Mixed': key 'condition.match.servce': 'servce' is not one of service_name, model",
            "rule 'Mixed': key 'condition.also[0].metric': 'errors_total' is not an analyzer metric",
            "rule 'Counted': key 'condition.evidence.bad': 'error_rate' is not a count",
            "rule 'Counted': key 'condition.evidence.p_value': 0 must be between 0 and 1",
            "rule 'Slow': key 'for': '5 minutes' is not a duration",
            "rule 'Slow': key 'condition.grains': must be a non-empty list",
            "rule 'Slow': key 'condition.baseline.factor': null is not a number"]


def test_nested_problems_name_the_file_the_rule_and_the_field(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(BAD)
    with pytest.raises(RulesError) as err:
        load_config(path, env={})
    text = str(err.value)
    for expected in EXPECTED:
        assert f"{path}: {expected}" in text, expected
    assert len(err.value.problems) == len(EXPECTED)


def test_a_metric_or_grain_the_analyzers_add_is_accepted_without_touching_the_rules(monkeypatch):
    rule = {"rules": [{"name": "R", "severity": "P3", "condition": {"metric": "brand_new", "grain": "12h",
                                                                    "threshold": 1}}]}
    with pytest.raises(RulesError) as err:
        parse_config(rule)
    assert "condition.metric" in str(err.value) and "condition.grain" in str(err.value)
    monkeypatch.setitem(metrics_catalog.CATALOG, "brand_new", ("count", "A metric an analyzer just started writing."))
    monkeypatch.setitem(grains.GRAIN_SECONDS, "12h", 43_200)
    assert parse_config(rule).rules[0].condition.grains == ("12h",)


def test_the_schema_is_a_pydantic_model_of_the_rule():
    spec = RuleSpec.model_validate({"name": "A", "severity": "P1", "for": "2m",
                                    "condition": {"metric": "errors", "threshold": 3, "over": "5m"}})
    assert spec.for_.total_seconds() == 120 and spec.condition.over.total_seconds() == 300
    assert set(RuleSpec.model_json_schema()["properties"]) >= {"name", "severity", "condition", "for"}


def test_alerts_check_prints_every_problem(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(BAD)
    done = subprocess.run([sys.executable, "-m", "aiwatch", "alerts", "check", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    for expected in EXPECTED:
        assert f"{path}: {expected}" in done.stderr


def test_start_up_stops_on_a_bad_rules_file_naming_the_rule_and_field(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as err:
        Settings.load(env={"AIWATCH_ALERTS_RULES": str(path)})
    assert f"environment AIWATCH_ALERTS_RULES: [alerts] rules: \n  {path}: rule 'Mixed'" in str(err.value)
    env = {**os.environ, "AIWATCH_ALERTS_RULES": str(path)}
    done = subprocess.run([sys.executable, "-m", "aiwatch", "serve", "--port", "0", "--data-dir", str(tmp_path / "d")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert f"{path}: rule 'Slow': key 'condition.baseline.factor': null is not a number" in done.stderr
    assert not (tmp_path / "d").exists()      # stopped before anything was created
