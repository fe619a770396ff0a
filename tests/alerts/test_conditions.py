"""Rule conditions over analysis_metrics: thresholds, trailing baselines, multi-window burn rates,
absence of traffic, minimum traffic, stale data and bucket visibility."""
from __future__ import annotations

from datetime import timedelta

from harness import MIN, T0, make_config, series, write_metrics

from alerts.conditions import evaluate


def fired(store, rules, now):
    samples, failed = evaluate(store, make_config(rules=rules), now)
    assert not failed
    return sorted((s.rule.name, s.labels.get("service"), round(s.value, 4)) for s in samples.values())


COST = [{"name": "CostSpike", "severity": "P2",
         "condition": {"metric": "cost_usd", "grain": "1h", "op": ">",
                       "baseline": {"window": "7d", "factor": 3, "min_baseline": 0.01}}}]


def test_cost_spike_against_a_trailing_7d_mean(store):
    start = T0 - timedelta(days=7)
    write_metrics(store, series("cost_usd", start, 7 * 24 + 2, lambda i: 9.0 if i == 7 * 24 else 2.0,
                                grain="1h", step=timedelta(hours=1)))
    write_metrics(store, series("cost_usd", start, 7 * 24 + 2, lambda i: 5.0 if i == 7 * 24 else 2.0,
                                grain="1h", step=timedelta(hours=1), service="search"))
    now = T0 + timedelta(hours=1)      # the hour starting at T0 is complete
    assert fired(store, COST, now) == [("CostSpike", "checkout", 9.0)]   # 9 > 3 x 2; search's 5 is not


def test_burn_rate_needs_both_windows(store):
    rules = [{"name": "FastBurn", "severity": "P1",
              "condition": {"metric": "burn_rate_availability", "grains": ["1h", "5m"], "op": ">", "threshold": 14.4}}]
    now = T0 + 10 * MIN
    rows = series("burn_rate_availability", T0, 10, 20.0, grain="1h", service="checkout")
    rows += series("burn_rate_availability", T0, 10, 30.0, grain="5m", service="checkout")
    rows += series("burn_rate_availability", T0, 10, 20.0, grain="1h", service="search")
    rows += series("burn_rate_availability", T0, 10, 2.0, grain="5m", service="search")   # already recovering
    write_metrics(store, rows)
    assert fired(store, rules, now) == [("FastBurn", "checkout", 20.0)]


def test_service_silent(store):
    rules = [{"name": "ServiceSilent", "severity": "P1",
              "condition": {"absent": "requests", "window": "3m", "had_traffic_within": "1h"}}]
    rows = []
    for svc, last in (("checkout", 30), ("search", 60)):
        rows += [r | {"model": None, "route": None, "model_version": None}
                 for r in series("requests", T0, last, 50.0, service=svc)]
    write_metrics(store, rows)
    assert fired(store, rules, T0 + 60 * MIN) == [("ServiceSilent", "checkout", 0.0)]
    assert fired(store, rules, T0 + 31 * MIN) == []           # only one silent minute so far
    assert fired(store, rules, T0 + 34 * MIN) == [("ServiceSilent", "checkout", 0.0)]


def test_min_requests_guards_small_buckets(store):
    rules = [{"name": "HighErrorRate", "severity": "P1",
              "condition": {"metric": "error_rate", "op": ">", "threshold": 0.05, "min_requests": 20}}]
    rows = series("error_rate", T0, 2, 1.0) + series("requests", T0, 2, lambda i: 3.0 if i == 0 else 40.0)
    write_metrics(store, rows)
    assert fired(store, rules, T0 + 1 * MIN) == []            # 3 calls, 100% failed: not enough to page
    assert fired(store, rules, T0 + 2 * MIN) == [("HighErrorRate", "checkout", 1.0)]


def test_incomplete_and_stale_buckets_are_ignored(store):
    rules = [{"name": "HighErrorRate", "severity": "P1",
              "condition": {"metric": "error_rate", "op": ">", "threshold": 0.05}}]
    rows = series("error_rate", T0, 1, 0.5)
    rows[0]["computed_at"] = T0 + 5 * MIN                     # a replay: computed long after
    write_metrics(store, rows)
    assert fired(store, rules, T0 + 30 * 1 * MIN / 60) == []  # bucket not complete yet
    assert fired(store, rules, T0 + MIN) != []
    assert fired(store, rules, T0 + 10 * MIN) == []           # nothing newer for 9 minutes: stale


def test_partial_hour_counts_once_computed(store):
    rules = [{"name": "Drift", "severity": "P3",
              "condition": {"metric": "drift_share", "grain": "1h", "op": ">", "threshold": 0.3}}]
    rows = series("drift_share", T0, 1, 0.6, grain="1h")
    rows[0]["computed_at"] = T0 + 10 * MIN                    # live: the hourly analyzer wrote the partial hour
    write_metrics(store, rows)
    assert fired(store, rules, T0 + 5 * MIN) == []
    assert fired(store, rules, T0 + 11 * MIN) == [("Drift", "checkout", 0.6)]


def test_matchers_pick_rollups(store):
    rules = [{"name": "HighErrorRate", "severity": "P1",
              "condition": {"metric": "error_rate", "op": ">", "threshold": 0.05,
                            "match": {"service_name": "*", "route": None}}}]
    rows = series("error_rate", T0, 1, 0.5) + [r | {"service_name": None} for r in series("error_rate", T0, 1, 0.5)]
    rows += [r | {"route": None} for r in series("error_rate", T0, 1, 0.5)]
    rows += [r | {"route": None, "arm": "canary"} for r in series("error_rate", T0, 1, 0.5)]
    write_metrics(store, rows)
    samples, _ = evaluate(store, make_config(rules=rules), T0 + MIN)
    assert [s.labels for s in samples.values()] == [{"alertname": "HighErrorRate", "severity": "P1",
                                                     "service": "checkout", "model": "gpt-4o", "model_version": "v1"}]


def test_no_analysis_table_means_no_alerts(store):
    samples, failed = evaluate(store, make_config(), T0)
    assert samples == {} and failed == set()
