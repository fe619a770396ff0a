"""Count-test conditions (`evidence`): failures or slow calls against the route's normal rate,
with the binomial tail checked against scipy, quiet routes, immature baselines and learned rates."""
from __future__ import annotations

from datetime import timedelta

import pytest
from harness import MIN, T0, make_config, series, write_metrics
from scipy.stats import beta, binom

from alerts.conditions import evaluate, render_annotations

ROUTE_ERRORS = [{"name": "RouteErrorBurst", "severity": "P1",
                 "summary": "{service} {route}: {bad} of {total}{maturity}",
                 "condition": {"evidence": {"bad": "route_errors", "total": "route_calls",
                                            "rate": "route_error_baseline", "factor": 3, "floor": 0.02,
                                            "p_value": 1e-4, "min_bad": 5},
                               "over": "5m", "match": {"service_name": "*", "route": "*", "model": "*"}}}]
HOUR = timedelta(hours=1)


def route(store, name, calls, errors, *, baseline=0.007, hours=12.0, minutes=5):
    """`minutes` minute rows of one route ending just before T0 + 10 min, plus its hourly baseline."""
    start = T0 + (10 - minutes) * MIN
    rows = series("route_calls", start, minutes, calls / minutes, route=name)
    rows += series("route_errors", start, minutes, errors / minutes, route=name)
    rows += series("route_error_baseline", T0 - HOUR, 1, baseline, grain="1h", route=name)
    rows += series("route_baseline_hours", T0 - HOUR, 1, hours, grain="1h", route=name)
    write_metrics(store, rows)


def fired(store, rules, now=T0 + 10 * MIN):
    samples, failed = evaluate(store, make_config(rules=rules), now)
    assert not failed
    return {s.labels["route"]: s for s in samples.values()}


def test_four_failures_among_eight_calls_do_not_page_a_burst_does(store):
    route(store, "/quiet", 8, 4)          # 4 of 8: fewer than min_bad failures
    route(store, "/busy", 300, 8)         # 2.7%: within chance of the 2% floor
    route(store, "/burst", 60, 9)         # 15% of a few calls a minute
    got = fired(store, ROUTE_ERRORS)
    assert set(got) == {"/burst"}
    sample = got["/burst"]
    assert sample.value == pytest.approx(9 / 60) and sample.threshold == pytest.approx(0.021)
    assert dict(sample.fields)["p_value"] == pytest.approx(binom.sf(8, 60, 0.021), rel=1e-9)
    assert dict(sample.fields)["p_value"] < 1e-4 and sample.baseline == pytest.approx(0.007)
    assert render_annotations(sample, "http://dash")["summary"] == "checkout /burst: 9 of 60"


def test_the_tolerated_rate_follows_the_route_normal_rate(store):
    route(store, "/flaky", 60, 9, baseline=0.05)       # normally 5% failing: 15% is 3x, not more
    assert fired(store, ROUTE_ERRORS) == {}


def test_an_immature_baseline_is_used_and_named(store):
    route(store, "/young", 60, 9, hours=1.0)
    notes = render_annotations(fired(store, ROUTE_ERRORS)["/young"], "http://dash")
    assert notes["summary"].endswith("baseline immature: 1 h of history (minimum 3h)")
    assert notes["baseline_maturity"] == "baseline: 1 h of history, 3h minimum (immature)"
    route(store, "/grown", 60, 9, hours=5.0)
    notes = render_annotations(fired(store, ROUTE_ERRORS)["/grown"], "http://dash")
    assert notes["baseline_maturity"] == "baseline: 5 h of history, 3h minimum"


def test_without_any_baseline_the_floor_alone_is_the_tolerance(store):
    write_metrics(store, series("route_calls", T0 + 5 * MIN, 5, 12.0, route="/new")
                  + series("route_errors", T0 + 5 * MIN, 5, 2.0, route="/new"))
    sample = fired(store, ROUTE_ERRORS)["/new"]
    assert sample.threshold == 0.02 and "no history yet" in dict(sample.fields)["maturity"]


OVERRIDES = [{"name": "OverrideRateIncrease", "severity": "P3",
              "condition": {"evidence": {"bad": "overrides", "total": "reviewed", "delta": 0.03, "p_value": 0.01,
                                         "min_bad": 5, "baseline_window": "1d"},
                            "over": "1h", "match": {"service_name": "*", "route": "*"}}}]


def test_a_learned_rate_from_the_hours_before_the_window(store):
    start = T0 - 6 * HOUR
    rows = []
    for name, rate_now in (("/steady", 0.2), ("/rising", 0.4)):
        rows += series("reviewed", start, 7 * 60, 2.0, route=name)
        rows += series("overrides", start, 7 * 60, lambda i, r=rate_now: 2 * (r if i >= 6 * 60 else 0.2), route=name)
    write_metrics(store, rows)
    now = T0 + HOUR            # the window: the minutes T0 .. T0 + 59; the history: before T0
    got = fired(store, OVERRIDES, now)
    assert set(got) == {"/rising"}
    s = got["/rising"]
    # tested against the learned rate's upper 97.5% bound (Clopper-Pearson: 144 of 720 reviews) + delta
    tolerated = beta.ppf(0.975, 145, 720 - 144) + 0.03
    assert s.baseline == pytest.approx(0.2) and s.threshold == pytest.approx(tolerated)
    fields = dict(s.fields)
    assert fields["total"] == 120 and fields["bad"] == 48 and fields["history_hours"] == pytest.approx(6.0)
    assert fields["p_value"] == pytest.approx(binom.sf(47, 120, tolerated), rel=1e-9)


def test_a_rate_learned_from_few_reviews_tolerates_its_uncertainty(store):
    # 4 h of 0.5 reviews a minute at 10% overrides (12 of 120), then an hour of 11 of 30: against the
    # point estimate (0.13) p = 1.6e-3 would fire; against the bound (~0.2) it is chance
    start = T0 - 4 * HOUR
    write_metrics(store, series("reviewed", start, 5 * 60, 0.5, route="/quiet")
                  + series("overrides", start, 5 * 60, lambda i: 0.05 if i < 4 * 60 else 11 / 60, route="/quiet"))
    assert binom.sf(10, 30, 0.13) < 0.01
    assert fired(store, OVERRIDES, T0 + HOUR) == {}


def test_rules_file_problems_name_the_key():
    from alerts.rules import RulesError

    bad = [{"name": "X", "severity": "P1", "condition": {"evidence": {"bad": "route_error_baseline",
                                                                        "total": "route_calls", "p_value": 2},
                                                           "threshold": 1}}]
    with pytest.raises(RulesError) as err:
        make_config(rules=bad)
    text = str(err.value)
    assert "condition.evidence.bad" in text and "condition.over" in text and "condition.evidence.p_value" in text
    assert "condition.threshold" in text


def test_a_learned_rate_with_minutes_of_history_and_no_floor_is_not_evidence(store):
    start = T0 - 20 * MIN
    write_metrics(store, series("reviewed", start, 80, 2.0, route="/young")
                  + series("overrides", start, 80, lambda i: 0.0 if i < 20 else 1.0, route="/young"))
    assert fired(store, OVERRIDES, T0 + HOUR) == {}       # 20 minutes of 0% then 50%: too little history
