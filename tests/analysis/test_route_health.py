"""Route health: minute counts and the learned baselines against numpy on the same spans."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from analysis import runner
from analysis.base import Window
from analysis.route_health import MIN_OK_FOR_LEARNED, MIN_OK_PER_HOUR, RouteHealthAnalyzer, learned_budget
from analysis.settings import SLO, AnalysisSettings
from tests.analysis.gen import T0, Shift, spans, write

HOUR = timedelta(hours=1)


def values(store, metric, grain, route):
    return {r["time"]: r["value"] for r in store.query(
        "SELECT time, value FROM analysis_metrics WHERE metric = $m AND grain = $g AND route = $r "
        "AND service_name = 'svc' AND model = 'gpt-4o-mini'", {"m": metric, "g": grain, "r": route}).to_pylist()}


def test_counts_and_learned_baselines_match_numpy(store):
    spike = Shift(T0 + 4 * HOUR + timedelta(minutes=10), T0 + 4 * HOUR + timedelta(minutes=30), "duration_ms", 4.0,
                  route="chat")
    data = spans(T0, 5 * 60, 6, seed=8, shifts=(spike,))
    write(store, data)
    settings = AnalysisSettings(route_baseline_hours=3)
    runner.analyze(store, RouteHealthAnalyzer(store, settings), Window(T0, T0 + 5 * HOUR, T0))
    df = data.to_pandas()
    df = df[df.route == "chat"]
    df["hour"] = df.start_time.dt.floor("h")
    ok = df[df.status_code != "error"]
    p99 = ok.groupby("hour").duration_ms.apply(lambda d: np.percentile(d, 99))
    threshold = values(store, "route_slow_threshold_ms", "1h", "chat")
    hour4 = T0 + 4 * HOUR
    assert T0 not in threshold                      # no history before the first hour
    assert threshold[hour4] == pytest.approx(np.median(p99[[T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR]]), rel=1e-12)
    assert values(store, "route_baseline_hours", "1h", "chat")[hour4] == 3
    past = df[(df.start_time >= T0 + HOUR) & (df.start_time < hour4)]
    assert values(store, "route_error_baseline", "1h", "chat")[hour4] == pytest.approx(
        (past.status_code == "error").mean(), rel=1e-12)
    # slow calls per minute of hour 4: over that hour's threshold, successful calls only
    in4 = ok[ok.hour == hour4]
    slow = in4[in4.duration_ms > threshold[hour4]].groupby(in4.start_time.dt.floor("min")).size()
    stored = values(store, "route_slow_calls", "1m", "chat")
    assert {t: v for t, v in stored.items() if t >= hour4 and v} == {t.to_pydatetime(): float(n)
                                                                    for t, n in slow.items()}
    assert sum(stored[t] for t in stored if spike.start <= t < spike.end) > 0.3 * len(   # ~1% outside
        in4[(in4.start_time >= spike.start) & (in4.start_time < spike.end)])
    calls = values(store, "route_calls", "1m", "chat")
    errors = values(store, "route_errors", "1m", "chat")
    by_minute = df.groupby(df.start_time.dt.floor("min"))
    assert calls == {t.to_pydatetime(): float(n) for t, n in by_minute.size().items()}
    assert errors == {t.to_pydatetime(): float(n) for t, n in by_minute.apply(
        lambda g: (g.status_code == "error").sum()).items()}


def test_a_configured_latency_slo_sets_the_threshold_and_budget(store):
    write(store, spans(T0, 120, 5, seed=9))
    settings = AnalysisSettings(slos=(SLO("chat-latency", "latency", 0.95, service="svc", route="chat",
                                          threshold_ms=700.0),))
    runner.analyze(store, RouteHealthAnalyzer(store, settings), Window(T0 + HOUR, T0 + 2 * HOUR, T0))
    assert values(store, "route_slow_threshold_ms", "1h", "chat") == {T0 + HOUR: 700.0}
    assert values(store, "route_slow_budget", "1h", "chat") == {T0 + HOUR: pytest.approx(0.05)}
    # search has no SLO and too few calls behind a learned p99 yet: no slow-call test
    assert values(store, "route_slow_threshold_ms", "1h", "search") == {}
    assert values(store, "route_slow_budget", "1h", "search") == {}


def test_a_learned_p99_waits_for_enough_successful_calls(store):
    data = spans(T0, 6 * 60, 5, seed=9)
    write(store, data)
    runner.analyze(store, RouteHealthAnalyzer(store, AnalysisSettings()), Window(T0, T0 + 6 * HOUR, T0))
    df = data.to_pandas()
    ok = df[(df.route == "search") & (df.status_code != "error")]
    behind = ok.groupby(ok.start_time.dt.floor("h")).size().cumsum()     # successful calls before hour + 1
    first = min(t.to_pydatetime() + HOUR for t, n in behind.items() if n >= MIN_OK_FOR_LEARNED)
    assert T0 + HOUR < first < T0 + 6 * HOUR
    assert min(values(store, "route_slow_threshold_ms", "1h", "search")) == first
    # the share expected over a p99 of hours of ~150 calls (1.4%, not 1%): the median hour decides it
    hourly = ok.groupby(ok.start_time.dt.floor("h")).size()
    budgets = values(store, "route_slow_budget", "1h", "search")
    for hour, budget in budgets.items():
        sizes = hourly[(hourly.index < hour) & (hourly >= MIN_OK_PER_HOUR)]
        assert budget == pytest.approx(learned_budget(float(np.median(sizes))), rel=1e-12)
        assert 0.012 < budget < 0.016


@pytest.mark.parametrize("draw", ["lognormal", "pareto"])
def test_the_learned_budget_is_how_often_the_median_of_hourly_p99s_is_exceeded(draw):
    """Distribution-free (order statistics): hours of n calls, the median of their p99s, and the
    share of new calls above it, simulated, against learned_budget(n). 1% would be 2.4x too low for
    hours of 40 calls, and that error paged quiet routes; the Beta median is over the truth by up to
    15% for small hours (fewer false pages, not more) and exact for busy ones."""
    rng = np.random.default_rng(5)

    def calls(size: tuple[int, ...]) -> np.ndarray:
        return rng.lognormal(7, 0.5, size) if draw == "lognormal" else rng.pareto(2.5, size) + 1

    for n in (25, 40, 150, 1000):
        trials = 4000 if n < 1000 else 600
        thresholds = np.median(np.percentile(calls((trials, 24, n)), 99, axis=2), axis=1)
        fresh = np.sort(calls((200_000,)))
        exceeded = 1 - np.searchsorted(fresh, thresholds) / len(fresh)
        truth = float(np.median(exceeded))
        assert 0.97 * truth <= learned_budget(n) <= 1.2 * truth + 0.0003, (n, truth)
    assert learned_budget(40) > 2.5 * 0.01 and learned_budget(5000) == pytest.approx(0.01, abs=2e-4)
