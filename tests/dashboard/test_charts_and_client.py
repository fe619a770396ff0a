"""Chart functions and frame helpers without Streamlit; the client's states against a mock transport."""
from __future__ import annotations

import io
from datetime import datetime

import httpx
import pandas as pd
import pyarrow as pa

from dashboard import charts, frames
from dashboard.client import ApiClient


def test_empty_frames_give_a_labelled_figure() -> None:
    fig = charts.line(pd.DataFrame(), "Latency")
    assert fig.layout.title.text == "Latency" and fig.layout.annotations[0].text == "No data in this window"
    assert charts.waterfall(pd.DataFrame()).layout.annotations[0].text == "No spans"


def test_line_with_sla_and_split() -> None:
    df = pd.DataFrame({"time": pd.date_range("2026-11-20", periods=4, freq="1min").repeat(2),
                       "route": ["/a", "/b"] * 4, "value": [1, 2, 3, 4, 5, 6, 7, 8]})
    fig = charts.line(df, "p95", color="route", hline=5, hline_label="SLA")
    assert sorted(t.name for t in fig.data) == ["/a", "/b"]
    assert fig.layout.shapes[0].y0 == 5


def test_series_sums_counts_and_averages_rates() -> None:
    t = datetime(2026, 11, 20, 10)
    tall = pd.DataFrame({"time": [t, t], "metric": ["requests", "requests"], "route": ["/a", "/b"], "value": [3, 4]})
    assert frames.series(tall, "requests")["value"].tolist() == [7]
    rates = tall.assign(metric="error_rate", value=[0.1, 0.3])
    assert frames.series(rates, "error_rate")["value"].round(6).tolist() == [0.2]
    # the fallback shares are ratios (the catalog's units), not counts: two rows give 0.2, not 0.4
    shares = tall.assign(metric="fallback_human", value=[0.1, 0.3])
    assert frames.series(shares, "fallback_human")["value"].round(6).tolist() == [0.2]
    tails = tall.assign(metric="route_in_high_score", value=[1.5, 2.5])
    assert frames.series(tails, "route_in_high_score")["value"].tolist() == [4.0]


def test_waterfall_layout_depth_and_offsets() -> None:
    t0 = datetime(2026, 11, 20, 10)
    spans = pd.DataFrame({"span_id": ["c", "a", "b"], "parent_span_id": ["b", None, "a"], "name": ["tool", "root", "llm"],
                          "start_time": [t0 + pd.Timedelta(milliseconds=30), t0, t0 + pd.Timedelta(milliseconds=10)],
                          "duration_ms": [5.0, 100.0, 50.0], "status_code": ["ok", "ok", "error"],
                          "service_name": ["s"] * 3})
    lay = frames.waterfall_layout(spans)
    assert lay["name"].tolist() == ["root", "llm", "tool"] and lay["depth"].tolist() == [0, 1, 2]
    assert lay["offset_ms"].tolist() == [0, 10, 30]
    assert {t.name for t in charts.waterfall(lay).data} == {"ok", "error"}


def test_override_rates_and_projection() -> None:
    fb = pd.DataFrame({"route": ["/a"] * 4, "model": ["m"] * 4,
                       "action": ["accepted", "modified", "rejected", "accepted"], "reason": [None, "x", "y", None]})
    out = frames.override_rates(fb)
    assert out["override_rate"].tolist() == [0.5]
    # 10 spent by Nov 16 00:00, 2 spent over the last day: 15 days left at 2 a day
    assert frames.month_end_projection(10.0, 2.0, datetime(2026, 11, 15), datetime(2026, 11, 16)) == 40.0


def _arrow(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue()


def test_client_states() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        name = request.url.path.rsplit("/", 1)[-1]
        if name == "summary":
            return httpx.Response(200, content=_arrow(pa.table({"requests": pa.array([3], pa.decimal128(38, 0))})))
        if name == "spans":
            return httpx.Response(200, content=_arrow(pa.table({"x": pa.array([], pa.int64())})))
        if name == "broken":
            return httpx.Response(400, json={"error": {"code": "bad_parameter", "message": "start is bad"}})
        return httpx.Response(404, json={"error": {"code": "unknown_query", "message": "no query"}})

    api = ApiClient("http://aiwatch.test", transport=httpx.MockTransport(handler))
    ok = api.query("summary")
    assert ok.state == "ok" and ok.frame["requests"].dtype == "float64"  # decimals become floats
    assert api.query("spans").state == "empty"
    assert api.query("metrics").state == "missing"
    bad = api.query("broken")
    assert bad.state == "error" and "bad_parameter" in bad.message


def test_client_down() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    res = ApiClient("http://127.0.0.1:9", transport=httpx.MockTransport(refuse)).query("summary")
    assert res.state == "down" and "cannot reach the aiwatch server at http://127.0.0.1:9" in res.message


def test_route_baselines_say_how_mature_they_are() -> None:
    t1, t2 = datetime(2026, 11, 2, 3), datetime(2026, 11, 2, 4)

    def row(t, metric, value, route):
        return {"time": t, "grain": "1h", "metric": metric, "service_name": "svc", "model": "gpt-4o",
                "model_version": None, "route": route, "arm": None, "value": value}
    tall = pd.DataFrame([row(t1, "route_baseline_hours", 1, "young"), row(t2, "route_baseline_hours", 2, "young"),
                         row(t2, "route_baseline_ok_calls", 120, "young"), row(t2, "route_error_baseline", 0.01, "young"),
                         row(t2, "route_baseline_hours", 24, "grown"), row(t2, "route_baseline_ok_calls", 9000, "grown"),
                         row(t2, "route_slow_threshold_ms", 8000, "grown")])
    out = frames.route_baselines(tall, 3, 500).set_index("route")
    assert out.loc["young", "baseline"] == ("baseline: 2 h of history, 3 h minimum (immature); "
                                            "slow-call threshold learning: 120 of 500 successful calls")
    assert out.loc["grown", "baseline"] == "baseline: 24 h of history, 3 h minimum"
    assert out.loc["grown", "route_slow_threshold_ms"] == 8000


def test_failure_class_chart_points_each_carry_their_own_count_and_trace() -> None:
    """A class missing from a bucket gets a real zero point (plotly would infer one with no data),
    so the n-th drawn point of every trace is the n-th customdata row; the total line opens a trace too."""
    t = pd.to_datetime(["2026-01-01 04:00", "2026-01-01 05:00"])
    frame = pd.DataFrame({
        "time": [t[0], t[0], t[1]], "failure_class": ["http_5xx", "format", "http_5xx"],
        "rate": [0.1, 0.05, 0.2], "count": [2, 1, 4], "errors": [3, 3, 4], "requests": [20, 20, 20],
        "exemplar_trace_id": ["a" * 32, "b" * 32, "c" * 32]})
    fig = charts.failure_classes(frame)
    by_name = {trace.name: trace for trace in fig.data}
    assert [list(row) for row in by_name["format"].customdata] == [["b" * 32, "1"], ["", "0"]]
    assert list(by_name["format"].y) == [0.05, 0.0]
    assert list(by_name["format"].text) == ["trace " + "b" * 32, "no failed call"]
    assert [list(row) for row in by_name["all failures"].customdata] == [["a" * 32, "3"], ["c" * 32, "4"]]
    for trace in fig.data:
        assert len(trace.x) == len(trace.customdata) == 2


def test_a_class_with_no_failure_opens_the_trace_of_the_class_its_point_sits_on() -> None:
    """Its zero-height point lies exactly on the class under it, and Plotly gives the click there to
    the later trace: that point must open what the user sees there, not nothing (a browser test
    clicked the 5xx point and got the format class's empty one)."""
    t = pd.to_datetime(["2026-01-01 04:00", "2026-01-01 05:00"])
    frame = pd.DataFrame({
        "time": [t[0], t[1], t[1], t[0]], "failure_class": ["format", "http_5xx", "format", "rate_limited"],
        "rate": [0.05, 0.2, 0.0, 0.1], "count": [1, 4, 0, 2], "errors": [3, 4, 3, 4], "requests": [20, 20, 20, 20],
        "exemplar_trace_id": ["b" * 32, "c" * 32, None, "d" * 32]})
    by_name = {trace.name: trace for trace in charts.failure_classes(frame).data}
    # stacked format (bottom), http_5xx, rate_limited (top)
    assert [row[0] for row in by_name["http_5xx"].customdata] == ["b" * 32, "c" * 32]      # 04:00: on format
    assert [row[0] for row in by_name["rate_limited"].customdata] == ["d" * 32, "c" * 32]  # 05:00: on 5xx
    assert [row[1] for row in by_name["rate_limited"].customdata] == ["2", "0"]             # its own count
    assert list(by_name["http_5xx"].text) == ["none; opens the format trace " + "b" * 32 + " under it",
                                               "trace " + "c" * 32]
    assert list(by_name["format"].text) == ["trace " + "b" * 32, "no failed call"]         # nothing under it


def test_p_values_read_at_any_size_and_an_underflow_is_not_an_exact_zero():
    from dashboard.ui import fmt_p

    assert [fmt_p(v) for v in (0.5, 1e-4, 3.2e-12, 0.0, None)] == ["0.5000", "0.0001", "3.2e-12", "< 1e-300", "\u2013"]
