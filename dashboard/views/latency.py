"""Latency: p50 / p95 / p99 over time per model, version and route, against the SLA; distribution."""
from __future__ import annotations

import streamlit as st

from alerts.rules import Evidence
from analysis.route_health import MIN_OK_FOR_LEARNED
from dashboard import charts, frames, ui
from store.queries import PERCENTILE_DEFINITION

ctx = ui.page("Latency", "Percentiles of successful model calls")

by = ui.split_by("latency")
sla_ms = st.number_input("SLA (ms)", min_value=0, value=int(st.query_params.get("sla", 2000) or 2000), step=100,
                         help="Drawn as a line on the charts; kept in the URL as ?sla=")
if str(sla_ms) != st.query_params.get("sla", "2000"):
    st.query_params["sla"] = str(sla_ms)

calls = ctx.filtered("calls")
if ui.show(calls, what="latency"):
    t = frames.totals(calls.frame)
    st.caption(f"Tiles and table: {PERCENTILE_DEFINITION} ({int(t['ok_calls']):,} successful calls).")
    c1, c2, c3 = st.columns(3)
    c1.metric("p50", ui.fmt_number(t["p50_ms"], "ms"))
    c2.metric("p95", ui.fmt_number(t["p95_ms"], "ms"),
              delta="over SLA" if t["p95_ms"] > sla_ms else None, delta_color="inverse")
    c3.metric("p99", ui.fmt_number(t["p99_ms"], "ms"))

st.subheader("Percentiles over time")
ts = ctx.metrics(["latency_p50_ms", "latency_p95_ms", "latency_p99_ms"], by=by)
if ui.show(ts, empty_hint=ui.RUN_ANALYZERS, what="latency over time"):
    if by:
        for metric, label in (("latency_p95_ms", "p95"), ("latency_p99_ms", "p99")):
            ui.chart(charts.line(frames.series(ts.frame, metric, by), f"{label} latency by {by}", color=by,
                                 y_title="ms", hline=sla_ms, hline_label=f"SLA {sla_ms} ms"), key=f"lat-{metric}")
    else:
        ui.chart(charts.multi_line({p: frames.series(ts.frame, f"latency_{p}_ms") for p in ("p50", "p95", "p99")},
                                   "Latency percentiles", y_title="ms", hline=sla_ms, hline_label=f"SLA {sla_ms} ms"))

st.subheader("Distribution")
dist = ctx.filtered("latency_distribution")
if dist.ok:
    d = dist.frame.assign(bin=lambda f: f["bin_start_ms"].round(0).astype(int).astype(str) + " ms")
    ui.chart(charts.bars(d, "bin", "count", "Latency distribution (log-spaced bins, successful calls)",
                         y_title="calls"), key="lat-dist")
else:
    # Without the analyzers' histogram, a sample of the newest spans shows the shape.
    sample = ctx.filtered("spans", llm_only="true", limit=5000)
    if ui.show(sample, what="latency"):
        ok = sample.frame[sample.frame["status_code"] != "error"]
        ui.chart(charts.histogram(ok["duration_ms"], f"Latency distribution (newest {len(ok)} successful calls)",
                                  "ms", vline=sla_ms, vline_label=f"SLA {sla_ms} ms"))

st.subheader("Route baselines")
f = ctx.filters
base = ctx.metrics(frames.ROUTE_BASELINES, grain="1h", service=f.service or "*", route=f.route or "*",
                   model=f.model or "*")
if base.state == "empty":
    # A normal state in a deployment's (or route's) first hour, not a missing-data problem.
    st.caption("No route baselines yet: each route gets one once the analyzers have closed its first hour.")
elif ui.show(base, empty_hint=ui.RUN_ANALYZERS, what="route baselines"):
    st.caption("What the route alerts judge calls against, newest hour: slow calls over the threshold (the "
               "route's latency SLO, else its learned p99) and failures against the normal rate. Alerts on an "
               "immature baseline say so.")
    min_hours = Evidence.model_fields["min_history"].default.total_seconds() / 3600   # the rules' default
    ui.table(frames.route_baselines(base.frame, min_hours, MIN_OK_FOR_LEARNED),
             ["service_name", "route", "model", "route_slow_threshold_ms", "route_error_baseline", "baseline"],
             column_config={"route_slow_threshold_ms": st.column_config.NumberColumn("slow over", format="%.0f ms"),
                            "route_error_baseline": st.column_config.NumberColumn("normal failures",
                                                                                  format="percent")})

groups = ctx.filtered("calls", by="service_model_version")
if groups.ok:
    st.subheader("By service, model and version")
    ui.table(groups.frame, ["service_name", "model", "model_version", "requests", "p50_ms", "p95_ms", "p99_ms"],
             column_config={c: st.column_config.NumberColumn(format="%.0f ms") for c in ("p50_ms", "p95_ms", "p99_ms")})
