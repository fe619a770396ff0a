"""OTLP log requests to rows: audit events, human feedback, and every other log record."""
from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from collectors.attributes import any_value
from collectors.content import ContentPolicy, truncate
from collectors.events import BadEvent, audit_row, feedback_row
from collectors.traces import Converted
from core import semconv as sc
from store.schema import arrow_schema


def rows_to_table(rows: list[dict[str, Any]], table: str) -> pa.Table:
    schema = arrow_schema(table)
    return pa.table({f.name: [r.get(f.name) for r in rows] for f in schema}, schema=schema)


def convert_logs(req: ExportLogsServiceRequest, policy: ContentPolicy) -> Converted:
    audits: list[dict] = []
    feedback: list[dict] = []
    logs: list[dict] = []
    out = Converted(tables={})
    limit = policy.max_attribute_chars
    for rl in req.resource_logs:
        res = {kv.key: any_value(kv.value) for kv in rl.resource.attributes}
        service = res.get("service.name")
        for sl in rl.scope_logs:
            for rec in sl.log_records:
                attrs = {kv.key: any_value(kv.value) for kv in rec.attributes}
                event = getattr(rec, "event_name", "") or attrs.get(sc.EVENT_NAME)
                time_us = (rec.time_unix_nano or rec.observed_time_unix_nano) // 1000
                trace_id = rec.trace_id.hex() if len(rec.trace_id) == 16 else None
                span_id = rec.span_id.hex() if len(rec.span_id) == 8 else None
                body = any_value(rec.body) if rec.HasField("body") else None
                if isinstance(body, dict) and event in (sc.EVENT_AUDIT, sc.EVENT_FEEDBACK):
                    attrs = {**body, **attrs}  # some SDKs put the event's fields in the body
                try:
                    if event == sc.EVENT_AUDIT:
                        audits.append(audit_row(attrs, time_us, service, trace_id, span_id, "otlp", policy))
                    elif event == sc.EVENT_FEEDBACK:
                        feedback.append(feedback_row(attrs, time_us, service, trace_id, "otlp", policy))
                    else:
                        text = body if isinstance(body, str) or body is None else json.dumps(body, default=str)
                        logs.append({
                            "time": time_us, "service_name": service,
                            "severity": rec.severity_text or (str(rec.severity_number) if rec.severity_number else None),
                            "body": None if text is None else policy.apply(text)[0],
                            "trace_id": trace_id, "span_id": span_id, "event_name": event or None,
                            "attributes": json.dumps({k: truncate(v, limit) if isinstance(v, str) else v
                                                      for k, v in attrs.items()}, default=str) if attrs else None,
                        })
                except BadEvent as exc:
                    out.rejected += 1
                    out.messages.append(f"log record {event}: {exc}")
                    continue
                out.accepted += 1
    for name, rows in (("audit_events", audits), ("feedback", feedback), ("logs", logs)):
        if rows:
            out.tables[name] = rows_to_table(rows, name)
    return out
