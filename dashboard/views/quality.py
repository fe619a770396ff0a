"""Quality and confidence: format compliance, quality scores, confidence against its baseline."""
from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from dashboard import charts, evidence, frames, ui
from dashboard.ui import SAMPLE

ctx = ui.page("Quality & confidence", "Output quality and model confidence against the trailing baseline")
by = ui.split_by("quality")

start, end = ctx.filters.span()
# over every filtered call (the `calls` query), not a sample of spans
calls = ctx.filtered("calls")
if ui.show(calls, what="quality"):
    row = calls.frame.iloc[0]
    c1, c2, c3 = st.columns(3)
    c1.metric("Format compliance", ui.fmt_number(row.get("format_ok_rate"), "%", 1),
              help="Share of the checked outputs of successful calls that passed (a failed call has no output).")
    c2.metric("Mean quality score", ui.fmt_number(row.get("quality_mean"), digits=3))
    c3.metric("Mean confidence", ui.fmt_number(row.get("confidence_mean"), digits=3))

st.subheader("Confidence shift against the baseline")
# The confidence analyzer writes hourly rows per service, model and version (no rollup): read those,
# from the hour the window starts in, so a short window still shows the latest complete hour.
shift_start = (start.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)).isoformat()
f = ctx.filters
shift = ctx.query("metrics", metric="confidence_ks_stat,confidence_ks_pvalue,confidence_psi,confidence_wasserstein",
                  grain="1h", start=shift_start, end=f.end, service=f.service or "*", model=f.model or "*",
                  version=f.version or "*", limit=100_000)
if ui.show(shift, empty_hint=ui.RUN_ANALYZERS, what="confidence shift (KS, PSI, Wasserstein)"):
    latest = frames.latest_by_group(shift.frame, ("service_name", "model", "model_version"))
    worst = latest.sort_values("confidence_psi", ascending=False, na_position="last").iloc[0]
    st.caption(f"Latest hour ({pd.Timestamp(worst['time']):%Y-%m-%d %H:00} UTC); tiles: the group with the "
               f"largest PSI, `{worst['service_name']}` / `{worst['model']}` / `{worst['model_version']}`.")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("KS statistic", ui.fmt_number(worst.get("confidence_ks_stat"), digits=3))
    c2.metric("KS p-value", ui.fmt_p(worst.get("confidence_ks_pvalue")))
    c3.metric("PSI", ui.fmt_number(worst.get("confidence_psi"), digits=3))
    c4.metric("Wasserstein", ui.fmt_number(worst.get("confidence_wasserstein"), digits=3))
    if len(latest) > 1:
        ui.table(latest, ["service_name", "model", "model_version", "time", "confidence_ks_stat",
                          "confidence_ks_pvalue", "confidence_psi", "confidence_wasserstein"])

trend = ctx.metrics(["format_ok_rate", "quality_mean", "confidence_mean"], by=by)
if ui.show(trend, empty_hint=ui.RUN_ANALYZERS, what="quality over time"):
    tf = trend.frame
    c1, c2 = st.columns(2)
    with c1:
        ui.chart(charts.line(frames.series(tf, "format_ok_rate", by), "Format compliance", color=by, percent=True))
    with c2:
        ui.chart(charts.line(frames.series(tf, "confidence_mean", by), "Mean confidence", color=by))
    ui.chart(charts.line(frames.series(tf, "quality_mean", by), "Mean quality score", color=by))

evidence.route_shift(ctx, "quality")

st.subheader("Confidence distribution")
dist = ctx.filtered("confidence_distribution")
if dist.ok:
    # The baseline is the trailing 7 days before the window, read through the same query.
    base = ctx.filtered("confidence_distribution", keys=("service", "model", "version", "route"),
                        start=(start - timedelta(days=7)).isoformat(), end=start.isoformat(), quantiles="false")
    d = frames.binned_shares({"current": dist.frame, "baseline (7 days before)": base.frame})
    ui.chart(charts.bars(d, "bin", "share", "Confidence: this window against the previous 7 days", color="window",
                         percent=False, y_title="share of calls"), key="conf-dist")
    q = dist.frame.iloc[0]
    st.caption(f"Quantiles this window: p05 {q['p05']:.3f} · p25 {q['p25']:.3f} · median {q['p50']:.3f} "
               f"· p75 {q['p75']:.3f} · p95 {q['p95']:.3f} (n = {int(q['total']):,})")
elif (sample := ctx.filtered("spans", llm_only="true", limit=SAMPLE)).ok:
    # a server without confidence_distribution: a sample of the calls, and the 7 days before as baseline
    base = ctx.filtered("spans", keys=("service", "model", "version", "route"), llm_only="true", limit=SAMPLE,
                        start=(start - timedelta(days=7)).isoformat(), end=start.isoformat())
    ui.chart(charts.histogram(sample.frame["confidence"], "Confidence: this window against the previous 7 days",
                              "confidence", baseline=base.frame["confidence"] if base.ok else None))
    if not base.ok:
        st.caption("No baseline yet: there were no calls in the 7 days before this window.")
