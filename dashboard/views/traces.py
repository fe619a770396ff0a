"""Traces: find a request by request id or trace id; its span waterfall and redacted audit record."""
from __future__ import annotations

import re

import streamlit as st

from dashboard import charts, frames, ui
from dashboard.markdown import md_code, md_text

ctx = ui.page("Traces", "Look up one request end to end")

DASH = "\u2013"
TRACE_ID = re.compile(r"^[0-9a-fA-F]{32}$")

if "trace_q" not in st.session_state:
    st.session_state["trace_q"] = st.query_params.get("id", "")
needle = st.text_input("Request id or trace id", key="trace_q", placeholder="req-... or 32 hex characters").strip()
if needle:
    st.query_params["id"] = needle
elif "id" in st.query_params:
    del st.query_params["id"]

if not needle:
    status = st.segmented_control("Status", ["error", "ok"], key="trace_status",
                                  format_func=lambda s: {"error": "Failed", "ok": "Succeeded"}[s],
                                  help="Filter the list; the sidebar's route, model and version filters apply too.")
    recent = ctx.filtered("spans", llm_only="true", limit=200, **({"status": status} if status else {}))
    if ui.show(recent, what="recent requests"):
        st.caption("Newest model calls in the window: click a trace id to open it, or paste a request id above.")
        ui.trace_table(recent.frame, ["trace_id", "start_time", "service_name", "route", "request_model",
                                      "response_model", "status_code", "http_status", "error_type", "duration_ms",
                                      "request_id"])
    st.stop()

# The shim's request ids are 32 hex characters too: a 32-hex needle is tried as a trace id, then as a
# request id.
is_trace = bool(TRACE_ID.match(needle))
spans = ctx.query("trace", trace_id=needle) if is_trace else ctx.query("request", request_id=needle)
if is_trace and spans.state == "empty":
    spans = ctx.query("request", request_id=needle)
    is_trace = spans.state != "ok"
if spans.state == "empty":
    st.warning(f"No spans found for trace or request id {md_code(needle)}. Check the id; spans older "
               "than the retention period are deleted.")
    st.stop()
if not ui.show(spans, what="the trace"):
    st.stop()

layout = frames.waterfall_layout(spans.frame)
trace_id = str(layout["trace_id"].iloc[0])
request_ids = sorted({r for r in layout["request_id"].dropna()})
root = layout.iloc[0]
c1, c2, c3, c4 = st.columns(4)
c1.metric("Spans", len(layout))
c2.metric("Duration", ui.fmt_number(float((layout["offset_ms"] + layout["duration_ms"]).max()), "ms"))
c3.metric("Errors", int((layout["status_code"] == "error").sum()))
c4.metric("Service", str(root["service_name"]))
st.markdown(f"Trace {md_code(trace_id)}"
            + (f" \u00b7 request {', '.join(md_code(r) for r in request_ids)}" if request_ids else ""))

ui.chart(charts.waterfall(layout), key="waterfall")
ui.table(frames.span_details(layout), ["span", "role", "status", "http_status", "error_type", "status_message",
                                       "duration_ms", "offset_ms", "request_model", "response_model", "input_tokens",
                                       "output_tokens", "cost_usd", "span_id"],
         column_config={"duration_ms": st.column_config.NumberColumn(format="%.1f ms"),
                        "offset_ms": st.column_config.NumberColumn(format="%.1f ms")})

st.subheader("Span attributes")
for rec in frames.span_details(layout).to_dict("records"):
    with st.expander(f"{md_text(rec['span'], streamlit=True)} · {rec['role']} · {rec['status']}"
                     + (f" · {md_text(rec['error_type'], streamlit=True)}" if rec.get("error_type") else ""),
                     expanded=rec["status"] == "error"):
        if rec.get("status_message"):
            st.text(f"Status message: {rec['status_message']}")
        ui.table(frames.attribute_rows(rec), ["attribute", "value"])

st.subheader("Message content (redacted at ingest)")
content = ctx.query("span_content", trace_id=trace_id)
if ui.show(content, empty_hint="no message content was stored for this trace (content mode may be `drop`)",
           what="message content"):
    for rec in content.frame.to_dict("records"):
        with st.container(border=True):
            st.caption(f"span {rec['span_id']}" + (" \u00b7 truncated" if rec.get("truncated") else ""))
            st.text("Input:\n" + (rec.get("input_text") or DASH))
            st.text("Output:\n" + (rec.get("output_text") or DASH))

st.subheader("Audit record")
audits = [ctx.query("audit_events", request_id=r) for r in request_ids] or []
found = [a for a in audits if a.ok]
if found:
    for a in found:
        for rec in a.frame.to_dict("records"):
            with st.container(border=True):
                # Telemetry values go in code spans that no backtick inside can close.
                model = f"{rec.get('model')} {rec.get('model_version') or ''}"
                st.markdown(f"{md_code(rec.get('request_id'))} \u00b7 {rec.get('time')} \u00b7 user "
                            f"{md_code(rec.get('user_id'))} \u00b7 {md_code(model)} \u00b7 {md_code(rec.get('route'))}")
                st.caption(f"Decision path: {md_code(rec.get('decision_path') or DASH)} \u00b7 "
                           f"latency {ui.fmt_number(rec.get('latency_ms'), 'ms')} \u00b7 source "
                           f"{md_code(rec.get('source'))}")
                st.text("Input:\n" + (rec.get("input_text") or DASH))
                st.text("Output:\n" + (rec.get("output_text") or DASH))
elif any(a.state == "down" for a in audits):
    ui.show(next(a for a in audits if a.state == "down"))
else:
    st.info("No audit record for this request: services send one per request as an `aiwatch.audit` log event "
            "or a JSONL line the server tails.")
