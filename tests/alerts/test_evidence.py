"""Count-test conditions (`evidence`): failures or slow calls against the route's normal rate,
with the binomial tail checked against scipy, quiet routes, immature baselines and learned rates."""
from __future__ import annotations

import dataclasses
from datetime import timedelta

import numpy as np
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
    notes = render_annotations(sample, "http://dash")
    assert notes["summary"] == "checkout /burst: 9 of 60"
    # what Slack and the alert tables show: the share of calls against the tolerated share
    from alerts.notifiers import value_vs_threshold

    assert value_vs_threshold(notes) == "15% > 2.1%" and notes["window"] == "5m"


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


# --- rank tests: per-call tail percentiles among the route's reference (analysis/route_shift.py) ---

CONF_DROP = [{"name": "RouteConfidenceDrop", "severity": "P2",
              "summary": "{service} {route}: {total} calls at {value:.0%}",
              "condition": {"evidence": {"test": "rank", "bad": "route_conf_low_score", "total": "route_conf_scored",
                                         "p_value": 1e-5, "max_mean": 0.25},
                            "over": "15m", "match": {"service_name": "*", "route": "*", "model": "*"}}}]


def scored(store, name, calls, score_sum, minutes=15):
    start = T0 + (10 - minutes) * MIN
    write_metrics(store, series("route_conf_scored", start, minutes, calls / minutes, route=name)
                  + series("route_conf_low_score", start, minutes, score_sum / minutes, route=name))


def test_irwin_hall_tail_is_exact_for_few_calls_and_bounded_for_many():
    from scipy.stats import irwinhall

    from analysis.rank_test import irwin_hall_lower

    for n, s in ((1, 0.3), (5, 0.25), (5, 1.7), (12, 2.5), (40, 9.0), (60, 20.0)):
        assert irwin_hall_lower(s, n) == pytest.approx(float(irwinhall(n).cdf(s)), rel=1e-9)
    for n, s in ((100, 30.0), (400, 170.0)):          # the Chernoff bound: above the exact tail
        assert float(irwinhall(n).cdf(s)) <= irwin_hall_lower(s, n) <= 1
    # under the null (uniform percentiles) the p-value is uniform or larger: P(p < a) <= a
    rng = np.random.default_rng(3)
    for n in (3, 8, 30):
        p = np.array([irwin_hall_lower(u.sum(), n) for u in rng.uniform(size=(20_000, n))])
        assert (p < 0.01).mean() < 0.0115 and (p < 0.001).mean() < 0.0016


def test_a_few_calls_deep_in_the_tail_page_and_a_busy_wobble_does_not(store):
    from scipy.stats import irwinhall

    scored(store, "/quiet", 6, 6 * 0.03)       # 6 calls at the reference's 3rd percentile
    scored(store, "/busy", 600, 600 * 0.44)    # significant, but a wobble: calls average the 44th
    scored(store, "/two", 2, 2 * 0.002)        # 2 calls deep in the tail: p = 0.004^2 / 2 = 8e-6
    got = fired(store, CONF_DROP)
    from analysis.rank_test import irwin_hall_lower

    assert irwin_hall_lower(600 * 0.44, 600) < 1e-5 and irwinhall(2).cdf(0.004) < 1e-5
    assert set(got) == {"/quiet", "/two"}
    sample = got["/quiet"]
    assert dict(sample.fields)["p_value"] == pytest.approx(float(irwinhall(6).cdf(0.18)), rel=1e-9)
    assert sample.value == pytest.approx(0.03) and dict(sample.fields)["total"] == 6
    notes = render_annotations(sample, "http://dash")
    assert notes["summary"] == "checkout /quiet: 6 calls at 3%"
    from alerts.notifiers import value_vs_threshold

    assert value_vs_threshold(notes) == "3% <= 25%"    # a mean tail percentile at or under its bound
    scored(store, "/one", 1, 0.002)           # one call is never evidence at 1e-5 (its p is its percentile)
    assert "/one" not in fired(store, CONF_DROP)


def test_rank_rules_refuse_the_count_test_keys():
    from alerts.rules import RulesError

    rule = {**CONF_DROP[0], "condition": {**CONF_DROP[0]["condition"], "evidence": {
        **CONF_DROP[0]["condition"]["evidence"], "rate": "route_error_baseline", "min_bad": 3}}}
    with pytest.raises(RulesError) as err:
        make_config(rules=[rule])
    assert "condition.evidence.rate" in str(err.value) and "condition.evidence.min_bad" in str(err.value)
    fisher = {**CONF_DROP[0], "condition": {**CONF_DROP[0]["condition"], "evidence": {
        "test": "fisher", "bad": "overrides", "total": "reviewed", "rate": "route_error_baseline"}}}
    with pytest.raises(RulesError, match="does not go with test fisher"):
        make_config(rules=[fisher])
    scanned = {**fisher, "condition": {**fisher["condition"], "evidence": {
        "test": "fisher", "bad": "overrides", "total": "reviewed", "scan": True}}}
    with pytest.raises(RulesError, match="condition.evidence.scan.*goes with test rank only"):
        make_config(rules=[scanned])
    fisher_ev = {"test": "fisher", "bad": "overrides", "total": "reviewed"}
    for evidence, over, message in (({**fisher_ev, "recent": "6h"}, "6h", "recent.*must be shorter than condition.over"),
                                    ({**CONF_DROP[0]["condition"]["evidence"], "recent": "1m"}, "15m",
                                     "recent.*goes with count tests only"),
                                    ({**fisher_ev, "recent": "soon"}, "6h", "recent")):
        recent = {**fisher, "condition": {**fisher["condition"], "over": over, "evidence": evidence}}
        with pytest.raises(RulesError, match=message):
            make_config(rules=[recent])


def test_format_failures_on_a_quiet_night_route_are_chance_a_schema_break_pages(store):
    """The shipped FormatComplianceDrop: 5 failures among 20 night-time calls (25%) of a route that
    fails 1.7% of the time did page as `format_ok_rate` 15 points under its mean (benchmark seed 12,
    level 0.3); as a count test it is chance (p ~ 0.01 against 5 points over the rate's upper
    bound). 24 of 60 is a break."""
    from alerts.rules import load_config

    config = load_config(None, env={})
    rule = next(r for r in config.rules if r.name == "FormatComplianceDrop")
    start = T0 - 6 * HOUR
    for name, per_min, fails in (("/quiet", 20 / 15, 5), ("/broken", 4.0, 24)):
        write_metrics(store, series("requests", start, 6 * 60 - 5, per_min, route=name)
                      + series("format_failures", start, 6 * 60 - 5, per_min * 0.017, route=name)
                      + series("requests", T0 - 5 * MIN, 15, per_min, route=name)
                      + series("format_failures", T0 - 5 * MIN, 15, fails / 15, route=name))
    samples, failed = evaluate(store, dataclasses.replace(config, rules=(rule,)), T0 + 10 * MIN)
    assert not failed
    got = {s.labels["route"]: s for s in samples.values()}
    assert set(got) == {"/broken"}
    assert dict(got["/broken"].fields)["bad"] == 24 and dict(got["/broken"].fields)["total"] == 60
    assert binom.sf(4, 20, 0.017 + 0.05) > 1e-3    # the quiet route: chance even at the point rate


def test_override_rise_on_a_quiet_route_is_tested_against_the_baseline_counts(store):
    """The shipped OverrideRateIncrease: a day of 1 review a minute at 20% overrides, then an hour
    of 40 reviews. 18 overridden (45%) is the benchmark's 20% -> 40% rise: against the baseline's
    upper bound plus 3 points (the binomial test it had) p ~ 5e-3, missed; Fisher's exact test of
    18/40 against 288/1440 gives p = 4e-4 (the rule pages under 5e-4). 12 of 40 (30%) stays chance."""
    from scipy.stats import hypergeom

    from alerts.rules import load_config

    config = load_config(None, env={})
    rule = next(r for r in config.rules if r.name == "OverrideRateIncrease")
    base = T0 - 24 * HOUR
    for name, overridden in (("/rise", 18), ("/same", 12)):
        rows = (series("reviewed", base, 24 * 60, 1.0, route=name, model=None)
                + series("overrides", base, 24 * 60, lambda i: float(i % 5 == 0), route=name, model=None)
                + series("reviewed", T0, 60, lambda i: float(i < 40), route=name, model=None)
                + series("overrides", T0, 60, lambda i, k=overridden: float(i < k), route=name, model=None))
        write_metrics(store, [{**r, "model_version": None} for r in rows])    # the route rollup
    samples, failed = evaluate(store, dataclasses.replace(config, rules=(rule,)), T0 + HOUR)
    assert not failed
    got = {s.labels["route"]: s for s in samples.values()}
    assert set(got) == {"/rise"}
    p = dict(got["/rise"].fields)["p_value"]
    assert p == pytest.approx(hypergeom.sf(17, 1480, 288 + 18, 40), rel=1e-9) and p < 5e-4
    assert binom.sf(17, 40, beta.ppf(0.975, 289, 1440 - 288) + 0.03) > 1e-3     # the old test at its 1e-3: missed


def test_a_sustained_override_rise_on_a_route_reviewed_every_few_minutes_is_seen_over_six_hours(store):
    """The shipped OverrideRateIncrease6h: one review every 3 minutes, 20% overridden for a day, then
    40% for 6 hours. An hour holds 20 reviews and 8 overrides: the hourly rule's Fisher p stays over
    0.03 at every hour, so it never fires. Six hours hold 48 of 120 against 96 of 480 the day before:
    p = 8.5e-6, under the 6-hour rule's 1e-4. A route that stays at 20% fires neither."""
    from scipy.stats import hypergeom

    from alerts.rules import load_config

    config = load_config(None, env={})
    rules = {r.name: r for r in config.rules if r.name.startswith("OverrideRateIncrease")}
    assert set(rules) == {"OverrideRateIncrease", "OverrideRateIncrease6h"}
    base, onset = T0 - 24 * HOUR, T0

    def every_third(hit):         # a review on every third minute; i counts minutes
        return lambda i: float(i % 3 == 0 and hit(i // 3))

    for name, rise in (("/rise", True), ("/same", False)):
        rows = (series("reviewed", base, 30 * 60, every_third(lambda j: True), route=name, model=None)
                + series("overrides", base, 24 * 60, every_third(lambda j: j % 5 == 0), route=name, model=None)
                + series("overrides", onset, 6 * 60, every_third(
                    (lambda j: j % 5 in (0, 2)) if rise else (lambda j: j % 5 == 0)), route=name, model=None))
        write_metrics(store, [{**r, "model_version": None} for r in rows])
    hourly = dataclasses.replace(config, rules=(rules["OverrideRateIncrease"],))
    for hour in range(1, 7):
        samples, failed = evaluate(store, hourly, onset + hour * HOUR)
        assert not failed and not samples, hour
    samples, failed = evaluate(store, dataclasses.replace(config, rules=(rules["OverrideRateIncrease6h"],)),
                               onset + 6 * HOUR)
    assert not failed
    got = {s.labels["route"]: s for s in samples.values()}
    assert set(got) == {"/rise"}
    fields = dict(got["/rise"].fields)
    assert (fields["bad"], fields["total"]) == (48, 120)
    assert fields["p_value"] == pytest.approx(hypergeom.sf(47, 600, 96 + 48, 120), rel=1e-9)
    assert fields["p_value"] < 1e-4 < hypergeom.sf(7, 500, 96 + 8, 20)     # the first hour: no evidence


def override_rise(store, hours, after):
    """Route /rise: a review a minute, 20% overridden for the day before T0, 45% for `hours`, then
    20% for `after` hours (the route rollup the override rules read)."""
    end = T0 + hours * HOUR
    rows = (series("reviewed", T0 - 24 * HOUR, (24 + hours + after) * 60, 1.0, route="/rise", model=None)
            + series("overrides", T0 - 24 * HOUR, 24 * 60, lambda i: float(i % 5 == 0), route="/rise", model=None)
            + series("overrides", T0, hours * 60, lambda i: float(i % 20 < 9), route="/rise", model=None)
            + series("overrides", end, after * 60, lambda i: float(i % 5 == 0), route="/rise", model=None))
    write_metrics(store, [{**r, "model_version": None} for r in rows])


def test_an_active_alerts_normal_rate_is_held_from_when_it_began_so_a_long_rise_stays_one_alert(store):
    """A day of 1 review a minute at 20% overrides, then 12 hours at 45%, then 20% again, replayed
    through the engine with the shipped OverrideRateIncrease. The trailing day takes in the rise:
    eight hours in, 27 of 60 against it gives p = 3.0e-3 and the alert resolved mid-incident. Held at
    the day before the alert began (p = 1.7e-5 every hour), it fires once, stays firing for the 12
    hours, says whose normal it is, and resolves within its hour and a half after the rise ends."""
    from scipy.stats import hypergeom

    from alerts.backtest import run_backtest
    from alerts.rules import load_config

    config = load_config(None, env={})
    rule = next(r for r in config.rules if r.name == "OverrideRateIncrease")
    base, end = T0 - 24 * HOUR, T0 + 12 * HOUR
    override_rise(store, 12, 2)
    result = run_backtest(store, dataclasses.replace(config, rules=(rule,)), T0, end + 2 * HOUR,
                          step=timedelta(minutes=5))
    moves = [(e["time"], e["to_state"]) for e in result.events]
    assert [s for _, s in moves] == ["pending", "firing", "resolved"], moves
    fired, resolved = moves[1][0], moves[2][0]
    assert fired <= T0 + HOUR and end < resolved <= end + 90 * MIN
    maturity = result.events[1]["annotations"]
    assert "when this alert began" not in str(maturity)          # the first evaluation learns afresh
    # the baseline's buckets start in (t - 61m - 1d, t - 61m] (the test window's are the hour after)
    minutes = np.arange(38 * 60)
    overridden = np.where(minutes < 24 * 60, minutes % 5 == 0, (minutes - 24 * 60) % 20 < 9)

    def baseline_at(t):
        lo, hi = (t - 61 * MIN - 24 * HOUR - base) / MIN, (t - 61 * MIN - base) / MIN
        inside = (minutes > lo) & (minutes <= hi)
        return int(overridden[inside].sum()), int(inside.sum())

    x, m = baseline_at(fired)
    held = hypergeom.sf(26, m + 60, x + 27, 60)
    x8, m8 = baseline_at(T0 + 8 * HOUR)
    trailing = hypergeom.sf(26, m8 + 60, x8 + 27, 60)      # 8 hours in, learned afresh: 3.0e-3
    assert held < 5e-4 < trailing
    # the live evaluation eight hours in: the summary names the normal it is held to
    from alerts.conditions import evaluate

    samples, _ = evaluate(store, dataclasses.replace(config, rules=(rule,)), T0 + 8 * HOUR, {},
                          {next(iter(s.fingerprint for s in evaluate(
                              store, dataclasses.replace(config, rules=(rule,)), fired, {})[0].values())): fired})
    (sample,) = samples.values()
    assert dict(sample.fields)["p_value"] == pytest.approx(held, rel=1e-9)
    assert f"normal as of {fired:%Y-%m-%d %H:%M} UTC, when this alert began" in dict(sample.fields)["maturity"]
    assert evaluate(store, dataclasses.replace(config, rules=(rule,)), T0 + 8 * HOUR, {})[0] == {}


def test_an_analyzer_rate_is_held_too_for_up_to_the_baseline_window(store):
    """A route at 10% failures for hours: route_health's trailing rate for the second hour has taken
    in the burst (5%), so 3x of it tolerates 15% and the burst is no page. The alert active since
    T0 + 10 min is tested against the rate written by then (0.7%): it holds. An anchor a day old
    (the rule's baseline_window) is let go: the burst has become the route's normal."""
    rows = (series("route_calls", T0, 180, 20.0, route="/long") + series("route_errors", T0, 180, 2.0, route="/long")
            + series("route_error_baseline", T0 - HOUR, 1, 0.007, grain="1h", route="/long", step=HOUR)
            + series("route_error_baseline", T0 + HOUR, 1, 0.05, grain="1h", route="/long", step=HOUR)
            + series("route_baseline_hours", T0 - HOUR, 3, 12.0, grain="1h", route="/long", step=HOUR))
    write_metrics(store, rows)
    config, now = make_config(rules=ROUTE_ERRORS), T0 + 150 * MIN
    fp = next(iter(evaluate(store, config, T0 + 10 * MIN)[0]))
    assert evaluate(store, config, now)[0] == {}                         # against the 5% learned since
    samples, failed = evaluate(store, config, now, {}, {fp: T0 + 10 * MIN})
    assert not failed and set(samples) == {fp}
    sample = samples[fp]
    assert sample.baseline == 0.007 and sample.threshold == pytest.approx(0.021)
    assert "; normal as of 2026-03-02 12:10 UTC, when this alert began" in str(sample.fields)
    assert evaluate(store, config, now, {}, {fp: now - 24 * HOUR})[0] == {}


def test_the_six_hour_override_rule_resets_soon_after_the_rise_ends(store):
    """A day of 1 review a minute at 20% overrides, 6 hours at 45%, then 20% again, through the
    engine with the shipped OverrideRateIncrease6h. Its six hours hold the rise for six hours after
    it ends, against a normal held from before it: without `recent` it still fired 3 hours after
    the end. With the newest hour required over the tolerated rate it resolves within 2h15m."""
    from alerts.backtest import run_backtest
    from alerts.rules import load_config

    config = load_config(None, env={})
    rule = next(r for r in config.rules if r.name == "OverrideRateIncrease6h")
    assert rule.condition.evidence.recent == HOUR
    end = T0 + 6 * HOUR
    override_rise(store, 6, 6)

    def moves(r):
        result = run_backtest(store, dataclasses.replace(config, rules=(r,)), T0, end + 4 * HOUR,
                              step=timedelta(minutes=5))
        return [(e["time"], e["to_state"]) for e in result.events]

    shipped = moves(rule)
    assert [s for _, s in shipped] == ["pending", "firing", "resolved"], shipped
    assert shipped[1][0] < end and end < shipped[2][0] <= end + 135 * MIN
    without = moves(dataclasses.replace(rule, condition=dataclasses.replace(
        rule.condition, evidence=rule.condition.evidence.model_copy(update={"recent": None}))))
    assert [s for _, s in without] == ["pending", "firing"], without        # still firing 4 hours after


def test_a_quiet_routes_window_is_judged_by_its_calls_not_by_the_age_of_its_newest(store):
    """The analyzers write a minute only when it had calls: 7 calls deep in the tail, the last 6
    minutes before the evaluation, are still the window's evidence (a staleness cut skipped such a
    route at its deadline); once they leave the 15-minute window nothing fires."""
    rows = []
    for minute in (0, 1, 2, 3, 4, 6, 8):      # one call a minute or two, then quiet
        t = T0 + minute * MIN
        rows += series("route_conf_scored", t, 1, 1.0, route="/escalate")
        rows += series("route_conf_low_score", t, 1, 0.03, route="/escalate")
    write_metrics(store, rows)
    got = fired(store, CONF_DROP, now=T0 + 15 * MIN)         # newest row 6 minutes old
    assert set(got) == {"/escalate"} and dict(got["/escalate"].fields)["total"] == 7
    assert fired(store, CONF_DROP, now=T0 + 25 * MIN) == {}   # every call has left the window


def test_an_error_burst_whose_failures_say_format_ok_false_is_no_format_page(store):
    """A client that marks every failed call format_ok = false (the sample generator does): a 50%
    error burst on chat put its failures among the format failures, and FormatComplianceDrop paged
    next to the error rule. The check judges outputs and a failed call has none, so only search,
    whose successful outputs break the schema (40%), pages."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from alerts.rules import load_config
    from analysis import runner
    from analysis.base import Window
    from analysis.traffic import TrafficAnalyzer
    from tests.analysis.gen import Shift, spans, write

    start, burst = T0 - 6 * HOUR, T0 - 5 * MIN
    data = spans(start, 6 * 60 + 15, 4, seed=3, shifts=(Shift(burst, T0 + 10 * MIN, "error_p", 0.5, route="chat"),))
    failed = pc.equal(data.column("status_code"), "error")
    rng = np.random.default_rng(3)
    times = data.column("start_time").to_numpy()
    broken = (times >= np.datetime64(burst, "us")) & (data.column("route").to_numpy(zero_copy_only=False) == "search")
    broken &= rng.random(data.num_rows) < 0.4
    ok = pc.and_(data.column("format_ok"), pa.array(~broken))
    data = data.set_column(data.schema.get_field_index("format_ok"), "format_ok", pc.if_else(failed, False, ok))
    write(store, data)
    runner.analyze(store, TrafficAnalyzer(store), Window(start, T0 + 15 * MIN, start))
    config = load_config(None, env={})
    rule = next(r for r in config.rules if r.name == "FormatComplianceDrop")
    samples, failures = evaluate(store, dataclasses.replace(config, rules=(rule,)), T0 + 10 * MIN)
    assert not failures
    assert {s.labels.get("route") for s in samples.values()} == {"search"}


def test_a_scan_tests_its_whole_window_at_its_own_share_even_when_its_oldest_minute_is_empty(store):
    """Calls in the newest 14 minutes only: the whole 15-minute window holds the same calls as the
    14-minute one, but is tested at p / 2 where the shorter one gets p / 28. A sum whose tail p lies
    between the two fires on the whole window (the scan once skipped a window that added no minute)."""
    from scipy.optimize import brentq

    from analysis.rank_test import irwin_hall_lower

    rule = {**CONF_DROP[0], "condition": {**CONF_DROP[0]["condition"], "evidence": {
        **CONF_DROP[0]["condition"]["evidence"], "max_mean": 0.5, "scan": True}}}
    target = 1e-6                                            # between 1e-5 / 28 and 1e-5 / 2
    total = brentq(lambda s: irwin_hall_lower(s, 14) - target, 0.5, 7.0)
    scored(store, "/quiet", 14, total, minutes=14)
    got = fired(store, [rule])
    assert "/quiet" in got
    fields = dict(got["/quiet"].fields)
    assert fields["window"] == "15m" and fields["total"] == 14 and fields["p_value"] == pytest.approx(target, rel=1e-6)
