"""The analyzers on both backends (DuckDB and ClickHouse's engine in-process): the same numpy
oracles hold on each, the two give the same rows, and a rerun replaces rather than adds."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from analysis import runner
from analysis.base import Window
from analysis.traffic import OverrideAnalyzer, TrafficAnalyzer
from store.schema import arrow_schema
from tests.analysis.gen import T0, minute, spans, write
from tests.backends import opened

ALL = dict(service_name=None, model=None, model_version=None, route=None, arm=None)


def rows(store, metric, grain="1m", **labels):
    where = " AND ".join(f"{k} IS NULL" if v is None else f"{k} = '{v}'" for k, v in labels.items()) or "true"
    return store.query(f"SELECT time, value FROM analysis_metrics WHERE metric = '{metric}' AND grain = '{grain}' "
                       f"AND {where} ORDER BY time").to_pylist()


def _whole_ns(table: pa.Table) -> pa.Table:
    """Durations in whole nanoseconds, as OTLP carries them (the generator's are finer; the
    Collector's schema keeps ns)."""
    i = table.schema.get_field_index("duration_ms")
    return table.set_column(i, "duration_ms", pa.array([round(d * 1e6) / 1e6 for d in
                                                        table.column(i).to_pylist()], pa.float64()))


def _feedback(n: int) -> pa.Table:
    actions = np.random.default_rng(5).choice(["accepted", "modified", "rejected"], n, p=[0.7, 0.2, 0.1])
    return pa.Table.from_pylist([{"time": T0 + timedelta(seconds=7 * i), "service_name": "svc",
                                  "route": ("chat", "search")[i % 2], "model": "m", "model_version": "v1",
                                  "action": str(a)} for i, a in enumerate(actions)], schema=arrow_schema("feedback"))


@pytest.mark.parametrize("backend", ["duckdb", "chdb"])
def test_traffic_and_overrides_match_numpy_on_each_backend(backend, tmp_path):
    data = _whole_ns(spans(T0, 5, 200, seed=1, priced=True))
    # every failed call marked format_ok = false (as the sample generator does): no output was checked
    failed = pc.equal(data.column("status_code"), "error")
    data = data.set_column(data.schema.get_field_index("format_ok"), "format_ok",
                           pc.if_else(failed, False, data.column("format_ok")))
    fb = _feedback(300)
    for store in opened(backend, tmp_path):
        write(store, data)
        write(store, fb, "feedback")
        for analyzer in (TrafficAnalyzer(store), OverrideAnalyzer(store)):
            runner.analyze(store, analyzer, Window(T0, minute(5), T0))
        df = data.to_pandas()
        first = df[(df.start_time < minute(1)) & (df.route == "chat")]
        ok = first[first.status_code != "error"].duration_ms.to_numpy()
        detail = dict(service_name="svc", model=None, model_version=None, route="chat", arm=None)
        for q, name in ((50, "latency_p50_ms"), (95, "latency_p95_ms"), (99, "latency_p99_ms")):
            assert rows(store, name, **detail)[0]["value"] == pytest.approx(np.percentile(ok, q), rel=1e-12)
        assert rows(store, "requests", **detail)[0]["value"] == len(first)
        assert rows(store, "error_rate", **detail)[0]["value"] == pytest.approx((first.status_code == "error").mean())
        assert rows(store, "error_rate_5xx", **detail)[0]["value"] == pytest.approx((first.http_status >= 500).mean())
        assert rows(store, "latency_mean_ms", **detail)[0]["value"] == pytest.approx(ok.mean(), rel=1e-9)
        done = first[first.status_code != "error"]
        assert rows(store, "format_failures", **detail)[0]["value"] == (~done.format_ok).sum()
        assert rows(store, "format_ok_rate", **detail)[0]["value"] == pytest.approx(done.format_ok.mean())
        timeouts = first.error_type == "timeout"
        assert rows(store, "model_failure_rate", **detail)[0]["value"] == pytest.approx(
            (timeouts | ((first.status_code != "error") & ~first.format_ok)).mean())
        hand = (first.input_tokens * 0.15 + first.output_tokens * 0.60).sum() / 1e6   # gpt-4o-mini's prices
        assert rows(store, "cost_usd", **detail)[0]["value"] == pytest.approx(hand, rel=1e-9)
        assert rows(store, "requests", "1h", **ALL) == [{"time": T0, "value": 1000.0}]
        all_ok = df[df.status_code != "error"].duration_ms.to_numpy()
        assert rows(store, "latency_p99_ms", "1h", **ALL)[0]["value"] == pytest.approx(np.percentile(all_ok, 99),
                                                                                       rel=1e-12)
        f = fb.to_pandas()
        chat = f[(f.time < minute(1)) & (f.route == "chat")]
        rate = chat.action.isin(["modified", "rejected"]).mean()
        assert rows(store, "override_rate", "1m", service_name="svc", model="m", model_version="v1", route="chat",
                    arm=None)[0]["value"] == pytest.approx(rate)
        assert rows(store, "reviewed", "1h", service_name="svc", model=None, model_version=None, route=None,
                    arm=None)[0]["value"] == 300


def _analysis_rows(store) -> list[tuple]:
    table = store.query("SELECT time, grain, metric, service_name, model, model_version, route, arm, value "
                        "FROM analysis_metrics")
    return sorted((tuple(r.values()) for r in table.to_pylist()), key=lambda r: tuple("" if v is None else str(v)
                                                                                       for v in r[:8]))


def test_both_backends_write_the_same_rows_and_a_rerun_replaces_them(tmp_path):
    data = _whole_ns(pa.concat_tables([spans(T0, 12, 60, seed=7, priced=True),
                                       spans(T0, 12, 30, seed=8, model="gpt-4o", version="v2", arm="canary", ids="b",
                                             error_p=0.1)]))
    fb = _feedback(200)
    got = {}
    for backend in ("duckdb", "chdb"):
        for store in opened(backend, tmp_path / backend):
            write(store, data)
            write(store, fb, "feedback")
            analyzers = (TrafficAnalyzer(store), OverrideAnalyzer(store))
            for a in analyzers:
                runner.analyze(store, a, Window(T0, minute(12), T0))
            first = _analysis_rows(store)
            for a in analyzers:   # a rerun of part of the window, then of all of it: same rows, no duplicates
                runner.analyze(store, a, Window(minute(3), minute(7), T0))
                runner.analyze(store, a, Window(T0, minute(12), T0))
            assert _analysis_rows(store) == first
            got[backend] = first
    duck, ch = got["duckdb"], got["chdb"]
    assert len(duck) > 500 and [r[:8] for r in ch] == [r[:8] for r in duck]
    for d, c in zip(duck, ch):
        assert c[8] == pytest.approx(d[8], rel=1e-12, abs=1e-15), d[:8]


def test_scaled_sums_do_not_overflow_past_ten_thousand_calls_a_bucket(tmp_path):
    """Scores are summed as integers in 1e-15 units: 12,000 calls in one minute pass a 64-bit sum's
    range (the first ClickHouse version wrapped around and reported a negative mean)."""
    data = _whole_ns(spans(T0, 1, 12_000, seed=9))
    expect = data.column("confidence").to_numpy().mean()
    for store in opened("chdb", tmp_path):
        write(store, data)
        runner.analyze(store, TrafficAnalyzer(store), Window(T0, minute(1), T0))
        assert rows(store, "confidence_mean", "1m", **ALL)[0]["value"] == pytest.approx(expect, rel=1e-12)


def test_every_scheduled_analyzer_writes_the_same_rows_on_both_backends(tmp_path, settings):
    """Resources, SLO burn, route health, shadow agreement and the statistical tests (confidence
    shift, drift, canary) read their samples in ClickHouse: with every group under the sample cap
    the two engines hand the tests the same calls, so every figure agrees."""
    from analysis.registry import build
    from tests.analysis.gen import Shift

    shift = Shift(T0 + timedelta(minutes=70), T0 + timedelta(minutes=120), "confidence", -0.3, route="chat")
    primary = spans(T0, 120, 8, seed=21, shifts=(shift,), priced=True)
    shadow = spans(T0, 120, 8, seed=21, arm="shadow", version="v9")   # same traces as the primary calls
    shadow = shadow.set_column(shadow.schema.get_field_index("span_id"), "span_id",
                               pa.array(["s" + s[1:] for s in shadow.column("span_id").to_pylist()]))
    canary = spans(T0, 120, 3, seed=23, version="v2", arm="canary", ids="c", latency_ms=520.0, error_p=0.06)
    data = _whole_ns(pa.concat_tables([primary, shadow, canary]))
    metrics = pa.Table.from_pylist([{"time": T0 + timedelta(seconds=30 * i), "service_name": "svc",
                                     "name": ("system.cpu.utilization", "queue.depth")[i % 2], "kind": "gauge",
                                     "value": float(i % 7)} for i in range(240)], schema=arrow_schema("resource_metrics"))
    outputs = pa.Table.from_pylist(
        [{"trace_id": t, "span_id": sid, "start_time": st, "output_text": f"Answer {i % 3}" + (" !" if k == "s" and i % 4 == 0 else "")}
         for k, tbl in (("p", primary), ("s", shadow))
         for i, (t, sid, st) in enumerate(zip(tbl.column("trace_id").to_pylist(), tbl.column("span_id").to_pylist(),
                                               tbl.column("start_time").to_pylist()))],
        schema=arrow_schema("span_content"))
    got = {}
    for backend in ("duckdb", "chdb"):
        for store in opened(backend, tmp_path / backend):
            write(store, data)
            write(store, outputs, "span_content")
            write(store, metrics, "resource_metrics")
            write(store, _feedback(200), "feedback")
            for analyzer in build(store, settings):
                runner.analyze(store, analyzer, Window(T0, T0 + timedelta(hours=2), T0))
            got[backend] = _analysis_rows(store)
    duck, ch = got["duckdb"], got["chdb"]
    names = {r[2] for r in duck}
    assert {"cpu_utilization", "burn_rate_availability", "shadow_pairs", "confidence_mean"} <= names, names
    assert any(n.startswith("canary") for n in names), names
    assert [r[:8] for r in ch] == [r[:8] for r in duck]
    for d, c in zip(duck, ch):
        assert (d[8] is None and c[8] is None) or c[8] == pytest.approx(d[8], rel=1e-9, abs=1e-12), d[:8]


def test_route_call_values_price_calls_alike_on_both_backends(tmp_path):
    """route_shift's cost of each call (its own, else tokens x price) is the same on both engines,
    and equals tokens x the price table for calls without a cost of their own."""
    import pyarrow.compute as pc

    from store import analytics
    from store.prices import resolve_prices

    own = spans(T0, 30, 4, seed=31, ids="o")
    priced = spans(T0, 30, 4, seed=32, priced=True, ids="p", model="gpt-4o")
    prices = resolve_prices(["gpt-4o-mini", "gpt-4o"])
    got = {}
    for backend in ("duckdb", "chdb"):
        for store in opened(backend, tmp_path / backend):
            write(store, _whole_ns(pa.concat_tables([own, priced])))
            got[backend] = analytics.route_call_values(store, T0, minute(30), (), prices).to_pandas()
    duck, ch = (got[b].sort_values(["time", "model"], kind="stable").reset_index(drop=True) for b in got)
    assert len(duck) == len(ch) > 0
    assert np.allclose(duck["cost"], ch["cost"], rtol=1e-12)
    [(_, p_in, _, p_out, _)] = [p for p in prices if p[0] == "gpt-4o"]
    ok = priced.filter(pc.not_equal(priced.column("status_code"), "error")).to_pandas()
    want = np.sort((ok.input_tokens * p_in + ok.output_tokens * p_out).to_numpy() / 1e6)
    assert np.allclose(np.sort(duck[duck.model == "gpt-4o"]["cost"].to_numpy()), want, rtol=1e-12)


def test_route_shift_leaves_the_same_shifted_hours_out_on_both_backends(tmp_path):
    """route_shift knows which earlier hours were shifted from its own stored scores: hour by hour on
    each engine, two hours of a new language are left out of the later references alike."""
    from analysis.route_shift import RouteShiftAnalyzer
    from analysis.settings import AnalysisSettings
    from tests.analysis.gen import Shift

    hour = timedelta(hours=1)
    data = spans(T0, 6 * 60, 20, seed=4, shifts=(Shift(T0 + 3 * hour, T0 + 5 * hour, "language", "ja", route="search"),))
    got = {}
    for backend in ("duckdb", "chdb"):
        for store in opened(backend, tmp_path / backend):
            write(store, data)
            for h in range(6):
                runner.analyze(store, RouteShiftAnalyzer(store, AnalysisSettings(route_baseline_hours=3)),
                               Window(T0 + h * hour, T0 + (h + 1) * hour, T0))
            got[backend] = _analysis_rows(store)
            assert [r["value"] for r in rows(store, "route_mix_reference_held_hours", "1h", service_name="svc",
                                              model="gpt-4o-mini", model_version=None, route="search",
                                              arm=None)] == [0, 0, 0, 1, 2]
    duck, ch = got["duckdb"], got["chdb"]
    assert [r[:8] for r in ch] == [r[:8] for r in duck]
    for d, c in zip(duck, ch):
        assert c[8] == pytest.approx(d[8], rel=1e-9, abs=1e-12), d[:8]
