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


SECTIONS = """
defaults: {group_wait: soon, group_by: service}
receivers:
  slack: {type: slack, url: "http://127.0.0.1:9/s", send_resolved: "no", timeout: 0s}
  pager: {type: pagerduty, routing_key: 42, colour: red}
  teams: {url: "http://127.0.0.1:9/t"}
routes:
  - {match: {severity: [P1, {a: b}]}, receivers: slack, group_wait: 5 minutes}
  - {match: {severity: P2}, receivers: [slack, nowhere]}
  - {receivers: [review], repeat_intervall: 1h}
inhibit_rules:
  - {source: {severity: P1}, equal: service}
  - {source: [severity], target: {severity: P3}}
weekly_digest: {receiver: nowhere, every: 7 days}
watchdog: {every: 1m}
rules: []
"""
SECTION_PROBLEMS = [
    "defaults: key 'group_wait': 'soon' is not a duration",
    "defaults: key 'group_by': must be a list",
    "receiver 'slack': key 'send_resolved': 'no' is not true or false",
    "receiver 'slack': key 'timeout': must be more than 0 s and at most 120 s",
    "receiver 'pager': key 'routing_key': must be a string",
    "receiver 'pager': key 'colour': unknown key",
    "receiver 'teams': key 'type': is required (one of pagerduty, slack, webhook, apprise, review)",
    "route #1: key 'match.severity': ['P1', {'a': 'b'}] is not a label value",
    "route #1: key 'receivers': must be a list",
    "route #1: key 'group_wait': '5 minutes' is not a duration",
    "route #2: key 'receivers': no receiver named 'nowhere'",
    "route #3: key 'repeat_intervall': unknown key",
    "inhibit rule #1: key 'target': is required",
    "inhibit rule #1: key 'equal': must be a list",
    "inhibit rule #2: key 'source': must be a mapping",
    "weekly_digest: key 'every': '7 days' is not a duration",
    "watchdog: key 'receiver': is required",
]


def test_receivers_routes_and_inhibitions_are_schema_checked_naming_file_section_and_key(tmp_path):
    """The sections beside the rules go through pydantic models too (ReceiverSpec, RouteSpec,
    InhibitSpec, ...): a wrong type, an unknown key or a bad duration in any of them is one problem
    naming the file, the section entry and the key, listed with all the others."""
    path = tmp_path / "rules.yaml"
    path.write_text(SECTIONS)
    with pytest.raises(RulesError) as err:
        load_config(path, env={})
    found = err.value.problems
    for expected in SECTION_PROBLEMS:
        assert any(problem.startswith(f"{path}: {expected}") for problem in found), expected
    assert all(problem.startswith(f"{path}: ") for problem in found)


def test_a_section_of_the_wrong_kind_is_a_problem_not_a_crash():
    with pytest.raises(RulesError) as err:
        parse_config({"receivers": ["slack"], "routes": {"match": {}}, "inhibit_rules": "none", "rules": []})
    assert err.value.problems == ["<memory>: top level: key 'receivers': must be a mapping of name to receiver",
                                  "<memory>: top level: key 'routes': must be a list of routes",
                                  "<memory>: top level: key 'inhibit_rules': must be a list of inhibit rules"]


def test_section_values_keep_their_meaning():
    config = parse_config({
        "defaults": {"group_wait": "0s", "group_by": ["service"]},
        "receivers": {"hook": {"type": "webhook", "url": "${HOOK}", "send_resolved": False, "timeout": "3s"}},
        "routes": [{"match": {"severity": ["P1", "P2"], "service": 7}, "receivers": ["hook"]}],
        "inhibit_rules": [{"source": {"severity": "P1"}, "target": {"severity": "P2"}, "equal": ["service"]}],
        "rules": []}, env={"HOOK": "http://127.0.0.1:9/h"})
    hook = config.receivers["hook"]
    assert (hook.url, hook.send_resolved, hook.timeout_s) == ("http://127.0.0.1:9/h", False, 3.0)
    route = config.routes[0]
    assert route.match == (("severity", ("P1", "P2")), ("service", "7")) and route.group_by == ("service",)
    assert route.group_wait.total_seconds() == 0 and route.repeat_interval.total_seconds() == 4 * 3600
    assert config.inhibitions[0].equal == ("service",)
