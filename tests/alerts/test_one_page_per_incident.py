"""One page per incident: the error-rate and burn-rate rules of one service share one notification
group (one PagerDuty dedup key), so they page once; the shipped rules route P1/P2 that way."""
from __future__ import annotations

from pathlib import Path

import yaml
from harness import BASE_CONFIG, MIN, T0, make_config, series, write_metrics

from alerts.engine import dedup_key

SHIPPED = Path(__file__).resolve().parents[2] / "alerts" / "default_rules.yaml"


def test_shipped_rules_group_p1_and_p2_by_service_alone():
    routes = yaml.safe_load(SHIPPED.read_text())["routes"]
    for sev in ("P1", "P2"):
        [route] = [r for r in routes if r["match"] == {"severity": sev}]
        assert route["group_by"] == ["service"]


def test_error_rate_and_burn_rate_rules_page_once(store, script_for):
    write_metrics(store, series("error_rate", T0, 60, lambda i: 0.3 if i >= 10 else 0.01)
                  + series("burn_rate_availability", T0, 60, lambda i: 40.0 if i >= 10 else 0.5))
    rules = BASE_CONFIG["rules"][:1] + [{"name": "ErrorBudgetFastBurn", "severity": "P1", "for": "2m",
                                         "condition": {"metric": "burn_rate_availability", "op": ">",
                                                       "threshold": 14.4}}]
    s = script_for(make_config(rules=rules, routes=[{"match": {}, "receivers": ["ops"], "group_by": ["service"]}]))
    s.quiet_until(T0 + 11 * MIN)   # the first bad bucket (10 min) is visible from 11
    s.run_until(T0 + 30 * MIN)
    firing = s.notified("firing")
    assert {a["labels"]["alertname"] for _, m in firing for a in m["alerts"]} == {"HighErrorRate",
                                                                                  "ErrorBudgetFastBurn"}
    assert len({dedup_key(m["groupKey"]) for _, m in firing}) == 1   # one incident
    assert len(firing) == 1   # both rules fire together: one notification carries both


def test_slack_text_names_the_service_once_in_its_header():
    from alerts.notifiers import slack_message

    labels = {"alertname": "HighErrorRate", "severity": "P1", "service": "checkout", "route": "/pay"}
    message = {"status": "firing", "alerts": [{"status": "firing", "labels": labels, "startsAt": "2026-11-20T10:00:00Z",
                                                "annotations": {"summary": "checkout: error rate 30.0% over 5 minutes",
                                                                "metric": "error_rate", "value": 0.3,
                                                                "threshold": 0.05, "op": ">"}}]}
    blocks = slack_message(message)["blocks"]
    assert "checkout" in blocks[0]["text"]["text"]
    assert blocks[1]["text"]["text"] == "*error rate 30.0% over 5 minutes*"
    assert "checkout" not in str(blocks[1:])   # header only
