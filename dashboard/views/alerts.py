"""Alerts: firing / pending / resolved, history, silences (create and expire), notification deliveries."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from analysis.metrics_catalog import page_of
from core.clock import utcnow
from core.durations import format_duration
from dashboard import client, evidence, frames, ui
from dashboard.filters import view_url

ctx = ui.page("Alerts", "What is firing, what was, who was told, and what is silenced")

LABEL_TO_FILTER = {"service_name": "service", "service": "service", "model": "model", "model_version": "version",
                   "version": "version", "route": "route"}


def with_links(frame: pd.DataFrame) -> pd.DataFrame:
    """Add a `view` column linking each alert to the dashboard page and filters it is about."""
    links = []
    for rec in frame.to_dict("records"):
        labels = frames.parse_json(rec.get("labels"))
        filters = {LABEL_TO_FILTER[k]: v for k, v in labels.items() if k in LABEL_TO_FILTER and v}
        # the rule's metric is in its annotations (alerts/conditions.py render_annotations)
        metric = frames.parse_json(rec.get("annotations")).get("metric") or labels.get("metric") or ""
        page = page_of(str(metric))
        links.append(view_url("", page, {"start": "-6h", **filters}))
    return frame.assign(view=links)


def _duration(seconds: float) -> str:
    return format_duration(timedelta(seconds=seconds)) if seconds else "-"


alerts = ctx.query("alerts")
if ui.show(alerts, empty_hint="no alert is pending, firing or recently resolved (`aiwatch serve` evaluates the "
                              "rules under Rules below every minute)",
           missing_hint=ui.ALERTS_MISSING, what="alerts"):
    a = evidence.with_units(ctx, with_links(alerts.frame))
    state = a["state"] if "state" in a.columns else pd.Series(["firing"] * len(a))
    c1, c2, c3 = st.columns(3)
    c1.metric("Firing", int((state == "firing").sum()))
    c2.metric("Pending", int((state == "pending").sum()))
    c3.metric("Resolved", int((state == "resolved").sum()))
    for label in ("firing", "pending", "resolved"):
        part = a[state == label]
        if not part.empty:
            st.markdown(f"**{label.capitalize()}**")
            notes = part["annotations"].map(frames.parse_json) if "annotations" in part else pd.Series(dtype=object)
            ui.table(part.assign(labels=part["labels"].map(frames.label_text),
                                 summary=notes.map(lambda n: n.get("summary", ""))),
                     ["severity", "rule", "summary", "labels", "value", "threshold", "active_at", "fired_at",
                      "resolved_at", "view"],
                     column_config={"view": st.column_config.LinkColumn("view", display_text="open view")})

st.subheader("History")
history = ctx.query("alert_history", start=ctx.filters.start, end=ctx.filters.end, limit=500)
if ui.show(history, empty_hint="no alert changed state in this window", missing_hint=ui.ALERTS_MISSING,
           what="alert history"):
    h = evidence.with_units(ctx, history.frame)
    ui.table(h.assign(labels=h["labels"].map(frames.label_text)) if "labels" in h.columns else h)

st.subheader("Silences")
silences = ctx.query("silences")
if ui.show(silences, empty_hint="no silence is active", missing_hint=ui.ALERTS_MISSING, what="silences"):
    s = silences.frame
    ui.table(s)
    active = s[pd.to_datetime(s["ends_at"]) > utcnow()] if "ends_at" in s else s
    if not active.empty and "id" in active.columns:
        with st.form("expire"):
            sid = st.selectbox("Silence to expire", list(active["id"]))
            if st.form_submit_button("Expire now"):
                try:
                    r = client.client_for(ctx.server_url, ctx.token).delete(f"/v1/silences/{sid}")
                except client.ServerDown as exc:
                    st.error(str(exc))
                else:
                    if r.status_code < 300:
                        client.clear_cache()
                        st.success(f"Silence {sid} expired.")
                    else:
                        st.error(f"The server refused: {r.status_code} {r.text[:300]}")

if silences.state != "missing":
    with st.expander("Create a silence"):
        with st.form("silence"):
            st.caption("Alerts whose labels match every matcher are not notified while the silence lasts.")
            matchers_text = st.text_area("Matchers, one per line (`label=value`, `label!=value`, `label=~regex`)",
                                         value="\n".join(f"{k}={v}" for k, v in (
                                             ("service_name", ctx.filters.service), ("route", ctx.filters.route)) if v))
            hours = st.number_input("Duration (hours)", min_value=0.25, max_value=24 * 30.0, value=2.0, step=0.25)
            created_by = st.text_input("Created by", value="")
            comment = st.text_input("Comment", value="")
            if st.form_submit_button("Create silence"):
                matchers = []
                for line in matchers_text.splitlines():
                    line = line.strip()
                    for op in ("!=", "=~", "!~", "="):
                        if op in line:
                            name, value = line.split(op, 1)
                            matchers.append({"name": name.strip(), "op": op, "value": value.strip()})
                            break
                now = datetime.now(UTC)
                if not matchers or not created_by or not comment:
                    st.error("A silence needs at least one matcher, who created it and a comment.")
                else:
                    body = {"matchers": matchers, "starts_at": now.isoformat(),
                            "ends_at": (now + timedelta(hours=hours)).isoformat(),
                            "created_by": created_by, "comment": comment}
                    try:
                        r = client.client_for(ctx.server_url, ctx.token).post_json("/v1/silences", body)
                    except client.ServerDown as exc:
                        st.error(str(exc))
                    else:
                        if r.status_code < 300:
                            client.clear_cache()
                            st.success(f"Silence created: {r.json().get('id', '') if r.content else ''}")
                        else:
                            st.error(f"The server refused the silence: {r.status_code} {r.text[:300]}")

st.subheader("Notifications")
notes = ctx.query("notifications", start=ctx.filters.start, end=ctx.filters.end, limit=500)
if ui.show(notes, empty_hint="nothing was sent in this window", missing_hint=ui.ALERTS_MISSING,
           what="notification deliveries"):
    n = notes.frame
    if "outcome" in n.columns:
        counts = frames.counts_by(n, "outcome")
        cols = st.columns(max(len(counts), 1))
        for col, row in zip(cols, counts.itertuples(index=False)):
            col.metric(str(row[0]), int(row[1]))
        failed = n[n["outcome"].isin(["failed", "dead", "retry"])]
        if not failed.empty:
            st.markdown("**Failed deliveries**")
            ui.table(failed)
    ui.table(n)

st.subheader("Rules")
rules = ctx.query("alert_rules")
if ui.show(rules, empty_hint="alerting is off on this server (`[alerts] enabled`)", missing_hint=ui.ALERTS_MISSING,
           what="alert rules"):
    st.caption("The rules this server evaluates (its `[alerts] rules` file, else the shipped one): P1 pages, "
               "P2 goes to Slack, P3 to the weekly review. `for`: how long a condition holds before it fires; "
               "`keep firing`: how long it must stay clear before it resolves.")
    r = rules.frame
    ui.table(r.assign(**{"for": r["for_s"].map(_duration), "keep firing": r["keep_firing_for_s"].map(_duration),
                         "view": [view_url("", page, {"start": "-6h"}) for page in r["page"]]}),
             ["severity", "name", "scope", "condition", "for", "keep firing", "page", "view", "runbook"],
             column_config={"view": st.column_config.LinkColumn("view", display_text="open page"),
                            "runbook": st.column_config.LinkColumn("runbook")},
             key="alert-rules", height=min(35 * (len(r) + 1) + 3, 1200))   # every rule, no inner scroll
