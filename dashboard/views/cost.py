"""Cost and tokens: by model, route and user; per request; trend; month-end projection."""
from __future__ import annotations

import streamlit as st

from dashboard import charts, evidence, frames, ui
from dashboard.ui import SAMPLE

ctx = ui.page("Cost & tokens", "Spend from each span's cost, else tokens x genai-prices (with overrides)")
by = ui.split_by("cost")

calls = ctx.filtered("calls")
window_start, window_end = ctx.filters.span()
month_start = window_end.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
mtd = ctx.filtered("calls", keys=("service", "model", "version", "route"), start=month_start.isoformat(),
                   end=window_end.isoformat())
if ui.show(calls, what="cost"):
    t = frames.totals(calls.frame)
    priced = t["requests"] - t["unpriced_calls"]
    c1, c2, c3, c4, c5 = st.columns(5)
    ui.cost_metric(c1, "Cost", t)
    c2.metric("Cost per request", ui.fmt_number(t["cost_usd"] / priced if priced else None, "$", 4),
              help="Over the priced calls.")
    c3.metric("Input tokens", ui.fmt_number(t["input_tokens"]))
    c4.metric("Output tokens", ui.fmt_number(t["output_tokens"]))
    if mtd.ok and priced:
        spent = frames.totals(mtd.frame)["cost_usd"]
        projection = frames.month_end_projection(spent, t["cost_usd"], window_start, window_end)
        c5.metric("Month-end projection", ui.fmt_number(projection, "$"),
                  help=f"{ui.fmt_number(spent, '$')} spent since {month_start:%Y-%m-%d}, plus the rest of the month "
                       f"at this window's rate ({ui.fmt_number(t['cost_usd'], '$')} in {ctx.filters.label().lower()}).")
    if t["unpriced_calls"]:
        st.warning(f"{int(t['unpriced_calls']):,} call(s) have no price ({t['unpriced_models']}): they are left out "
                   "of the cost, not counted as $0. Prices come from genai-prices; add an override for these models.",
                   icon=":material/price_change:")
    by_model = ctx.filtered("calls", by="service_model_version")
    if by_model.ok:
        m = by_model.frame
        ui.chart(charts.bars(m.assign(label=m["model"].fillna("?") + " " + m["model_version"].fillna("")),
                             "label", "cost_usd", "Cost by model and version (unpriced: no bar)", y_title="USD"),
                 key="cost-model")

st.subheader("Prices applied")
applied = ctx.filtered("prices")
if ui.show(applied, what="prices"):
    st.caption("Calls that carry their own cost (the shim's) keep it; the others are priced here from their tokens "
               "with this price (USD per million tokens). Source: an override from the prices_file setting, or "
               "genai-prices with its version; none: unpriced.")
    ui.table(applied.frame, ["model", "calls", "calls_with_own_cost", "calls_priced_here", "price_source",
                             "input_per_mtok", "cached_input_per_mtok", "output_per_mtok", "reasoning_per_mtok"])

st.subheader("Trend")
ts = ctx.metrics(["cost_usd", "cost_per_request_usd", "input_tokens", "output_tokens"], by=by)
if ui.show(ts, empty_hint=ui.RUN_ANALYZERS, what="cost over time"):
    c1, c2 = st.columns(2)
    with c1:
        ui.chart(charts.line(frames.series(ts.frame, "cost_usd", by), "Cost per bucket", color=by, y_title="USD"))
    with c2:
        ui.chart(charts.multi_line({"input": frames.series(ts.frame, "input_tokens"),
                                    "output": frames.series(ts.frame, "output_tokens")}, "Tokens per bucket"))

evidence.route_shift(ctx, "cost")

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
