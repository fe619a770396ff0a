"""Incident: the alerts of one service that overlapped, as one object: timeline, what it touched, who
was told, and failing / slow traces one click away. Alert messages link here (?service=&at=)."""
from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from core.clock import utcnow
from dashboard import charts, evidence, ui
from dashboard.filters import Filters, incident_link, view_url
from store.incidents import firing_intervals

ctx = ui.page("Incident", "Alerts of one service that overlapped in time, grouped")
q = st.query_params
incident_id, service, at = q.get("id"), q.get("service"), q.get("at")

if not incident_id and not at:
    listing = ctx.query("incidents", start=ctx.filters.start, end=ctx.filters.end, service=ctx.filters.service,
                        severity="P3" if st.toggle("Include P3 review alerts", key="inc_p3") else "P2", limit=200)
    if ui.show(listing, empty_hint="no P1 or P2 alert fired in this window (`aiwatch serve` evaluates the alert "
                                   "rules every 15 s)", missing_hint=ui.ALERTS_MISSING,
               what="incidents"):
        inc = listing.frame.assign(open=lambda f: f["incident_id"].map(incident_link))
        st.caption("One row per incident: alerts of a service whose firing overlapped. Open one for its timeline, "
                   "the routes and models it touched, notifications and exemplar traces.")
        ui.table(inc, ["open", "service", "severity", "state", "started_at", "duration_min", "alerts", "rules",
                       "routes", "models"],
                 column_config={"open": st.column_config.LinkColumn("incident", display_text="open"),
                                "duration_min": st.column_config.NumberColumn("minutes", format="%.1f")})
    st.stop()

# One incident: by id, or the one containing `at` for `service` (what an alert message links to).
params = {"incident_id": incident_id} if incident_id else {"service": service, "at": at}
if incident_id:
    service_part, _, started = incident_id.rpartition("@")
    params.update(service=service_part, start=started, end="now")
else:
    params.update(start=f"{at}", end="now")
found = ctx.query("incidents", severity="P3", limit=10, **params)
if found.state == "empty":
    st.warning("No incident found for this link: its alerts may be older than the alert history kept, "
               "or the link is incomplete.")
    st.page_link("views/alerts.py", label="Open alerts", icon=":material/notifications:")
    st.stop()
if not ui.show(found, missing_hint=ui.ALERTS_MISSING, what="the incident"):
    st.stop()

inc = found.frame.iloc[0]
start = pd.Timestamp(inc["started_at"])
end = pd.Timestamp(inc["ended_at"]) if pd.notna(inc["ended_at"]) else pd.Timestamp(utcnow())
c1, c2, c3, c4 = st.columns(4)
c1.metric("Service", str(inc["service"]))
c2.metric("Severity", str(inc["severity"]))
c3.metric("State", str(inc["state"]))
c4.metric("Duration", f"{inc['duration_min']:,.1f} min")
st.markdown(f"From **{start:%Y-%m-%d %H:%M:%S}** to **{'now' if inc['state'] == 'open' else f'{end:%H:%M:%S}'}** "
            f"UTC \u00b7 {int(inc['alerts'])} alert(s): `{inc['rules']}`")

# Calls are read over the incident plus some minutes before it (the onset).
lead = timedelta(minutes=15)
window = Filters(start=(start - lead).isoformat(), end=(end + timedelta(minutes=1)).isoformat(),
                 service=str(inc["service"]) if inc["service"] != "(no service)" else None)
# the pages that chart the incident's rules' evidence first, then errors, latency and traces
pages = dict.fromkeys([*evidence.rule_pages(ctx, str(inc["rules"]).split(", ")), "errors", "latency", "traces"])
st.markdown(" \u00b7 ".join(f"[{page.capitalize()} in this window]({view_url('', page, window)})" for page in pages))

st.subheader("Timeline")
history = ctx.query("alert_history", start=(start - timedelta(days=1)).isoformat(),
                    end=(end + timedelta(minutes=1)).isoformat(), service=window.service, limit=10_000)
if ui.show(history, missing_hint=ui.ALERTS_MISSING, what="alert history"):
    fps = set(str(inc["fingerprints"]).split(","))
    intervals = pd.DataFrame([i for i in firing_intervals(history.frame.to_dict("records"), end.to_pydatetime())
                              if i["fingerprint"] in fps and (i["resolved_at"] or end) >= start])
    if not intervals.empty:
        intervals["alert"] = [f"{i.rule} {' '.join(f'{k}={v}' for k, v in i.labels.items() if k in ('route', 'model', 'model_version'))}"
                              for i in intervals.itertuples()]
        ui.chart(charts.alert_timeline(intervals, end), key="inc-timeline")
    events = history.frame[history.frame["fingerprint"].isin(fps)
                           & (pd.to_datetime(history.frame["time"]) >= start - lead)].sort_values("time")
    ui.table(evidence.with_units(ctx, events), ["time", "rule", "severity", "from_state", "to_state", "value", "threshold"])

st.subheader("What it touched")
st.caption("Calls of the service from 15 minutes before the first alert to the end, grouped; sorted by failures.")
c1, c2 = st.columns(2)
for col, by, what in ((c1, "route", "routes"), (c2, "model_version", "models and versions")):
    res = ctx.query("calls", by=by, **window.params())
    with col:
        if ui.show(res, what=what):
            ui.table(res.frame.sort_values("errors", ascending=False),
                     [c for c in ("route", "model", "model_version") if c in res.frame.columns]
                     + ["requests", "errors", "error_rate", "p95_ms"],
                     column_config={"error_rate": st.column_config.NumberColumn(format="percent"),
                                    "p95_ms": st.column_config.NumberColumn(format="%.0f ms")})

st.subheader("Notifications sent")
sent = ctx.query("incident_notifications", fingerprints=str(inc["fingerprints"]),
                 start=(start - timedelta(minutes=5)).isoformat(), end=(end + timedelta(hours=1)).isoformat())
if ui.show(sent, empty_hint="no notification was sent (silenced, inhibited, or still in group_wait)",
           missing_hint=ui.ALERTS_MISSING, what="notifications"):
    ui.table(sent.frame)

st.subheader("Exemplar traces")
ex = ctx.query("exemplars", limit=10, **window.params())
if ui.show(ex, what="exemplar calls"):
    c1, c2 = st.columns(2)
    for col, kind, title in ((c1, "failing", "Newest failing calls"), (c2, "slow", "Slowest successful calls")):
        with col:
            st.markdown(f"**{title}**")
            ui.trace_table(ex.frame[ex.frame["kind"] == kind], ["trace_id", "start_time", "route", "model",
                                                                "duration_ms", "http_status", "error_type"])
