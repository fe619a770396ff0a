"""The rules file: shipped defaults, validation errors that name file, rule and key."""
from __future__ import annotations

from datetime import timedelta

import pytest

from alerts.rules import DEFAULT_RULES, RulesError, expand_env, load_config, parse_config


def test_shipped_defaults_follow_the_practice():
    config = load_config(DEFAULT_RULES, env={})
    by_sev = {s: {r.name for r in config.rules if r.severity == s} for s in ("P1", "P2", "P3")}
    assert by_sev["P1"] == {"RouteErrorBurst", "RouteSlowCalls", "ServiceSilent", "ErrorBudgetFastBurn",
                            "ErrorBudgetFastBurn6h", "LatencyBudgetFastBurn", "AiwatchAnalyzerFailing"}
    assert by_sev["P2"] == {"ConfidenceShift", "ConfidenceDistributionShift", "QualityDrop", "FormatComplianceDrop",
                            "CostSpike", "ErrorBudgetSlowBurn", "RouteConfidenceDrop", "RouteOutputTokensSpike",
                            "RouteCostSpike", "RouteInputTokensSpike"}
    assert by_sev["P3"] == {"DriftTrend", "OverrideRateIncrease", "OverrideRateIncrease6h", "ConfidenceDecline",
                            "ErrorBudgetSlowBurn3d",
                            "RouteInputTokensShift", "RouteInputTokensDrop", "RouteInputMixShift"}
    rules = {r.name: r for r in config.rules}
    # failures and slow calls: count tests per route and model against the route's normal rate
    errors, slow = rules["RouteErrorBurst"].condition, rules["RouteSlowCalls"].condition
    assert (errors.evidence.bad, errors.evidence.total, errors.evidence.rate) == (
        "route_errors", "route_calls", "route_error_baseline")
    assert (slow.evidence.bad, slow.evidence.rate) == ("route_slow_calls", "route_slow_budget")
    assert dict(errors.match) == {"service_name": "*", "route": "*", "model": "*", "arm": None}
    assert errors.evidence.min_bad == 5 and errors.over.total_seconds() == 300
    assert rules["RouteErrorBurst"].keep_firing_for.total_seconds() == 600      # no flapping
    assert all(r.keep_firing_for.total_seconds() >= {"P1": 600, "P2": 900, "P3": 3600}[r.severity]
               for r in config.rules if not r.condition.absent)
    assert config.routes[0].group_by == ("service",)                            # one page per service
    burns = {n: (rules[n].condition.grains, rules[n].condition.threshold) for n in
             ("ErrorBudgetFastBurn", "ErrorBudgetFastBurn6h", "ErrorBudgetSlowBurn", "ErrorBudgetSlowBurn3d")}
    assert burns == {"ErrorBudgetFastBurn": (("1h", "5m"), 14.4), "ErrorBudgetFastBurn6h": (("6h", "30m"), 6.0),
                     "ErrorBudgetSlowBurn": (("1d", "2h"), 3.0), "ErrorBudgetSlowBurn3d": (("3d", "6h"), 1.0)}
    cost = rules["CostSpike"].condition
    assert cost.baseline.factor == 2 and cost.baseline.window.days == 7
    # the route's rank test asks the same "over twice": its metric is route_shift's, at SPIKE_FACTOR
    from analysis.route_shift import SPIKE_FACTOR, RouteShiftAnalyzer
    for name in ("RouteCostSpike", "RouteInputTokensSpike"):
        ev = rules[name].condition.evidence
        assert SPIKE_FACTOR == cost.baseline.factor and {ev.bad, ev.total} <= set(RouteShiftAnalyzer.owns)
        assert ev.bad.startswith(f"route_{'cost' if 'Cost' in name else 'in'}{SPIKE_FACTOR}x_")
        # every window of the newest 1..15 minutes: the whole at p / 2, the 14 shorter at p / 28 each
        over = rules[name].condition.over
        assert ev.scan and ev.windows(over) == 15 and ev.window_p_value(over) == pytest.approx(1e-5 / 2)
        shares = [ev.window_p_value(over, timedelta(minutes=k)) for k in range(1, 16)]
        assert shares[:14] == [pytest.approx(1e-5 / 28)] * 14 and sum(shares) == pytest.approx(1e-5)
    assert not any(r.condition.evidence.scan for r in config.rules
                   if r.condition.evidence and r.name not in ("RouteCostSpike", "RouteInputTokensSpike"))
    assert rules["OverrideRateIncrease"].condition.evidence.bad == "overrides"
    # input drift on the route: rank tests over the calls since the onset, P3's hour in mind
    for name, bad in (("RouteInputTokensShift", "route_in_high_score"), ("RouteInputTokensDrop", "route_in_low_score"),
                      ("RouteInputMixShift", "route_mix_low_score")):
        ev = rules[name].condition.evidence
        assert (ev.test, ev.bad, ev.p_value, rules[name].condition.over.total_seconds()) == ("rank", bad, 1e-6, 1800)
    assert rules["ServiceSilent"].condition.absent
    assert [r.receivers for r in config.routes] == [("pagerduty", "slack", "webhook", "oncall"),
                                                    ("slack", "webhook", "oncall"), ("review", "webhook")]
    assert config.routes[0].group_wait.total_seconds() == 30 and config.routes[0].group_interval.total_seconds() == 300
    assert config.routes[0].repeat_interval.total_seconds() == 4 * 3600
    inhibit = config.inhibitions[0]
    assert inhibit.source == (("severity", "P1"),) and inhibit.target == (("severity", "P2"),)
    assert inhibit.equal == ("service",)
    assert all(r.runbook.startswith("https://") for r in config.rules)


def test_receivers_come_from_the_environment():
    env = {"AIWATCH_SLACK_WEBHOOK_URL": "http://127.0.0.1:9/slack", "AIWATCH_PAGERDUTY_ROUTING_KEY": "k"}
    config = load_config(DEFAULT_RULES, env=env)
    assert config.receivers["slack"].url == "http://127.0.0.1:9/slack" and config.receivers["slack"].configured
    assert config.receivers["pagerduty"].url == "https://events.pagerduty.com/v2/enqueue"
    assert config.receivers["pagerduty"].configured
    assert config.receivers["digest"].url == "http://127.0.0.1:9/slack"      # falls back to the Slack URL
    assert not config.receivers["webhook"].configured
    assert expand_env("${A:-${B:-x}}", {}) == "x"


def problems(text: str, tmp_path) -> list[str]:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(RulesError) as info:
        load_config(path, env={})
    return info.value.problems


def test_errors_name_the_file_the_rule_and_the_key(tmp_path):
    found = problems("""
rules:
  - name: Good
    severity: P1
    condition: {metric: error_rate, op: ">", threshold: 0.05}
  - name: Bad
    severity: P9
    condition: {metric: error_ratio, op: "=>", threshold: high, grain: 2m}
    for: five minutes
    summary: "{service} {nope}"
    colour: red
  - name: Good
    severity: P2
    condition: {metric: cost_usd, op: ">", baseline: {factor: 3}}
""", tmp_path)
    path = str(tmp_path / "rules.yaml")
    assert all(p.startswith(path + ": ") for p in found)
    text = "\n".join(found)
    for expected in ("rule 'Bad': key 'severity'", "rule 'Bad': key 'condition.metric': 'error_ratio'",
                     "rule 'Bad': key 'condition.op'", "rule 'Bad': key 'condition.threshold'",
                     "rule 'Bad': key 'condition.grain'", "rule 'Bad': key 'for'", "rule 'Bad': key 'summary'",
                     "rule 'Bad': key 'colour'", "rule 'Good': key 'condition.baseline.window'",
                     "rule 'Good': key 'name': is used by another rule"):
        assert expected in text, expected
    assert "rule 'Good': key 'severity'" not in text


def test_structural_errors(tmp_path):
    assert "not valid YAML" in problems("rules: [", tmp_path)[0]
    assert "key 'rules'" in problems("defaults: {}\n", tmp_path)[0]
    found = "\n".join(problems("""
receivers: {slack: {type: teams, url: x}}
routes: [{match: {severity: P1}, receivers: [nowhere]}]
rules: []
""", tmp_path))
    assert "receiver 'slack': key 'type'" in found and "route #1: key 'receivers': no receiver named 'nowhere'" in found
    with pytest.raises(RulesError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_minimal_file_gets_defaults():
    config = parse_config({"rules": [{"name": "A", "severity": "P3",
                                      "condition": {"metric": "drift_share", "grain": "1h", "threshold": 0.3}}]})
    assert config.routes[0].receivers == ("review",)
    assert config.rules[0].condition.match == (("arm", None),)


def test_a_null_baseline_number_is_an_error_not_a_none_at_evaluation(tmp_path):
    # `factor: null` loaded as Baseline(factor=None) and failed with a TypeError on the first evaluation
    found = "\n".join(problems("""
rules:
  - name: Cost
    severity: P3
    condition: {metric: cost_usd, op: ">", baseline: {window: 7d, factor: null, delta: ~}}
""", tmp_path))
    assert "rule 'Cost': key 'condition.baseline.factor': null is not a number" in found
    assert "rule 'Cost': key 'condition.baseline.delta': null is not a number" in found


def test_every_additive_metric_is_in_the_catalog_and_every_tail_sum_is_additive():
    from analysis.metrics_catalog import ADDITIVE, CATALOG
    from analysis.route_shift import RouteShiftAnalyzer

    assert ADDITIVE <= CATALOG.keys()
    # the rank test sums the route_shift counts and scores over its window
    sums = {m for m in RouteShiftAnalyzer.owns if m.endswith(("_scored", "_score"))}
    assert sums and sums <= ADDITIVE
    assert not {m for m in ADDITIVE if m.endswith("_reference_calls")}


def test_the_rules_table_says_a_rank_rule_also_judges_a_route_over_all_its_models() -> None:
    from alerts.rule_view import rules_table

    scope = dict(zip(*rules_table(load_config(None, env={})).select(["name", "scope"]).to_pydict().values(),
                     strict=True))
    assert scope["RouteCostSpike"] == "per service x route: each model, and all of a route's models together"
    assert scope["RouteErrorBurst"] == "per service x route x model"
