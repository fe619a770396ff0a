"""Drift: per-feature drift scores over time, drill into a window, and the Evidently report."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import charts, frames, ui

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
        ui.table(window, ["route", "column", "test", "score", "threshold", "drifted"])

st.subheader("Evidently reports")
reports = ctx.filtered("reports", keys=("start", "end", "service"), analyzer="evidently", limit=50)
if ui.show(reports, empty_hint="an Evidently HTML report is saved when the drift analyzer finds drift, "
                               "or on demand with `aiwatch analyze`", what="saved Evidently reports"):
    flat = frames.flatten_reports(reports.frame)
    ui.table(flat, ["time", "window_end", "route", "body.path", "body.current_rows", "body.reference_rows"])
    # Reports are files the server saved; on the server's machine the dashboard can open them.
    for i, rec in enumerate(flat.head(10).to_dict("records")):
        path = Path(str(rec.get("body.path") or ""))
        if path.is_file():
            st.download_button(f"Open {path.name}", path.read_bytes(), path.name, "text/html", key=f"evidently-{i}")
st.caption("Generate a full Evidently report for a route and window with "
           "`aiwatch analyze --since START --until END --evidently-report ROUTE`.")
