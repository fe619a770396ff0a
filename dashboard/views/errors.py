"""Errors and reliability: 4xx / 5xx / model failures, retries, breaker opens, fallbacks, timeouts."""
from __future__ import annotations

import streamlit as st

from dashboard.ui import SAMPLE
from dashboard import charts, frames, ui

ctx = ui.page("Errors & reliability", "Failures, retries, circuit breakers and fallbacks")
by = ui.split_by("errors")

summary = ctx.filtered("summary")
sample = ctx.filtered("spans", llm_only="true", limit=SAMPLE)
if ui.show(summary, what="errors"):
    t = frames.totals(summary.frame)
    s = sample.frame
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Error rate", ui.fmt_number(t["error_rate"], "%", 2))
    c2.metric("Failed calls", ui.fmt_number(t["errors"]))
    if sample.ok:
        c3.metric("Retried calls", ui.fmt_number(float((s["retry_count"].fillna(0) > 0).sum())))
        c4.metric("Served by a fallback",
                  ui.fmt_number(float(s["fallback_level"].isin(["fallback", "rule_based", "human"]).mean()), "%", 1))

st.subheader("Error rates over time")
ts = ctx.metrics(["error_rate_4xx", "error_rate_5xx", "model_failure_rate", "timeouts", "retries", "breaker_opens",
                  "fallback_rate", "fallback_rule_based", "fallback_human"], by=by)
if ui.show(ts, empty_hint=ui.RUN_ANALYZERS, what="error rates over time"):
    f = ts.frame
    if by:
        ui.chart(charts.line(frames.series(f, "error_rate_5xx", by), f"5xx rate by {by}", color=by, percent=True))
    else:
        ui.chart(charts.multi_line({"4xx": frames.series(f, "error_rate_4xx"), "5xx": frames.series(f, "error_rate_5xx"),
                                    "model failures": frames.series(f, "model_failure_rate")},
                                   "Error rates", percent=True))
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
        ui.table(errors.head(200), ["start_time", "service_name", "route", "response_model", "model_version",
                                    "error_type", "http_status", "status_message", "retry_count", "fallback_level",
                                    "trace_id"])
