"""Traffic metrics against numpy and hand computation; idempotent reruns; watermarks and late spans."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa
import pytest

from analysis import runner
from analysis.base import Window
from analysis.registry import build
from analysis.traffic import TrafficAnalyzer
from tests.analysis.gen import T0, minute, spans, write


def rows(store, metric, grain="1m", **labels):
    where = " AND ".join(f"{k} IS NULL" if v is None else f"{k} = '{v}'" for k, v in labels.items()) or "TRUE"
    return store.query(f"SELECT time, value FROM analysis_metrics WHERE metric = '{metric}' AND grain = '{grain}' "
                       f"AND {where} ORDER BY time").to_pylist()


def test_percentiles_errors_and_cost_match_numpy_and_hand_computation(store):
    data = spans(T0, 5, 200, seed=1, priced=True)
    write(store, data)
    runner.analyze(store, TrafficAnalyzer(store), Window(T0, minute(5), T0))
    df = data.to_pandas()
    first = df[(df.start_time < minute(1)) & (df.route == "chat")]
    ok = first[first.status_code != "error"].duration_ms.to_numpy()
    detail = dict(service_name="svc", model=None, model_version=None, route="chat", arm=None)
    for q, name in ((50, "latency_p50_ms"), (95, "latency_p95_ms"), (99, "latency_p99_ms")):
        assert rows(store, name, **detail)[0]["value"] == pytest.approx(np.percentile(ok, q), rel=1e-12)
    assert rows(store, "requests", **detail)[0]["value"] == len(first)
    assert rows(store, "error_rate", **detail)[0]["value"] == pytest.approx((first.status_code == "error").mean())
    assert rows(store, "error_rate_5xx", **detail)[0]["value"] == pytest.approx((first.http_status >= 500).mean())
    # cost from the price table (gpt-4o-mini: 0.15 in, 0.60 out per million), by hand
    hand = (first.input_tokens * 0.15 + first.output_tokens * 0.60).sum() / 1e6
    assert rows(store, "cost_usd", **detail)[0]["value"] == pytest.approx(hand, rel=1e-9)
    # the rollup over everything (all labels NULL) for the hour
    everything = rows(store, "requests", "1h", service_name=None, model=None, model_version=None, route=None, arm=None)
    assert everything == [{"time": T0, "value": 1000.0}]
    all_ok = df[df.status_code != "error"].duration_ms.to_numpy()
    p99 = rows(store, "latency_p99_ms", "1h", service_name=None, model=None, model_version=None, route=None, arm=None)
    assert p99[0]["value"] == pytest.approx(np.percentile(all_ok, 99), rel=1e-12)


def test_rerunning_a_window_gives_the_same_rows(store):
    write(store, spans(T0, 10, 50, seed=2))
    analyzers = build(store)
    for a in analyzers:
        runner.analyze(store, a, Window(T0, minute(10), T0))
    first = store.query("SELECT * EXCLUDE (computed_at) FROM analysis_metrics ORDER BY ALL")
    for a in analyzers:
        runner.analyze(store, a, Window(minute(3), minute(7), T0))
        runner.analyze(store, a, Window(T0, minute(10), T0))
    again = store.query("SELECT * EXCLUDE (computed_at) FROM analysis_metrics ORDER BY ALL")
    assert first.num_rows > 100 and first.equals(again)


def test_incremental_runs_follow_the_watermark_and_fold_late_spans(store, settings):
    analyzer = TrafficAnalyzer(store)
    write(store, spans(T0, 10, 30, seed=3))
    done = runner.run_incremental(store, analyzer, settings, now=minute(10) + timedelta(seconds=30))
    assert [(w.start, w.end) for w in done] == [(T0, minute(10))]
    assert runner.run_incremental(store, analyzer, settings, now=minute(10) + timedelta(seconds=50)) == []
    write(store, spans(minute(10), 2, 30, seed=4, ids="b"))
    done = runner.run_incremental(store, analyzer, settings, now=minute(12))
    assert [(w.start, w.end) for w in done] == [(minute(10), minute(12))]
    # a span of minute 4 arrives late: the next run starts at minute 4 and counts it
    before = rows(store, "requests", service_name=None, model=None, model_version=None, route=None, arm=None)
    late = spans(minute(4), 1, 5, seed=5, ids="c", late_s=1000)
    write(store, late)
    done = runner.run_incremental(store, analyzer, settings, now=minute(13))
    assert done[0].start == minute(4)
    after = rows(store, "requests", service_name=None, model=None, model_version=None, route=None, arm=None)
    assert after[4]["value"] == before[4]["value"] + 5
    assert len(after) == 12 and all(a == b for a, b in zip(after[:4], before[:4]))


def test_backfill_equals_incremental(store, settings):
    write(store, spans(T0, 30, 20, seed=6))
    analyzer = TrafficAnalyzer(store)
    for i in range(1, 31, 7):
        runner.run_incremental(store, analyzer, settings, now=minute(min(i, 30)))
    runner.run_incremental(store, analyzer, settings, now=minute(30))
    inc = store.query("SELECT * EXCLUDE (computed_at) FROM analysis_metrics ORDER BY ALL")
    store.writer.write(fn=lambda con: con.execute("DELETE FROM traffic_metrics"))
    runner.backfill(store, [analyzer], T0, minute(30), timedelta(hours=6))
    full = store.query("SELECT * EXCLUDE (computed_at) FROM analysis_metrics ORDER BY ALL")
    assert inc.equals(full)


def test_parallel_backfill_writes_what_one_at_a_time_writes(store, settings):
    from analysis import registry

    write(store, spans(T0, 30, 20, seed=7))
    analyzers = registry.build(store, settings, ["traffic", "slo", "confidence", "drift"])
    rows = runner.backfill(store, analyzers, T0, minute(30), timedelta(minutes=10), now=T0)
    one_by_one = store.query("SELECT * FROM analysis_metrics ORDER BY ALL")
    again = runner.backfill(store, analyzers, T0, minute(30), timedelta(minutes=10), now=T0, workers=3)
    assert again == rows > 0
    assert store.query("SELECT * FROM analysis_metrics ORDER BY ALL").equals(one_by_one)
    assert {r["metric"] for r in one_by_one.select(["metric"]).to_pylist()} >= {"requests", "burn_rate_availability",
                                                                                  "confidence_p50"}


def test_out_of_range_values_already_stored_read_as_null_and_do_not_overflow(store):
    # Rows stored before ingest checked ranges (or bulk-loaded): confidence 1e5, quality 9224,
    # $9.3M, 1e10 tokens and a 292-year span each overflowed the BIGINT sums and failed the analyzer.
    data = spans(T0, 1, 40, seed=9, priced=True)
    bad = {"confidence": 1e5, "quality_score": 9224.0, "cost_usd": 9.3e6, "input_tokens": 10**10,
           "duration_ms": 292 * 365.25 * 86_400_000.0}
    df = data.to_pandas()
    for i, (col, value) in enumerate(bad.items()):
        df.loc[i, col] = value
    df["status_code"] = "ok"
    write(store, pa.Table.from_pandas(df, schema=data.schema, preserve_index=False))
    runner.analyze(store, TrafficAnalyzer(store), Window(T0, minute(1), T0))
    everything = dict(service_name=None, model=None, model_version=None, route=None, arm=None)
    assert rows(store, "confidence_mean", **everything)[0]["value"] == pytest.approx(
        df.confidence.drop(index=0).mean(), rel=1e-12)
    assert rows(store, "quality_mean", **everything)[0]["value"] == pytest.approx(
        df.quality_score.drop(index=1).mean(), rel=1e-12)
    assert rows(store, "latency_mean_ms", **everything)[0]["value"] == pytest.approx(
        df.duration_ms.drop(index=4).mean(), rel=1e-9)
    assert rows(store, "latency_p99_ms", **everything)[0]["value"] == pytest.approx(
        np.percentile(df.duration_ms.drop(index=4), 99), rel=1e-12)
    # a recorded cost out of range counts as none (the price table applies); so do tokens out of range
    tokens_in = df.input_tokens.where(df.input_tokens <= 10**9, 0)
    hand = (tokens_in * 0.15 + df.output_tokens * 0.60).sum() / 1e6
    assert rows(store, "cost_usd", **everything)[0]["value"] == pytest.approx(hand, rel=1e-9)
    assert rows(store, "input_tokens", **everything)[0]["value"] == tokens_in.sum()
