"""Resources: CPU, GPU, memory and queue depth from OTLP metrics."""
from __future__ import annotations

import streamlit as st

from dashboard import charts, ui

ctx = ui.page("Resources", "Utilisation reported over OTLP metrics")

GROUPS = {"CPU": ("cpu",), "GPU": ("gpu",), "Memory": ("memory", "mem."), "Queue depth": ("queue",)}

raw = ctx.filtered("resource_metrics", keys=("start", "end", "service"), limit=100000)
if ui.show(raw, empty_hint="send OTLP metrics (for example `system.cpu.utilization`, `gpu.utilization`, "
                           "`system.memory.utilization`, `queue.depth`) to the server's /v1/metrics",
           what="resource metrics"):
    d = raw.frame
    latest = d.sort_values("time").groupby("name").tail(1)
    cols = st.columns(len(GROUPS))
    for col, (label, fragments) in zip(cols, GROUPS.items()):
        rows = latest[latest["name"].str.lower().str.contains("|".join(fragments), regex=True)]
        value = rows["value"].mean() if not rows.empty else None
        is_ratio = label != "Queue depth" and value is not None and value <= 1.0
        col.metric(label, ui.fmt_number(value, "%" if is_ratio else "", 1))
    for label, fragments in GROUPS.items():
        part = d[d["name"].str.lower().str.contains("|".join(fragments), regex=True)]
        if part.empty:
            continue
        part = part.assign(series=part["name"] + " \u00b7 " + part["service_name"].fillna("?"))
        ui.chart(charts.line(part, label, x="time", y="value", color="series",
                             percent=label != "Queue depth" and part["value"].max() <= 1.0), key=f"res-{label}")
    others = sorted(set(d["name"]) - {n for n in d["name"] if any(f in n.lower() for fs in GROUPS.values() for f in fs)})
    if others:
        with st.expander(f"Other metrics ({len(others)})"):
            name = st.selectbox("Metric", others)
            ui.chart(charts.line(d[d["name"] == name], name, color="service_name"), key="res-other")
