"""Human review: override rate ((modified + rejected) / reviewed) by route and model, with reasons."""
from __future__ import annotations

import streamlit as st

from dashboard import charts, frames, ui

ctx = ui.page("Human review", "How often reviewers change or reject model output, and why")

overrides = ctx.filtered("overrides", limit=10000)
if overrides.ok:
    o = overrides.frame
    grouped = (o.groupby(["route", "model"], dropna=False, as_index=False)[["reviewed", "modified", "rejected"]].sum())
    grouped["override_rate"] = (grouped["modified"] + grouped["rejected"]) / grouped["reviewed"]
    reasons = (o[o["reason"].fillna("") != ""].groupby("reason", as_index=False)[["modified", "rejected"]].sum())
    reasons = reasons.melt("reason", var_name="action", value_name="count").query("count > 0")
else:
    # Older servers: the same figures from the raw feedback events.
    raw = ctx.filtered("feedback", keys=("start", "end", "service", "model", "version", "route"), limit=100000)
    if not ui.show(raw, empty_hint="send review outcomes as `aiwatch.feedback` log events "
                                   "(accepted / modified / rejected, with a reason)", what="human review events"):
        st.stop()
    grouped = frames.override_rates(raw.frame)
    reasons = frames.override_reasons(raw.frame)

total = grouped["reviewed"].sum()
overall = (grouped["modified"].sum() + grouped["rejected"].sum()) / total if total else None
c1, c2, c3 = st.columns(3)
c1.metric("Reviewed", ui.fmt_number(total))
c2.metric("Override rate", ui.fmt_number(overall, "%", 1))
c3.metric("Rejected", ui.fmt_number(grouped["rejected"].sum()))

grouped = grouped.assign(group=grouped["route"].fillna("(none)") + " \u00b7 " + grouped["model"].fillna("(none)"))
c1, c2 = st.columns(2)
with c1:
    ui.chart(charts.bars(grouped, "group", "override_rate", "Override rate by route and model", horizontal=True,
                         percent=True), key="ovr-group")
with c2:
    ui.chart(charts.bars(reasons, "reason", "count", "Override reasons", color="action", horizontal=True,
                         barmode="stack"), key="ovr-reasons")
ui.table(grouped, ["route", "model", "reviewed", "modified", "rejected", "override_rate"],
         column_config={"override_rate": st.column_config.NumberColumn(format="percent")})

ts = ctx.metrics(["override_rate"], by="route")
st.subheader("Override rate over time")
if ui.show(ts, empty_hint=ui.RUN_ANALYZERS, what="the override trend"):
    ui.chart(charts.line(frames.series(ts.frame, "override_rate", "route"), "Override rate", color="route",
                         percent=True), key="ovr-trend")
