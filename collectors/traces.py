"""OTLP trace requests to rows of the `spans` and `span_content` tables.

Every span is kept, LLM or not: non-LLM spans carry the trace. A span that cannot be stored
(invalid ids) is rejected alone and counted in `partial_success`; wrong-typed attributes are kept
in the JSON column and reported as a warning.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collectors.attributes import (CONTENT_EVENTS, LLM_MARKERS, OPENINFERENCE_KIND, OPENINFERENCE_LLM_KINDS,
                                   OPENINFERENCE_OPERATIONS, SPAN_ATTRIBUTE_MAP, WrongType, any_value,
                                   content_direction)
from collectors.content import ContentPolicy, truncate
from store.schema import SPAN_COLUMNS, SPAN_CONTENT_COLUMNS

_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_STATUS = ("unset", "ok", "error")
_TYPED = [name for name, _ in SPAN_COLUMNS]
_SCHEMA = pa.schema(SPAN_COLUMNS)
_CONTENT_SCHEMA = pa.schema(SPAN_CONTENT_COLUMNS)
_MAX_REASONS = 5


@dataclass
class Converted:
    tables: dict[str, pa.Table]
    accepted: int = 0
    rejected: int = 0
    messages: list[str] = field(default_factory=list)

    def message(self) -> str:
        return "; ".join(self.messages[:_MAX_REASONS]) + (
            f" (+{len(self.messages) - _MAX_REASONS} more)" if len(self.messages) > _MAX_REASONS else "")


def _resource_fields(resource: Any, policy: ContentPolicy) -> tuple[str | None, str | None, str | None, dict]:
    attrs = {kv.key: any_value(kv.value) for kv in resource.attributes}
    service = attrs.pop("service.name", None)
    version = attrs.pop("service.version", None)
    env = attrs.pop("deployment.environment.name", None) or attrs.pop("deployment.environment", None)
    attrs.pop("deployment.environment", None)
    extra = {k: _cap(v, policy.max_attribute_chars) for k, v in attrs.items() if not k.startswith("telemetry.sdk.")}
    return (None if service is None else str(service), None if version is None else str(version),
            None if env is None else str(env), extra)


def _cap(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return truncate(value, limit)
    if isinstance(value, list):
        return [_cap(v, limit) for v in value]
    if isinstance(value, dict):
        return {k: _cap(v, limit) for k, v in value.items()}
    return value


def _content_text(parts: list[tuple[str, Any]]) -> str | None:
    if not parts:
        return None
    if len(parts) == 1:
        value = parts[0][1]
        return value if isinstance(value, str) else json.dumps(value)
    parts.sort(key=lambda kv: kv[0])
    return "\n".join(f"{k}: {v if isinstance(v, str) else json.dumps(v)}" for k, v in parts)


def convert_traces(req: ExportTraceServiceRequest, policy: ContentPolicy,
                   received_at: datetime | None = None) -> Converted:
    cols: dict[str, list] = {name: [] for name in _TYPED}
    content: dict[str, list] = {name: [] for name, _ in SPAN_CONTENT_COLUMNS}
    out = Converted(tables={})
    received = (received_at or datetime.now(timezone.utc)).replace(tzinfo=None)
    limit = policy.max_attribute_chars
    wrong_types = 0
    for rs in req.resource_spans:
        service, version, env, res_extra = _resource_fields(rs.resource, policy)
        for ss in rs.scope_spans:
            scope = ss.scope.name or None
            for span in ss.spans:
                tid, sid, pid = span.trace_id, span.span_id, span.parent_span_id
                if len(tid) != 16 or not any(tid):
                    out.rejected += 1
                    out.messages.append(f"span {span.name[:80]!r}: trace_id must be 16 non-zero bytes, got {len(tid)}")
                    continue
                if len(sid) != 8 or not any(sid):
                    out.rejected += 1
                    out.messages.append(f"span {span.name[:80]!r}: span_id must be 8 non-zero bytes, got {len(sid)}")
                    continue
                if pid and len(pid) != 8:
                    out.rejected += 1
                    out.messages.append(f"span {span.name[:80]!r}: parent_span_id must be 8 bytes, got {len(pid)}")
                    continue
                row: dict[str, Any] = {}
                ranks: dict[str, int] = {}
                extra: dict[str, Any] = {}
                inputs: list[tuple[str, Any]] = []
                outputs: list[tuple[str, Any]] = []
                is_llm = False
                for kv in span.attributes:
                    key = kv.key
                    value = any_value(kv.value)
                    targets = SPAN_ATTRIBUTE_MAP.get(key)
                    if targets is not None:
                        if key in LLM_MARKERS:
                            is_llm = True
                        for t in targets:
                            if t.keep:
                                extra[key] = _cap(value, limit)
                            if t.column in ranks and ranks[t.column] <= t.rank:
                                continue
                            try:
                                converted = t.convert(value)
                            except WrongType as exc:
                                if not t.keep:
                                    wrong_types += 1
                                    out.messages.append(
                                        f"span {span.name[:80]!r}: attribute {key} is {exc}; kept in attributes")
                                extra[key] = _cap(value, limit)
                                continue
                            if isinstance(converted, str):
                                converted = truncate(converted, limit)
                            row[t.column] = converted
                            ranks[t.column] = t.rank
                        continue
                    direction = content_direction(key)
                    if direction == "input":
                        inputs.append((key, value))
                    elif direction == "output":
                        outputs.append((key, value))
                    elif key == OPENINFERENCE_KIND:
                        kind = str(value).upper()
                        is_llm = is_llm or kind in OPENINFERENCE_LLM_KINDS
                        if "operation" not in row and kind in OPENINFERENCE_OPERATIONS:
                            row["operation"] = OPENINFERENCE_OPERATIONS[kind]
                            ranks["operation"] = 3
                        extra[key] = value
                    else:
                        extra[key] = _cap(value, limit)
                error_from_event = None
                for ev in span.events:
                    if ev.name in CONTENT_EVENTS:
                        attr_key, direction = CONTENT_EVENTS[ev.name]
                        for kv in ev.attributes:
                            if kv.key == attr_key:
                                (inputs if direction == "input" else outputs).append((ev.name, any_value(kv.value)))
                    elif ev.name == "exception" and error_from_event is None:
                        for kv in ev.attributes:
                            if kv.key == "exception.type":
                                error_from_event = kv.value.string_value
                status = _STATUS[span.status.code] if 0 <= span.status.code < 3 else "unset"
                if status == "error" and "error_type" not in row:
                    row["error_type"] = error_from_event or "_OTHER"
                start_us, end_us = span.start_time_unix_nano // 1000, span.end_time_unix_nano // 1000
                cols["trace_id"].append(tid.hex())
                cols["span_id"].append(sid.hex())
                cols["parent_span_id"].append(pid.hex() if pid else None)
                cols["name"].append(truncate(span.name, limit))
                cols["kind"].append(_KINDS[span.kind] if 0 <= span.kind < 6 else "unspecified")
                cols["start_time"].append(start_us)
                cols["end_time"].append(end_us)
                cols["duration_ms"].append(max(span.end_time_unix_nano - span.start_time_unix_nano, 0) / 1e6)
                cols["status_code"].append(status)
                cols["status_message"].append(truncate(span.status.message, limit) or None)
                cols["service_name"].append(service)
                cols["service_version"].append(version)
                cols["deployment_environment"].append(env)
                cols["scope_name"].append(scope)
                cols["is_llm"].append(is_llm)
                if res_extra:
                    extra["resource"] = res_extra
                cols["attributes"].append(json.dumps(extra, default=str) if extra else None)
                cols["received_at"].append(received)
                for name in _ROW_COLUMNS:
                    cols[name].append(row.get(name))
                if inputs or outputs:
                    input_text, t_in = policy.apply(_content_text(inputs))
                    output_text, t_out = policy.apply(_content_text(outputs))
                    if input_text is not None or output_text is not None:
                        content["trace_id"].append(tid.hex())
                        content["span_id"].append(sid.hex())
                        content["start_time"].append(start_us)
                        content["input_text"].append(input_text)
                        content["output_text"].append(output_text)
                        content["truncated"].append(t_in or t_out)
                out.accepted += 1
    out.tables["spans"] = pa.table(cols, schema=_SCHEMA)
    if content["trace_id"]:
        out.tables["span_content"] = pa.table(content, schema=_CONTENT_SCHEMA)
    if wrong_types:
        out.messages.insert(0, f"{wrong_types} attribute(s) of the wrong type were kept in the attributes column")
    return out


# Columns filled from the attribute map (the rest are set directly above).
_ROW_COLUMNS = sorted({t.column for targets in SPAN_ATTRIBUTE_MAP.values() for t in targets})
