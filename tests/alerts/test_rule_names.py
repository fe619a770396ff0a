"""Rule metric names and grains come from the analyzers' catalog, so `aiwatch alerts check` cannot drift."""
from __future__ import annotations

import subprocess
import sys

import pytest

from alerts.rules import GRAINS, RulesError, parse_config
from analysis.metrics_catalog import CATALOG
from core.grains import GRAIN_SECONDS


def rule(condition: dict) -> dict:
    return {"rules": [{"name": "R", "severity": "P3", "condition": condition}]}


@pytest.mark.parametrize("metric", sorted(m for m in CATALOG if not m.endswith(":")))
def test_every_catalog_metric_is_accepted(metric):
    parse_config(rule({"metric": metric, "grain": "1h", "threshold": 1}))


def test_family_members_are_accepted_and_bare_families_and_typos_are_not():
    parse_config(rule({"metric": "drift_score:input_tokens", "grain": "1h", "threshold": 1}))
    for bad in ("drift_score:", "confidence_p51", 3):
        with pytest.raises(RulesError, match="condition.metric"):
            parse_config(rule({"metric": bad, "grain": "1h", "threshold": 1}))


def test_grains_are_the_analysis_grains():
    assert GRAINS == GRAIN_SECONDS
    with pytest.raises(RulesError, match="condition.grain"):
        parse_config(rule({"metric": "requests", "grain": "7h", "threshold": 1}))


def test_alerts_check_accepts_confidence_p50_and_fallback_human(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("""rules:
  - {name: LowConfidence, severity: P3, condition: {metric: confidence_p50, grain: 1h, op: "<", threshold: 0.5}}
  - {name: Humans, severity: P3, condition: {metric: fallback_human, threshold: 0.2}}
""")
    done = subprocess.run([sys.executable, "-m", "aiwatch", "alerts", "check", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "OK: 2 rules" in done.stdout


def test_every_shipped_rule_links_to_the_page_that_shows_its_metric():
    """The link in a notification opens the page that charts the rule's evidence, filtered to the
    alert's service, route and model (the page map is the catalog's; it used to be matched on name
    fragments, which sent every route rule but the error burst to the overview)."""
    from alerts.conditions import Sample, render_annotations
    from alerts.rules import load_config

    want = {"RouteErrorBurst": "errors", "RouteSlowCalls": "latency", "ServiceSilent": "",
            "ErrorBudgetFastBurn": "", "LatencyBudgetFastBurn": "latency", "RouteConfidenceDrop": "quality",
            "RouteOutputTokensSpike": "cost", "CostSpike": "cost", "DriftTrend": "drift",
            "RouteInputTokensShift": "drift", "RouteInputTokensDrop": "drift", "RouteInputMixShift": "drift",
            "OverrideRateIncrease": "review", "OverrideRateIncrease6h": "review", "ConfidenceDecline": "quality", "FormatComplianceDrop": "quality"}
    labels = {"alertname": "x", "service": "search", "route": "rank", "model": "gpt-4o-mini"}
    links = {r.name: render_annotations(Sample(r, labels, 1.0, 0.5), "http://dash/")["view"]
             for r in load_config(None, env={}).rules}
    for name, page in want.items():
        assert links[name] == f"http://dash/{page}?start=-6h&service=search&model=gpt-4o-mini&route=rank", name
