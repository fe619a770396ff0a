"""Errors and reliability: 4xx / 5xx / model failures, retries, breaker opens, fallbacks, timeouts."""
from __future__ import annotations

import streamlit as st

from dashboard import charts, frames, ui
from dashboard.ui import SAMPLE

ctx = ui.page("Errors & reliability", "Failures, retries, circuit breakers and fallbacks")
by = ui.split_by("errors")

calls = ctx.filtered("calls")
sample = ctx.filtered("spans", llm_only="true", limit=SAMPLE)
if ui.show(calls, what="errors"):
    t = frames.totals(calls.frame)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Error rate", ui.fmt_number(t["error_rate"], "%", 2), help="Failed calls / all calls, every class.")
    c2.metric("Failed calls", ui.fmt_number(t["errors"]))
    if "retried_calls" in calls.frame.columns:     # over every filtered call (an older server: not shown)
        row = calls.frame.iloc[0]
        c3.metric("Retried calls", ui.fmt_number(float(row["retried_calls"])),
                  help="Calls that needed at least one retry.")
        c4.metric("Served by a fallback", ui.fmt_number(row["fallback_rate"], "%", 1),
                  help="Share of calls answered by a fallback model, a rule or a human.")

st.subheader("Error rates over time")
grain = ctx.filters.grain()
failures = ctx.filtered("failures", grain=grain)
if ui.show(failures, what="failures over time"):
    st.caption(f"Every failure class, {'per minute' if grain == '1m' else 'per hour'}; the classes add up to the "
               "error rate above. Click a point to open its newest failing trace.")
    ui.trace_chart(charts.failure_classes(failures.frame), key="err-classes")
ts = ctx.metrics(["timeouts", "retries", "breaker_opens", "fallback_rate", "fallback_rule_based", "fallback_human"],
                 by=by)
if ui.show(ts, empty_hint=ui.RUN_ANALYZERS, what="retries and fallbacks over time"):
    f = ts.frame
    c1, c2 = st.columns(2)
    with c1:
        ui.chart(charts.multi_line({"retries": frames.series(f, "retries"), "breaker opens": frames.series(f, "breaker_opens"),
                                    "timeouts": frames.series(f, "timeouts")}, "Retries, breaker opens, timeouts"))
    with c2:
        ui.chart(charts.multi_line({"any fallback": frames.series(f, "fallback_rate"),
                                    "rule based": frames.series(f, "fallback_rule_based"),
                                    "human": frames.series(f, "fallback_human")}, "Fallback use"))

if sample.ok:
    s = sample.frame
    errors = s[s["status_code"] == "error"]
    st.subheader(f"Breakdown of the newest {len(s):,} calls")
    c1, c2, c3 = st.columns(3)
    with c1:
        ui.chart(charts.bars(frames.counts_by(errors, "error_type"), "error_type", "count", "Errors by type",
                             horizontal=True), key="err-type")
    with c2:
        ui.chart(charts.bars(frames.counts_by(errors.assign(http_status=errors["http_status"].astype("Int64").astype(str)),
                                              "http_status"), "http_status", "count", "Errors by HTTP status"),
                 key="err-http")
    with c3:
        ui.chart(charts.bars(frames.counts_by(s, "fallback_level"), "fallback_level", "count", "Fallback level used"),
                 key="err-fallback")
    st.subheader("Recent failed calls")
    if errors.empty:
        st.success("No failed calls in this window.")
    else:
        ui.trace_table(errors.head(200), ["trace_id", "start_time", "service_name", "route", "response_model",
                                          "model_version", "error_type", "http_status", "status_message",
                                          "retry_count", "fallback_level"])
