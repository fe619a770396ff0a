"""Cost and tokens: by model, route and user; per request; trend; month-end projection."""
from __future__ import annotations

from datetime import datetime, timezone

import streamlit as st

from dashboard.ui import SAMPLE
from dashboard import charts, frames, ui

ctx = ui.page("Cost & tokens", "Spend from each span's cost (else the price table)")
by = ui.split_by("cost")

summary = ctx.filtered("summary")
now = datetime.now(timezone.utc).replace(tzinfo=None)
month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
mtd = ctx.filtered("summary", keys=("service", "model", "version", "route"), start=month_start.isoformat(), end="now")
if ui.show(summary, what="cost"):
    t = frames.totals(summary.frame)
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric("Cost", ui.fmt_number(t["cost_usd"], "$"))
    c2.metric("Cost per request", ui.fmt_number(t["cost_usd"] / t["requests"] if t["requests"] else None, "$", 4))
    c3.metric("Input tokens", ui.fmt_number(t["input_tokens"]))
    c4.metric("Output tokens", ui.fmt_number(t["output_tokens"]))
    if mtd.ok:
        spent = frames.totals(mtd.frame)["cost_usd"]
        c5.metric("Month-end projection", ui.fmt_number(frames.month_end_projection(spent, now), "$"),
                  help=f"Linear from {ui.fmt_number(spent, '$')} spent since {month_start:%Y-%m-%d}.")
    ui.chart(charts.bars(summary.frame.assign(label=summary.frame["model"].fillna("?") + " " +
                                              summary.frame["model_version"].fillna("")),
                         "label", "cost_usd", "Cost by model and version", y_title="USD"), key="cost-model")

st.subheader("Trend")
ts = ctx.metrics(["cost_usd", "cost_per_request_usd", "input_tokens", "output_tokens"], by=by)
if ui.show(ts, empty_hint=ui.RUN_ANALYZERS, what="cost over time"):
    c1, c2 = st.columns(2)
    with c1:
        ui.chart(charts.line(frames.series(ts.frame, "cost_usd", by), "Cost per bucket", color=by, y_title="USD"))
    with c2:
        ui.chart(charts.multi_line({"input": frames.series(ts.frame, "input_tokens"),
                                    "output": frames.series(ts.frame, "output_tokens")}, "Tokens per bucket"))

st.subheader("Top spenders")
spenders = ctx.filtered("top_spenders")
if spenders.ok:
    d = spenders.frame
    who = next((c for c in ("route", "user_id", "key", "name") if c in d.columns), d.columns[0])
    ui.chart(charts.bars(d, who, "cost_usd" if "cost_usd" in d.columns else d.columns[-1], "Top spenders",
                         color="kind" if "kind" in d.columns else None, horizontal=True), key="spenders")
    ui.table(d)
else:
    sample = ctx.filtered("spans", llm_only="true", limit=SAMPLE)
    if ui.show(sample, what="spend by route and user"):
        s = sample.frame
        st.caption(f"From the newest {len(s):,} model calls in the window.")
        c1, c2 = st.columns(2)
        for col, key in ((c1, "route"), (c2, "user_id")):
            top = (s.assign(**{key: s[key].fillna("(none)")}).groupby(key, as_index=False)
                   .agg(cost_usd=("cost_usd", "sum"), requests=("span_id", "size"))
                   .sort_values("cost_usd", ascending=False).head(10))
            with col:
                ui.chart(charts.bars(top, key, "cost_usd", f"Cost by {key.replace('_id', '')}", horizontal=True),
                         key=f"spend-{key}")
