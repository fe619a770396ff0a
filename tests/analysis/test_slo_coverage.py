"""Burn rates of long windows wait for history: a 3-day burn over a deployment's first minutes is noise."""
from __future__ import annotations

from datetime import timedelta

from analysis import runner
from analysis.base import Window
from analysis.slo import MIN_COVERAGE_MIN, SLOAnalyzer
from tests.analysis.gen import T0, spans, write


def test_a_window_is_judged_once_history_covers_it(store):
    write(store, spans(T0, 26 * 60, 1, seed=12, error_p=0.02))
    runner.analyze(store, SLOAnalyzer(store), Window(T0, T0 + timedelta(hours=26), T0))
    first = {r["grain"]: r["t"] for r in store.query(
        "SELECT grain, min(time) AS t FROM analysis_metrics WHERE metric = 'burn_rate_availability' "
        "AND service_name = 'svc' GROUP BY grain").to_pylist()}
    assert first["5m"] == T0 + timedelta(minutes=4)
    assert first["1h"] == T0 + timedelta(minutes=59)
    assert first["6h"] == T0 + timedelta(minutes=359)
    for grain in ("1d", "3d"):     # long windows: after MIN_COVERAGE_MIN minutes of history
        assert first[grain] == T0 + timedelta(minutes=MIN_COVERAGE_MIN - 1), grain
