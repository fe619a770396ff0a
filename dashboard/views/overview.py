"""Overview: SLO tiles and error budget, active alerts, sparklines, and what changed since yesterday."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, frames, ui

# Until the SLO analyzer has written an objective (raw spans only), budgets use this one.
DEFAULT_OBJECTIVE = 0.995

ctx = ui.page("Overview", "SLOs, alerts and traffic at a glance")

summary = ctx.filtered("summary")
if ui.show(summary, what="traffic"):
    t = frames.totals(summary.frame)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Requests", ui.fmt_number(t["requests"]))
    c2.metric("Error rate", ui.fmt_number(t["error_rate"], "%", 2))
    c3.metric("p95 latency", ui.fmt_number(t["p95_ms"], "ms"))
    c4.metric("Cost", ui.fmt_number(t["cost_usd"], "$"))

st.subheader("SLOs and error budget")
slo = ctx.metrics(["slo_attainment", "slo_attainment_latency", "slo_objective", "burn_rate_availability",
                   "burn_rate_latency"], grain="1h", by="service_name")
if slo.ok:
    tidy = frames.tidy_metrics(slo.frame)
    for service, part in list(tidy.groupby("service_name", dropna=False))[:6]:
        attainment = frames.latest(part, "slo_attainment")
        objective = frames.latest(part, "slo_objective") or DEFAULT_OBJECTIVE
        cols = st.columns(4)
        cols[0].markdown(f"**`{service}`**")
        cols[1].metric("Availability, this hour", ui.fmt_number(attainment, "%", 2),
                       help=f"Share of good requests in the current hour bucket; objective {objective:.2%}.")
        cols[2].metric("Latency SLO, this hour", ui.fmt_number(frames.latest(part, "slo_attainment_latency"), "%", 2))
        cols[3].metric("Burn rate, last 60 min", ui.fmt_number(frames.latest(part, "burn_rate_availability"), digits=1),
                       help="Budget spent over the trailing 60 minutes per budget allowed: 1.0 spends the error "
                            "budget exactly over the SLO period; 14.4 pages. A trailing window, so it can differ "
                            "from the hour bucket beside it.")
        if attainment is not None:
            budget_left = 1 - (1 - attainment) / (1 - objective)
            st.progress(min(max(budget_left, 0.0), 1.0),
                        text=f"Error budget left this hour at the {objective:.2%} objective: "
                             f"{ui.fmt_number(budget_left, '%', 1)}")
elif summary.ok:
    # Without the analyzers, availability over the window is still known from the raw spans.
    t = frames.totals(summary.frame)
    availability = 1 - t["error_rate"]
    budget_left = 1 - (1 - availability) / (1 - DEFAULT_OBJECTIVE)
    cols = st.columns(2)
    cols[0].metric("Availability (raw spans)", ui.fmt_number(availability, "%", 3),
                   help=f"Against a default {DEFAULT_OBJECTIVE:.1%} objective; the configured SLOs and burn rates "
                        "appear once the analyzers run.")
    cols[1].metric("Error budget left", ui.fmt_number(budget_left, "%", 1))
    st.progress(min(max(budget_left, 0.0), 1.0))
    ui.show(slo, empty_hint=ui.RUN_ANALYZERS, what="burn rates")
else:
    ui.show(slo, empty_hint=ui.RUN_ANALYZERS, what="SLO attainment")

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
        cols = st.columns(max(len(sev), 1))
        for col, row in zip(cols, sev.itertuples(index=False)):
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
today = ctx.filtered("summary", keys=("service", "model", "version", "route"), start="-24h", end="now")
yesterday = ctx.filtered("summary", keys=("service", "model", "version", "route"), start="-48h", end="-24h")
if today.state == "down" or yesterday.state == "down":
    ui.show(today)
elif today.ok or yesterday.ok:
    diff = frames.changes(today.frame, yesterday.frame)
    ui.table(diff, ["service_name", "model", "requests", "requests_before", "requests_change", "error_rate",
                    "error_rate_before", "p95_ms", "p95_ms_before", "p95_ms_change", "cost_usd", "cost_usd_before",
                    "cost_usd_change"],
             column_config={c: st.column_config.NumberColumn(format="percent") for c in
                            ("requests_change", "p95_ms_change", "cost_usd_change", "error_rate", "error_rate_before")})
else:
    ui.show(today, what="the last two days")
