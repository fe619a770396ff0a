"""Canary and shadow: the candidate against the baseline version, with the evidence behind each verdict."""
from __future__ import annotations

import streamlit as st

from dashboard import charts, frames, ui
from dashboard.ui import SAMPLE

ctx = ui.page("Canary & shadow", "Candidate versions against the baseline over the same window")

VERDICT_LABELS = {"pass": "Pass", "fail": "Fail", "inconclusive": "Inconclusive"}

canary = ctx.filtered("canary", keys=("start", "end", "service", "version"), limit=500)
if ui.show(canary, empty_hint="the canary analyzer writes a verdict once a version with `aiwatch.arm=canary` "
                              "has traffic next to its baseline; " + ui.RUN_ANALYZERS, what="canary verdicts"):
    c = canary.frame
    latest = c.sort_values("time").groupby(["service_name", "model_version"], dropna=False).tail(1)
    cols = st.columns(min(len(latest), 4) or 1)
    for col, row in zip(cols, latest.to_dict("records")):
        col.metric(f"{row.get('service_name') or ''} {row.get('model_version') or ''}".strip() or "canary",
                   VERDICT_LABELS.get(str(row.get("verdict")), str(row.get("verdict"))),
                   delta={"pass": "promote", "fail": "roll back"}.get(str(row.get("verdict"))),
                   delta_color="normal" if row.get("verdict") == "pass" else "inverse")
    st.subheader("Evidence")
    chosen = st.selectbox("Verdict", list(range(len(c))), format_func=lambda i: (
        f"{c.iloc[i]['time']:%Y-%m-%d %H:%M} \u00b7 {c.iloc[i].get('model_version')} \u00b7 {c.iloc[i].get('verdict')}"))
    body = frames.parse_json(c.iloc[chosen]["body"])
    evidence = body.get("checks") or body.get("evidence") or body
    if isinstance(evidence, dict):
        evidence = [{"metric": k, **(v if isinstance(v, dict) else {"value": v})} for k, v in evidence.items()]
    if isinstance(evidence, list) and evidence:
        import pandas as pd

        ui.table(pd.DataFrame(evidence))
    else:
        st.json(body)
    st.caption(", ".join(f"{k}: {v}" for k, v in body.items() if not isinstance(v, (list, dict))))

shadow = ctx.metrics(["shadow_agreement_rate", "canary_verdict"], by="model_version")
st.subheader("Shadow agreement")
if ui.show(shadow, empty_hint="shadow traffic (`aiwatch.arm=shadow`) is compared with the primary by the analyzers; "
                              + ui.RUN_ANALYZERS, what="shadow agreement"):
    ui.chart(charts.line(frames.series(shadow.frame, "shadow_agreement_rate", "model_version"),
                         "Agreement between primary and shadow outputs", color="model_version", percent=True),
             key="shadow")

st.subheader("Arms side by side (raw spans)")
sample = ctx.filtered("spans", llm_only="true", limit=SAMPLE)
if ui.show(sample, what="canary traffic"):
    s = sample.frame.assign(arm=sample.frame["arm"].fillna("(none)"), model_version=sample.frame["model_version"].fillna("(none)"))
    arms = (s.groupby(["arm", "model_version"], as_index=False)
            .agg(requests=("span_id", "size"), error_rate=("status_code", lambda x: float((x == "error").mean())),
                 p95_ms=("duration_ms", lambda x: float(x.quantile(0.95))), confidence=("confidence", "mean"),
                 cost_per_request_usd=("cost_usd", "mean")))
    st.caption("Descriptive only: the verdicts above carry the statistical tests.")
    ui.table(arms, column_config={"error_rate": st.column_config.NumberColumn(format="percent")})
    ui.chart(charts.bars(arms.assign(group=arms["arm"] + " \u00b7 " + arms["model_version"]), "group", "p95_ms",
                         "p95 latency by arm", y_title="ms"), key="arm-p95")
