"""Drift: per-feature drift scores over time, drill into a window, and the Evidently report."""
from __future__ import annotations

from typing import Any

import httpx
import pandas as pd
import streamlit as st

from aiwatch.httpapi import signed_link
from dashboard import charts, client, evidence, frames, ui

ctx = ui.page("Drift", "Input drift per route against the reference window (Evidently's default tests)")

share = ctx.metrics(["drift_share"], by="route")
drift = ctx.filtered("drift", keys=("start", "end", "service", "route"), limit=5000)

if share.ok:
    s = frames.series(share.frame, "drift_share", "route")
    st.metric("Latest drift share (max over routes)", ui.fmt_number(s.groupby("route")["value"].last().max(), "%", 0))
    ui.chart(charts.line(s, "Share of drifted columns", color="route", percent=True, hline=0.5,
                         hline_label="dataset drift at 50%"), key="drift-share")

if ui.show(drift, empty_hint=ui.RUN_ANALYZERS, what="drift reports"):
    per_col = frames.drift_columns(drift.frame)
    if per_col.empty:
        ui.table(frames.flatten_reports(drift.frame))
    else:
        ui.chart(charts.heatmap(per_col.assign(time=pd.to_datetime(per_col["time"])), "time", "column", "score",
                                "Drift score per column and window", "score"), key="drift-heat")
        st.subheader("Drill into a window")
        windows = sorted(per_col["time"].dropna().unique(), reverse=True)
        chosen = st.selectbox("Window", windows, format_func=lambda t: pd.Timestamp(t).strftime("%Y-%m-%d %H:%M UTC"))
        window = per_col[per_col["time"] == chosen]
        drifted = int(window["drifted"].fillna(False).sum())
        st.markdown(f"**{drifted} of {len(window)} column(s) drifted** in this window.")
        alpha = window["alpha"].dropna()
        st.caption("A column drifted when Evidently's default test says so (`score` against `threshold`: "
                   "`evidently`) and the hour's calls differ from the reference beyond chance: `p_value` (KS, or "
                   "chi-square for categories) under "
                   + (f"{float(alpha.iloc[0]):g}" if len(alpha) else "the server's")
                   + " (`[analysis] drift_alpha`). On a reference of over 1,000 calls Evidently's test is a "
                   "distance alone, which an hour of 100 ordinary calls often crosses by chance.")
        ui.table(window.assign(p_value=window["p_value"].map(ui.fmt_p)),
                 ["route", "column", "test", "score", "threshold", "evidently", "p_value", "drifted"])

evidence.route_shift(ctx, "drift")

st.subheader("Evidently reports")


with st.form("evidently-report"):
    st.caption("Generate Evidently's full drift report (HTML) for a route and window. The server saves it "
               "and gives it a link; the reference defaults to the analyzers' reference period.")
    window_start, window_end = ctx.filters.span()
    c1, c2, c3 = st.columns(3)
    route = c1.text_input("Route", value=ctx.filters.route or "")
    start = c2.text_input("Start (UTC)", value=window_start.strftime("%Y-%m-%dT%H:%M"))
    end = c3.text_input("End (UTC)", value=window_end.strftime("%Y-%m-%dT%H:%M"))
    r1, r2, r3 = st.columns(3)
    ref_start = r1.text_input("Reference start (optional)", value="")
    ref_end = r2.text_input("Reference end (optional)", value="")
    columns = r3.text_input("Columns (optional, comma-separated)", value="",
                            help="e.g. input_tokens, attr:aiwatch.input.language:cat; default: the drift settings")
    if st.form_submit_button("Generate report"):
        body: dict[str, Any] = {"route": route.strip(), "start": start.strip(), "end": end.strip(), "service": ctx.filters.service}
        if ref_start.strip() or ref_end.strip():
            body |= {"reference_start": ref_start.strip(), "reference_end": ref_end.strip()}
        if columns.strip():
            body["columns"] = [c.strip() for c in columns.split(",") if c.strip()]
        headers = {"Authorization": f"Bearer {ctx.token}"} if ctx.token else {}
        try:
            with st.spinner("Evidently is computing the report..."):
                r = httpx.post(f"{ctx.server_url}/v1/reports/drift", json=body, headers=headers, timeout=600)
        except httpx.HTTPError as exc:
            st.error(f"Cannot reach the aiwatch server at {ctx.server_url}: {exc}")
        else:
            if r.status_code < 300:
                out = r.json()
                client.clear_cache()
                st.success(f"Report saved: {out['current_rows']:,} calls against {out['reference_rows']:,} "
                           f"in the reference ({', '.join(out['columns'])}).")
                # a browser link carries no bearer token: the dashboard signs a short-lived one
                st.link_button("Open the report", f"{ctx.server_url}{signed_link(ctx.token, out['url'])}")
            else:
                try:
                    err = r.json()["error"]["message"]
                except (ValueError, KeyError, TypeError):
                    err = r.text[:300]
                st.error(f"The server could not make the report ({r.status_code}): {err}")

reports = ctx.filtered("reports", keys=("start", "end", "service"), analyzer="evidently", limit=50)
if ui.show(reports, empty_hint="generate one above (or with `aiwatch analyze --evidently-report ROUTE`)",
           what="saved Evidently reports"):
    flat = frames.flatten_reports(reports.frame)
    if "body.url" in flat.columns:
        flat = flat.assign(link=[f"{ctx.server_url}{signed_link(ctx.token, u)}" if isinstance(u, str) and u
                                 else None for u in flat["body.url"]])
    ui.table(flat, ["time", "window_end", "route", "link", "body.current_rows", "body.reference_rows"],
             column_config={"link": st.column_config.LinkColumn("report", display_text="open")})
