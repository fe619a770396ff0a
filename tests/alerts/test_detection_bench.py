"""The detection benchmark's chance bars (bench/alerts_detection.py `chance_bars`): the strongest
evidence chance gave on the clean days, which the closing notes use to say whether a missed
incident was within any test's reach. Checked against a window-by-window oracle on the same rows:
every window summed by slicing, the P3 bar by trying every threshold in turn, and for the pages also
windows of every length up to the deadline (`scan`)."""
from __future__ import annotations

import importlib.util
import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from harness import write_metrics
from scipy.stats import binom, irwinhall

from sample_data.scenario import EXPECTED_SEVERITY

ROOT = Path(__file__).resolve().parents[2]
DAYS = 2


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("alerts_detection", ROOT / "bench" / "alerts_detection.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["alerts_detection"] = module
    spec.loader.exec_module(module)
    return module


def _rows(bench, rng):
    """Two days of 1m rows: route r1 with two models, r2 with one; errors and slow calls with a
    cluster, reviews per route, and each rank rule's scores per model and (r1) over both models."""
    n = DAYS * 1440
    times = [bench.START + timedelta(minutes=i) for i in range(n)]
    rows: list[dict] = []

    def add(metric, route, model, values):
        rows.extend({"time": t, "grain": "1m", "metric": metric, "service_name": "svc", "model": model,
                     "model_version": None, "route": route, "arm": None, "value": float(v), "computed_at": t}
                    for t, v in zip(times, values) if v)

    err_bad, calls_m, _ = bench._evidence_of("RouteErrorBurst")
    slow_bad, _, _ = bench._evidence_of("RouteSlowCalls")
    over_bad, over_total, _ = bench._evidence_of("OverrideRateIncrease")
    rank_metrics = {bench._evidence_of(r)[:2] for rules in bench.RANKS.values() for r in rules}
    for route, model in (("r1", "m1"), ("r1", "m2"), ("r2", "m3")):
        calls = rng.poisson(1.0, n)
        errors = rng.binomial(calls, 0.01)
        errors[rng.integers(n)] += 3       # a blip
        add(calls_m, route, model, calls)
        add(err_bad, route, model, errors)
        add(slow_bad, route, model, rng.binomial(calls, 0.02))
        for score_m, scored_m in rank_metrics:
            scored = rng.binomial(calls, 0.8)
            add(scored_m, route, model, scored)
            add(score_m, route, model, [rng.uniform(size=k).sum() for k in scored])
    for score_m, scored_m in rank_metrics:     # r1 over its two models: the analyzer writes the sums
        by = {(r["metric"], r["time"]): 0.0 for r in rows if r["route"] == "r1"}
        for r in rows:
            if r["route"] == "r1" and r["metric"] in (score_m, scored_m):
                by[(r["metric"], r["time"])] += r["value"]
        rows.extend({**r, "model": None, "value": by[(r["metric"], r["time"])]} for r in
                    [r for r in rows if r["route"] == "r1" and r["model"] == "m1" and r["metric"] in (score_m, scored_m)])
    for route in ("r1", "r2"):
        reviewed = rng.poisson(0.5, n)
        add(over_total, route, None, reviewed)
        add(over_bad, route, None, rng.binomial(reviewed, 0.2))
    return rows


def _dense(rows, metric, route, model, start):
    """A target's 1m series; model "*" sums the route's models."""
    x = np.zeros(DAYS * 1440)
    for r in rows:
        if r["metric"] == metric and r["route"] == route and (
                r["model"] == model or model == "*" and r["model"] is not None):
            x[int((r["time"] - start).total_seconds() // 60)] += r["value"]
    return x


def _sums(x, width):
    return np.array([x[i:i + width].sum() for i in range(len(x) - width + 1)])


def _count_p(rows, bad_m, total_m, targets, width, start):
    """Per target: the binomial tail of every window at the target's own rate over both days."""
    out = []
    for route, model in targets:
        bad, total = _dense(rows, bad_m, route, model, start), _dense(rows, total_m, route, model, start)
        rate = bad.sum() / total.sum()
        b, t = _sums(bad, width), _sums(total, width)
        out.append(np.array([binom.sf(k - 1, max(m, k), rate) if k else 1.0 for k, m in zip(b, t)]))
    return out


def test_the_chance_bars_equal_a_window_by_window_oracle(tmp_path, bench):
    from store import alerting
    from store.db import Store

    rows = _rows(bench, np.random.default_rng(7))
    store = Store(tmp_path / "t.duckdb", writer_max_delay_ms=1)
    write_metrics(store, rows)
    store.close()
    db = alerting.open_read_only(str(tmp_path / "t.duckdb"))
    scenario = SimpleNamespace(clean_minutes=DAYS * 1440)
    got, scan = bench.chance_bars(db, scenario), bench.chance_bars(db, scenario, scan=True)

    per_model = [("r1", "m1"), ("r1", "m2"), ("r2", "m3"), ("r1", "*")]   # r2's sum is m3's: one target
    for kind, rule in bench.COUNTS.items():
        bad_m, total_m, _ = bench._evidence_of(rule)
        width = bench.DEADLINE_MIN[EXPECTED_SEVERITY[kind]]
        if EXPECTED_SEVERITY[kind] != "P3":
            want = min(p.min() for p in _count_p(rows, bad_m, total_m, per_model, width, bench.START))
            assert got[kind] == pytest.approx(want, rel=1e-12), kind
            # scanning: every window length up to the deadline
            want = min(p.min() for w in range(1, width + 1)
                       for p in _count_p(rows, bad_m, total_m, per_model, w, bench.START))
            assert scan[kind] == pytest.approx(want, rel=1e-12) and scan[kind] <= got[kind], kind
            continue
        ps = _count_p(rows, bad_m, total_m, [("r1", None), ("r2", None)], width, bench.START)
        for threshold in np.unique(np.concatenate(ps)):      # every threshold, lowest first
            days = np.zeros(DAYS, dtype=int)
            for p in ps:
                inside = p <= threshold
                for i in np.flatnonzero(inside):
                    if i == 0 or not inside[i - 1]:
                        days[min((i + width - 1) // 1440, DAYS - 1)] += 1
            if days.max() > bench.P3_BUDGET:
                break
        assert got[kind] == pytest.approx(threshold, rel=1e-12) and scan[kind] == got[kind], kind
    assert got["error_burst"] < 1e-3      # the blip: 3 extra failures in a minute

    for kind, rules in bench.RANKS.items():     # the exact Irwin-Hall cdf of every window (n <= 60 here)
        width = bench.DEADLINE_MIN[EXPECTED_SEVERITY[kind]]
        want = {w: 1.0 for w in range(1, width + 1)}
        for score_m, scored_m, _ in map(bench._evidence_of, rules):
            for route, model in per_model[:3] + [("r1", None)]:
                score = _dense(rows, score_m, route, model, bench.START)
                scored = _dense(rows, scored_m, route, model, bench.START)
                for w in want if kind == "confidence_drop" else [width]:   # one kind's scan is enough
                    s, n = _sums(score, w), np.rint(_sums(scored, w)).astype(int)
                    assert n.max() <= 60
                    want[w] = min([want[w]] + [float(irwinhall.cdf(s[n == k], k).min()) for k in np.unique(n[n > 0])])
        assert got[kind] == pytest.approx(want[width], rel=1e-6), kind
        if kind == "confidence_drop":
            assert scan[kind] == pytest.approx(min(want.values()), rel=1e-6), kind
