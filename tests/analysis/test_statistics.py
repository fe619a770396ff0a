"""Confidence shift, drift, canary, SLO burn, overrides and shadow on generated data with injected shifts."""
from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats as sps

from analysis import runner, stats
from analysis.base import Window
from analysis.canary import CanaryAnalyzer
from analysis.confidence import ConfidenceAnalyzer
from analysis.drift import DriftAnalyzer
from analysis.settings import SLO, AnalysisSettings
from analysis.shadow import ShadowAnalyzer
from analysis.slo import SLOAnalyzer
from analysis.traffic import OverrideAnalyzer, ResourceAnalyzer
from store.schema import arrow_schema
from tests.analysis.gen import T0, Shift, spans, write

DAY = timedelta(days=1)
H = timedelta(hours=1)


def metric(store, name, grain="1h", **labels):
    where = " AND ".join(f"{k} = '{v}'" for k, v in labels.items()) or "TRUE"
    return store.query(f"SELECT time, value FROM analysis_metrics WHERE metric = '{name}' AND grain = '{grain}' "
                       f"AND {where} ORDER BY time").to_pylist()


def test_stats_match_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 3000), rng.normal(0.1, 1.2, 2000)
    ref = sps.ks_2samp(a, b)
    assert stats.ks(a, b) == pytest.approx((ref.statistic, ref.pvalue))
    assert stats.wasserstein(a, b) == pytest.approx(sps.wasserstein_distance(a, b))
    assert stats.mann_whitney(a, b, "greater") == pytest.approx(sps.mannwhitneyu(b, a, alternative="greater").pvalue)
    ta, tb = rng.poisson(5, 2000).astype(float), rng.poisson(5.3, 300).astype(float)   # many ties
    for alternative in ("greater", "less"):
        assert stats.mann_whitney(ta, tb, alternative) == pytest.approx(
            sps.mannwhitneyu(tb, ta, alternative=alternative).pvalue, rel=1e-12)
    # pooled two-proportion z-test against the normal approximation by hand
    x1, n1, x2, n2 = 30, 1000, 55, 1000
    p = (x1 + x2) / (n1 + n2)
    z = (x2 / n2 - x1 / n1) / np.sqrt(p * (1 - p) * (2 / 1000))
    assert stats.two_proportion_test(x1, n1, x2, n2) == pytest.approx(sps.norm.sf(z))
    # PSI of identical distributions is ~0, of a shifted one large
    assert stats.psi(a, a) == pytest.approx(0.0)
    assert stats.psi(a, a + 1) > 0.5


@pytest.fixture
def day_and_shift(store):
    """A clean reference day, then a day whose hour 10-12 has lower confidence and longer prompts on 'search'."""
    shifts = (Shift(T0 + DAY + 10 * H, T0 + DAY + 12 * H, "confidence", -0.25),
              Shift(T0 + DAY + 10 * H, T0 + DAY + 12 * H, "input_tokens", 1.6, route="search"),
              Shift(T0 + DAY + 10 * H, T0 + DAY + 12 * H, "language", "es", route="search"))
    write(store, spans(T0, 2 * 24 * 60, 20, seed=11, shifts=shifts))
    return store


def test_confidence_drop_is_flagged_and_clean_hours_are_not(day_and_shift, settings):
    store = day_and_shift
    runner.analyze(store, ConfidenceAnalyzer(store, settings), Window(T0 + DAY + 6 * H, T0 + DAY + 14 * H, T0))
    flags = {r["time"].hour: r["value"] for r in metric(store, "confidence_shift", model_version="v1")}
    assert flags == {6: 0, 7: 0, 8: 0, 9: 0, 10: 1, 11: 1, 12: 0, 13: 0}
    # the stored KS / Wasserstein equal scipy on the same rows (all rows: under the sample cap)
    df = store.query("SELECT start_time, confidence FROM spans").to_pandas()
    ref = df[(df.start_time >= T0) & (df.start_time < T0 + DAY)].confidence.to_numpy()
    cur = df[(df.start_time >= T0 + DAY + 10 * H) & (df.start_time < T0 + DAY + 11 * H)].confidence.to_numpy()
    row = {r["metric"]: r["value"] for r in store.query(
        "SELECT metric, value FROM analysis_metrics WHERE time = $t AND metric LIKE 'confidence_%'",
        {"t": T0 + DAY + 10 * H}).to_pylist()}
    assert row["confidence_ks_stat"] == pytest.approx(sps.ks_2samp(ref, cur).statistic)
    assert row["confidence_ks_pvalue"] == pytest.approx(sps.ks_2samp(ref, cur).pvalue, rel=1e-6, abs=1e-300)
    assert row["confidence_wasserstein"] == pytest.approx(sps.wasserstein_distance(ref, cur))
    assert row["confidence_p50"] == pytest.approx(np.quantile(cur, 0.5))


def test_input_drift_is_flagged_on_the_shifted_route_only(day_and_shift, settings):
    store = day_and_shift
    runner.analyze(store, DriftAnalyzer(store, settings), Window(T0 + DAY + 8 * H, T0 + DAY + 13 * H, T0))
    search = {r["time"].hour: r["value"] for r in metric(store, "dataset_drift", route="search")}
    chat = {r["time"].hour: r["value"] for r in metric(store, "dataset_drift", route="chat")}
    assert search == {8: 0, 9: 0, 10: 1, 11: 1, 12: 0}
    assert chat == {8: 0, 9: 0, 10: 0, 11: 0, 12: 0}
    detected = metric(store, "drift_detected:input_tokens", route="search")
    assert [r["value"] for r in detected] == [0, 0, 1, 1, 0]
    report = store.query("SELECT body FROM analysis_reports WHERE analyzer = 'drift' AND route = 'search' "
                         "AND time = $t", {"t": T0 + DAY + 10 * H}).to_pylist()
    body = json.loads(report[0]["body"])
    tests = {c["column"]: c["stattest"] for c in body["columns"]}
    assert tests["input_tokens"] == "wasserstein" and tests["attr:aiwatch.input.language"] == "jensenshannon"


def test_a_quiet_routes_ordinary_hours_do_not_drift_though_evidently_alone_would_say_so(store, settings):
    """Against a reference of thousands of calls Evidently's numeric test is a distance (Wasserstein
    >= 0.1 std) whatever the hour's size, and an hour of ~120 calls drawn from the reference itself
    crosses it often. The drift verdict also wants the hour to differ beyond chance (KS p < alpha):
    ordinary hours do not drift, the shifted ones still do, and the stored p-values are scipy's."""
    shifts = (Shift(T0 + DAY + 10 * H, T0 + DAY + 12 * H, "input_tokens", 1.3),
              Shift(T0 + DAY + 10 * H, T0 + DAY + 12 * H, "output_tokens", 1.3))
    write(store, spans(T0, 2 * 24 * 60, 2, seed=3, routes=("chat",), shifts=shifts))
    runner.analyze(store, DriftAnalyzer(store, settings), Window(T0 + DAY, T0 + 2 * DAY, T0))
    drifted = {r["time"].hour for r in metric(store, "dataset_drift", route="chat") if r["value"]}
    assert drifted == {10, 11}
    bodies = [json.loads(r["body"]) for r in store.query(
        "SELECT body FROM analysis_reports WHERE analyzer = 'drift' ORDER BY time").to_pylist()]
    assert len(bodies) == 24
    evidently_alone = sum(c["evidently"] for b in bodies for c in b["columns"] if c["column"] == "input_tokens")
    assert evidently_alone >= 6, "the data no longer shows the effect-size test's noise"
    df = store.query("SELECT start_time, input_tokens FROM spans").to_pandas()
    ref = df[df.start_time < T0 + DAY].input_tokens.to_numpy(float)
    hour = df[(df.start_time >= T0 + DAY + 3 * H) & (df.start_time < T0 + DAY + 4 * H)].input_tokens.to_numpy(float)
    col = next(c for c in bodies[3]["columns"] if c["column"] == "input_tokens")
    assert col["p_value"] == pytest.approx(sps.ks_2samp(ref, hour).pvalue, rel=1e-9)
    assert col["stattest"] == "wasserstein" and bodies[3]["alpha"] == settings.drift_alpha
    stored = {r["time"].hour: r["value"] for r in metric(store, "drift_pvalue:input_tokens", route="chat")}
    assert stored[3] == col["p_value"]


def test_the_chance_test_of_categories_is_scipys_chi_square_of_homogeneity():
    rng = np.random.default_rng(4)
    ref = np.array([700.0, 200.0, 100.0, 0.0])
    rows = np.array([[70, 20, 10, 0], [50, 30, 10, 10], [0, 0, 0, 0], [3, 0, 0, 0]], dtype=float)
    got = stats.homogeneity_many(ref, rows)
    for row, p in zip(rows, got):
        keep = (ref + row) > 0
        if row.sum() == 0 or keep.sum() < 2:
            assert p == 1.0
            continue
        want = sps.chi2_contingency(np.vstack([ref[keep], row[keep]]), correction=False).pvalue
        assert p == pytest.approx(want, rel=1e-9)
    # and column_drift gates Evidently's categorical verdict with it
    langs = np.array(["en", "de", "fr"], dtype=object)
    big_ref = langs[rng.choice(3, 20_000, p=[0.7, 0.2, 0.1])]
    noise = langs[rng.choice(3, 60, p=[0.7, 0.2, 0.1])]
    found = stats.column_drift("lang", "cat", big_ref, noise)
    assert found is not None and found.stattest == "jensenshannon" and not found.drifted
    shifted = stats.column_drift("lang", "cat", big_ref, np.array(["fr"] * 60, dtype=object))
    assert shifted is not None and shifted.evidently and shifted.p_value < 1e-6 and shifted.drifted


def test_canary_verdicts(store, settings):
    start = T0 + 2 * H
    base = spans(start, 60, 10, seed=21, version="v1", arm="baseline", ids="b")
    slow = spans(start, 60, 3, seed=22, version="v2", arm="canary", latency_ms=600, ids="c", service="svc")
    write(store, base)
    write(store, slow)
    runner.analyze(store, CanaryAnalyzer(store, settings), Window(start, start + H, T0))
    assert metric(store, "canary_verdict", model_version="v2") == [{"time": start, "value": -1.0}]
    evidence = json.loads(store.query("SELECT body FROM analysis_reports WHERE analyzer = 'canary'").to_pylist()[0]["body"])
    failed = [c["metric"] for c in evidence["checks"] if c["failed"]]
    assert failed == ["latency_p50_ms"]
    # same behaviour as the baseline: pass; too few calls: inconclusive
    write(store, spans(start + H, 60, 10, seed=23, version="v1", arm="baseline", ids="d"))
    write(store, spans(start + H, 60, 3, seed=24, version="v3", arm="canary", ids="e"))
    write(store, spans(start + H, 10, 1, seed=25, version="v4", arm="canary", ids="f"))
    runner.analyze(store, CanaryAnalyzer(store, settings), Window(start + H, start + 2 * H, T0))
    assert metric(store, "canary_verdict", model_version="v3") == [{"time": start + H, "value": 1.0}]
    assert metric(store, "canary_verdict", model_version="v4") == [{"time": start + H, "value": 0.0}]


def test_burn_rates_by_hand(store):
    # 10 calls a minute for 60 minutes; minutes 30-34 all fail
    data = spans(T0, 60, 10, seed=31, error_p=0.0)
    minutes = (data.column("start_time").to_numpy() - np.datetime64(T0, "us")) // np.timedelta64(1, "m")
    failing = (minutes >= 30) & (minutes < 35)
    data = data.set_column(data.schema.get_field_index("status_code"), "status_code",
                           pa.array(np.where(failing, "error", "ok")))
    write(store, data)
    counts = np.bincount(minutes, minlength=60)
    bad = np.bincount(minutes[failing], minlength=60)
    s = AnalysisSettings(slos=(SLO("avail", "availability", 0.99),), burn_windows=("5m", "30m", "1h"))
    runner.analyze(store, SLOAnalyzer(store, s), Window(T0, T0 + H, T0))
    burn5 = {r["time"]: r["value"] for r in metric(store, "burn_rate_availability", "5m")}
    for m in (29, 32, 34, 38, 40, 59):
        lo = max(m - 4, 0)
        expect = bad[lo:m + 1].sum() / counts[lo:m + 1].sum() / 0.01
        assert burn5[T0 + timedelta(minutes=m)] == pytest.approx(expect)
    burn60 = metric(store, "burn_rate_availability", "1h")
    assert burn60[-1]["value"] == pytest.approx(bad.sum() / counts.sum() / 0.01)
    assert metric(store, "slo_attainment")[0]["value"] == pytest.approx(1 - bad.sum() / counts.sum())
    assert [r["value"] for r in metric(store, "slo_objective")] == [0.99]
    # an incremental minute later reads the stored minutes back and gives the same rolling value
    write(store, spans(T0 + H, 1, 10, seed=32, error_p=0.0, ids="z"))
    runner.analyze(store, SLOAnalyzer(store, s), Window(T0 + H, T0 + H + timedelta(minutes=1), T0))
    burn60 = {r["time"]: r["value"] for r in metric(store, "burn_rate_availability", "1h")}
    expect = bad[1:].sum() / (counts[1:].sum() + 10) / 0.01
    assert burn60[T0 + H] == pytest.approx(expect)


def _rows(table: str, rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=arrow_schema(table))


def test_overrides_resources_and_shadow(store):
    fb = [{"time": T0 + timedelta(seconds=i), "service_name": "svc", "route": "chat", "model": "m", "model_version": "v1",
           "action": a, "reason": "wrong"} for i, a in enumerate(["accepted"] * 6 + ["modified"] * 3 + ["rejected"])]
    write(store, _rows("feedback", fb), "feedback")
    rm = [{"time": T0 + timedelta(seconds=10 * i), "service_name": "svc", "name": n, "kind": "gauge", "value": v}
          for i, (n, v) in enumerate([("system.cpu.utilization", 0.5), ("system.cpu.utilization", 0.7),
                                      ("gpu.utilization", 0.9), ("queue.depth", 4.0)])]
    write(store, _rows("resource_metrics", rm), "resource_metrics")
    primary = spans(T0, 1, 20, seed=41, arm="baseline", ids="p")
    shadow = spans(T0, 1, 20, seed=41, arm="shadow", ids="p", version="v9")
    shadow = shadow.set_column(shadow.schema.get_field_index("span_id"), "span_id",
                               pa.array(["s" + s[1:] for s in shadow.column("span_id").to_pylist()]))
    write(store, primary)
    write(store, shadow)
    outputs = [{"trace_id": t, "span_id": s, "start_time": T0, "output_text": f"Answer {i % 4}" + ("" if k == "p" else " !")}
               for k, tbl in (("p", primary), ("s", shadow))
               for i, (t, s) in enumerate(zip(tbl.column("trace_id").to_pylist(), tbl.column("span_id").to_pylist()))
               if k == "p" or i % 5]   # shadow outputs missing for every 5th pair: not counted
    write(store, _rows("span_content", outputs), "span_content")
    w = Window(T0, T0 + timedelta(minutes=1), T0)
    for a in (OverrideAnalyzer(store), ResourceAnalyzer(store), ShadowAnalyzer(store)):
        runner.analyze(store, a, w)
    assert metric(store, "override_rate", "1m", route="chat", model_version="v1")[0]["value"] == pytest.approx(0.4)
    assert metric(store, "reviewed", "1h", service_name="svc")[0]["value"] == 10
    assert metric(store, "cpu_utilization", "1m", service_name="svc")[0]["value"] == pytest.approx(0.6)
    assert metric(store, "queue_depth", "1h", service_name="svc")[0]["value"] == 4
    assert metric(store, "shadow_pairs", "1m", route="chat", model_version="v9")[0]["value"] + \
        metric(store, "shadow_pairs", "1m", route="search", model_version="v9")[0]["value"] == 16
    assert metric(store, "shadow_agreement_rate", "1h", service_name="svc")[0]["value"] == 1.0



def test_many_sample_statistics_match_scipy_and_numpy():
    """The hourly analyzers' vectorised path: one sorted reference against many samples at once."""
    rng = np.random.default_rng(3)
    ref = rng.normal(0, 1, 20_000).round(1)                      # ties on both sides
    samples = [rng.normal(0.1, 1.2, m).round(1) for m in (1, 7, 300, 12_000, 0, 4_000)]
    labels = np.concatenate([np.full(len(v), i) for i, v in enumerate(samples)])
    reference = stats.SortedReference.of(ref)
    grouped = stats.Samples.group(np.concatenate(samples), labels, len(samples))
    d, p = stats.ks_many(reference, grouped)
    w = stats.wasserstein_many(reference, grouped)
    q = stats.quantiles_many(grouped, (0.1, 0.5, 0.9))
    for i, v in enumerate(samples):
        if not len(v):
            continue
        ks = sps.ks_2samp(ref, v)
        assert (d[i], p[i]) == pytest.approx((ks.statistic, ks.pvalue), rel=1e-12, abs=1e-300)
        assert w[i] == pytest.approx(sps.wasserstein_distance(ref, v), rel=1e-9)
        assert q[i] == pytest.approx(np.quantile(v, [0.1, 0.5, 0.9]), rel=1e-15)
    small_ref = rng.beta(8, 2, 900)                               # exact KS p-values: scipy on the pair
    conf = [rng.beta(7, 2, 400), rng.beta(8, 2, 60)]
    g = stats.Samples.group(np.concatenate(conf), np.repeat([0, 1], [400, 60]), 2)
    d, p = stats.ks_many(stats.SortedReference.of(small_ref), g)
    assert p == pytest.approx([sps.ks_2samp(small_ref, c).pvalue for c in conf], rel=1e-12)
    assert stats.psi_many(stats.SortedReference.of(small_ref), g) == pytest.approx(
        [stats.psi(small_ref, c, 10, 0.0, 1.0) for c in conf], rel=1e-12)
    counts = np.array([[5.0, 0, 3], [1, 1, 1]])
    assert stats.jensenshannon_many(np.array([2.0, 1, 1]), counts) == pytest.approx(
        [distance_js([2, 1, 1], row) for row in counts], rel=1e-12)


def distance_js(p, q):
    from scipy.spatial import distance

    return distance.jensenshannon(np.asarray(p, float) / np.sum(p), np.asarray(q, float) / np.sum(q))


def test_the_drift_fast_path_equals_column_by_column_evidently_tests(store):
    """Every hour at once (analysis.drift) gives the same scores as analysis.stats.column_drift,
    which the Evidently oracle tests pin, on wide numeric, categorical and small-reference columns."""
    from analysis.drift import _column_scores
    from analysis.samples import Column
    from analysis.settings import DriftColumn

    rng = np.random.default_rng(9)
    for kind, ref, hours in (
            ("num", rng.poisson(500, 30_000).astype(float), [rng.poisson(520, m).astype(float) for m in (300, 0, 2000)]),
            ("num", rng.normal(3, 1, 800), [rng.normal(3.2, 1, m) for m in (50, 400)]),
            ("cat", rng.choice(["en", "de", "fr"], 20_000), [rng.choice(["en", "de", "es"], m) for m in (500, 90)]),
            ("cat", rng.choice(["a", "b"], 700), [rng.choice(["a", "b", "c"], 80)])):
        column = DriftColumn("x", kind)
        if kind == "num":
            ref_col = Column("num", np.sort(ref), np.array([len(ref)]))
            cur = Column("num", np.concatenate([np.sort(h) for h in hours]), np.array([len(h) for h in hours]))
        else:
            cats = np.array(sorted(set(ref) | {c for h in hours for c in h}), dtype=object)
            code = {c: i for i, c in enumerate(cats)}
            ref_col = Column("cat", np.array([code[c] for c in ref]), np.array([len(ref)]), cats)
            cur = Column("cat", np.array([code[c] for h in hours for c in h], dtype=np.int64),
                         np.array([len(h) for h in hours]), cats)
        fast = _column_scores(ref_col, column, cur, stats.DRIFT_ALPHA)
        for got, h in zip(fast, hours):
            want = stats.column_drift("x", kind, ref, h) if len(h) else None
            if want is None:
                assert got is None
                continue
            assert (got.stattest, got.evidently, got.drifted) == (want.stattest, want.evidently, want.drifted)
            assert got.score == pytest.approx(want.score, rel=1e-9, abs=1e-12)
            assert got.p_value == pytest.approx(want.p_value, rel=1e-9, abs=1e-15)


def test_scheduled_runs_read_a_settled_reference_once(day_and_shift):
    """The 5-minute refreshes of a day compare with the same reference period: it is read once."""
    store = day_and_shift
    analyzer = ConfidenceAnalyzer(store, AnalysisSettings(baseline_days=1))
    hour = Window(T0 + DAY + 10 * H, T0 + DAY + 11 * H, T0)

    def against_reference(analyzer: ConfidenceAnalyzer) -> list:
        rows = analyzer.run(hour).metrics.to_pylist()
        return [(r["metric"], r["value"]) for r in rows if r["metric"] in ("confidence_ks_stat", "confidence_psi")]

    first = against_reference(analyzer)
    store.writer.write(fn=lambda con: con.execute("DELETE FROM spans WHERE start_time < ?", [T0 + DAY]))
    assert len(first) == 2 and against_reference(analyzer) == first       # the cached reference
    assert against_reference(ConfidenceAnalyzer(store, AnalysisSettings(baseline_days=1))) == []


def test_linear_trends_match_scipy_linregress():
    rng = np.random.default_rng(11)
    series = [rng.normal(0, 1, n) + rng.uniform(-0.2, 0.2) * np.arange(n) for n in (3, 5, 12, 24, 24)]
    series += [np.arange(10.0), np.full(6, 0.7), np.array([1.0, 2.0]), np.array([])]
    slopes, pvalues = stats.linear_trends(series)
    for y, slope, p in zip(series, slopes, pvalues):
        if len(y) < 3 or np.all(y == y[0]):
            assert (slope, p) == (0.0, 1.0)
            continue
        ref = sps.linregress(np.arange(len(y), dtype=float), y)
        assert slope == pytest.approx(ref.slope, rel=1e-9, abs=1e-12)
        assert p == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-12)
    assert stats.linear_trend(series[3]) == (pytest.approx(slopes[3]), pytest.approx(pvalues[3]))
