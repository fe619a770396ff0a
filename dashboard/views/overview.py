"""Overview: SLO tiles and error budget, active alerts, sparklines, and what changed since yesterday."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from analysis.settings import DEFAULT_AVAILABILITY_OBJECTIVE
from dashboard import charts, frames, ui
from store.queries import PERCENTILE_DEFINITION

ctx = ui.page("Overview", "SLOs, alerts and traffic at a glance")

calls = ctx.filtered("calls")
if ui.show(calls, what="traffic"):
    t = frames.totals(calls.frame)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Requests", ui.fmt_number(t["requests"]))
    c2.metric("Error rate", ui.fmt_number(t["error_rate"], "%", 2), help="Failed calls / all calls in the window.")
    c3.metric("p95 latency", ui.fmt_number(t["p95_ms"], "ms"), help=f"Over the window: {PERCENTILE_DEFINITION}.")
    ui.cost_metric(c4, "Cost", t)

st.subheader("SLOs and error budget")
st.caption("Availability, budget and burn rate per service over the selected window, from the raw calls "
           "(burn rate 1.0 spends the budget exactly over the SLO period).")
by_service = ctx.filtered("calls", by="service")
# objectives are per service: read them without the model / route filters
objectives = ctx.filtered("metrics", keys=("start", "end"), metric="slo_objective,slo_attainment_latency", grain="1h",
                          service="*", limit=100_000)
obj = frames.tidy_metrics(objectives.frame) if objectives.ok else frames.tidy_metrics(pd.DataFrame())
if ui.show(by_service, what="SLO attainment"):
    for row in by_service.frame.head(8).itertuples(index=False):
        part = obj[obj["service_name"] == row.service_name]
        objective = frames.latest(part, "slo_objective") or DEFAULT_AVAILABILITY_OBJECTIVE
        availability = 1 - row.errors / row.requests
        remaining, text, colour = frames.budget(availability, objective)
        cols = st.columns(4)
        cols[0].markdown(f"**`{row.service_name}`**")
        cols[1].metric("Availability", ui.fmt_number(availability, "%", 2),
                       help=f"Successful calls / all calls over the window ({int(row.requests):,} calls); "
                            f"objective {objective:.2%}.")
        cols[2].metric("Error budget", text, help=f"At the {objective:.2%} objective, over the window.")
        cols[3].metric("Burn rate", ui.fmt_number((1 - availability) / (1 - objective), digits=1),
                       help="Failed share / allowed failed share over the window: above 1 the budget runs out "
                            "before the SLO period ends.")
        ui.budget_bar(remaining, colour, f"{row.service_name}: error budget {text} at the {objective:.2%} objective")
    latency = frames.latest(obj, "slo_attainment_latency") if not obj.empty else None
    if latency is not None:
        st.caption(f"Latency SLO attainment, latest hour (analyzers): {ui.fmt_number(latency, '%', 2)}")

st.subheader("Active alerts")
alerts = ctx.query("alerts")
if ui.show(alerts, empty_hint="nothing is firing", missing_hint=ui.ALERTS_MISSING, what="alerts"):
    a = alerts.frame
    if "state" in a.columns:
        a = a[a["state"].isin(["firing", "pending"])]
    if a.empty:
        st.success("Nothing is firing.")
    else:
        sev = frames.counts_by(a, "severity") if "severity" in a.columns else pd.DataFrame()
        sev_cols = st.columns(max(len(sev), 1))
        for col, row in zip(sev_cols, sev.itertuples(index=False)):
            col.metric(f"{row[0]}", int(row[1]))
        st.page_link("views/alerts.py", label="Open alerts", icon=":material/notifications:")

st.subheader("Traffic, latency, errors, cost")
spark = ctx.metrics(["requests", "latency_p95_ms", "error_rate", "cost_usd"])
if ui.show(spark, empty_hint=ui.RUN_ANALYZERS, what="the time series"):
    cols = st.columns(4)
    for col, (metric, title, pct) in zip(cols, [("requests", "Requests", False), ("latency_p95_ms", "p95 latency (ms)", False),
                                               ("error_rate", "Error rate", True), ("cost_usd", "Cost (USD)", False)]):
        with col:
            ui.chart(charts.sparkline(frames.series(spark.frame, metric), title, percent=pct), key=f"spark-{metric}", toolbar=False)

st.subheader("What changed since yesterday")
st.caption("Last 24 hours against the 24 hours before, per service and model: error rates are failed calls / "
           "calls and p95 is exact within each group.")
today = ctx.filtered("calls", keys=("service", "model", "version", "route"), start="-24h", end="now", by="service_model")
yesterday = ctx.filtered("calls", keys=("service", "model", "version", "route"), start="-48h", end="-24h",
                         by="service_model")
if today.state == "down" or yesterday.state == "down":
    ui.show(today)
elif today.ok or yesterday.ok:
    diff = frames.changes(today.frame, yesterday.frame)
    ui.table(diff, ["service_name", "model", "requests", "requests_before", "requests_change", "error_rate",
                    "error_rate_before", "p95_ms", "p95_ms_before", "p95_ms_change", "cost_usd", "cost_usd_before",
                    "cost_usd_change"],
             column_config={**{c: st.column_config.NumberColumn(format="percent") for c in
                               ("requests_change", "p95_ms_change", "cost_usd_change", "error_rate",
                                "error_rate_before")},
                            **{c: st.column_config.NumberColumn(format="%.0f ms") for c in ("p95_ms", "p95_ms_before")},
                            **{c: st.column_config.NumberColumn(format="$%.2f") for c in ("cost_usd", "cost_usd_before")}})
else:
    ui.show(today, what="the last two days")
