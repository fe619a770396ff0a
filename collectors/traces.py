"""OTLP trace requests to rows of the `spans` and `span_content` tables.

Every span is kept, LLM or not: non-LLM spans carry the trace. A span that cannot be stored
(invalid ids) is rejected alone and counted in `partial_success`; wrong-typed attributes and numbers
outside `SPAN_RANGES` are kept in the JSON column (the typed column is NULL) and reported as a warning:
the span itself is stored, so it is not counted as rejected.

Resource attributes are stored once per distinct resource (`resources`, keyed by a hash of them) and
spans point to their resource (`resource_id`). Attribute JSON is capped per span (and per resource)
and per request (`AttributeLimits`): whole attributes past a cap are left out and counted under
`aiwatch.attributes.dropped`, with a warning in `partial_success`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collectors.attributes import (
    CONTENT_EVENTS,
    LLM_MARKERS,
    OPENINFERENCE_KIND,
    OPENINFERENCE_LLM_KINDS,
    OPENINFERENCE_OPERATIONS,
    SPAN_ATTRIBUTE_MAP,
    WrongType,
    any_value,
    content_direction,
    to_str,
)
from collectors.content import ContentPolicy, truncate
from core.clock import utcnow
from core.semconv import ATTEMPT
from store.schema import RESOURCE_COLUMNS, SPAN_COLUMNS, SPAN_CONTENT_COLUMNS, SPAN_RANGES

_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_STATUS = ("unset", "ok", "error")
_TYPED = [name for name, _ in SPAN_COLUMNS]
_SCHEMA = pa.schema(SPAN_COLUMNS)
_CONTENT_SCHEMA = pa.schema(SPAN_CONTENT_COLUMNS)
_RESOURCE_SCHEMA = pa.schema(RESOURCE_COLUMNS)
DROPPED_KEY = "aiwatch.attributes.dropped"


@dataclass(frozen=True)
class AttributeLimits:
    """Caps on stored attribute JSON (UTF-8 bytes): one span's or resource's, and one request's in all."""
    per_item_bytes: int = 64 * 1024
    per_request_bytes: int = 8 * 1024 * 1024
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


class _Budget:
    """Attribute bytes one request may still store, and what the caps left out."""

    def __init__(self, limits: AttributeLimits) -> None:
        self.per_item = limits.per_item_bytes
        self.left = limits.per_request_bytes
        self.cut = self.emptied = 0

    def fit(self, attrs: dict[str, Any], text: str | None = None) -> str:
        """The JSON to store for `attrs`, within the per-item cap and what is left of the request's."""
        text = _dumps(attrs) if text is None else text
        size = _utf8_len(text)
        if size <= self.per_item and size <= self.left:
            self.left -= size
            return text
        if self.left < 1024:  # the request's budget is spent
            self.emptied += 1
            text = _dumps({DROPPED_KEY: len(attrs)})
        else:
            self.cut += 1
            text = _trim(attrs, min(self.per_item, self.left))
        self.left = max(self.left - _utf8_len(text), 0)
        return text

    def warnings(self) -> list[str]:
        out = []
        if self.cut:
            out.append(f"{self.cut} span(s) or resource(s) had attributes over the per-item cap; whole attributes "
                       f"past it were left out (count in {DROPPED_KEY})")
        if self.emptied:
            out.append(f"{self.emptied} span(s) or resource(s) past the request's attribute cap kept no attributes "
                       f"(count in {DROPPED_KEY})")
        return out


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _trim(attrs: dict[str, Any], limit: int) -> str:
    """Whole attributes, in order, while they fit in `limit` bytes with the dropped count."""
    kept: dict[str, Any] = {}
    size, dropped = 64, 0  # room for the braces and the dropped-count entry
    for key, value in attrs.items():
        piece = _utf8_len(_dumps({key: value}))  # its entry costs its own JSON: braces in place of ", "
        if size + piece <= limit:
            kept[key] = value
            size += piece
        else:
            dropped += 1
    kept[DROPPED_KEY] = dropped
    return _dumps(kept)


def _resource_row(extra: dict[str, Any], budget: _Budget, rows: dict[str, str]) -> str | None:
    """The id of this resource's row (added to `rows` once per request); None when it has no attributes."""
    if not extra:
        return None
    # Sorted keys: the same resource attributes in another order are the same resource.
    canonical = _json_sorted(extra)
    resource_id = hashlib.blake2b(canonical.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    if resource_id not in rows:
        rows[resource_id] = budget.fit(extra, canonical)
    return resource_id


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
                   received_at: datetime | None = None, limits: AttributeLimits = AttributeLimits()) -> Converted:
    # The hot path of ingest: plain lists indexed by column, scalar values read inline, and
    # function calls only for what is unusual (lists, maps, wrong types, long strings).
    cols: dict[str, list] = {name: [] for name in _TYPED}
    mapped_cols = [cols[name] for name in _ROW_COLUMNS]
    n_mapped = len(_ROW_COLUMNS)
    content: dict[str, list] = {name: [] for name, _ in SPAN_CONTENT_COLUMNS}
    out = Converted(tables={})
    received = (received_at or utcnow()).replace(tzinfo=None)
    limit = policy.max_attribute_chars
    wrong_types = out_of_range = 0
    budget = _Budget(limits)
    per_item = limits.per_item_bytes
    resources: dict[str, str] = {}
    c_resource = cols["resource_id"]
    fast_map = _FAST_MAP
    (c_trace, c_span, c_parent, c_name, c_kind, c_start, c_end, c_dur, c_status, c_msg, c_service, c_version,
     c_env, c_scope, c_llm, c_attrs, c_received) = (cols[n] for n in _DIRECT)
    for rs in req.resource_spans:
        service, version, env, res_extra = _resource_fields(rs.resource, policy)
        resource_id = _resource_row(res_extra, budget, resources)
        for ss in rs.scope_spans:
            scope = ss.scope.name or None
            for span in ss.spans:
                tid, sid, pid = span.trace_id, span.span_id, span.parent_span_id
                problem = _id_problem(tid, sid, pid)
                if problem:
                    out.rejected += 1
                    out.messages.append(f"span {span.name[:80]!r}: {problem}")
                    continue
                row: list[Any] = [None] * n_mapped
                ranks = [99] * n_mapped
                extra: dict[str, Any] = {}
                inputs: list[tuple[str, Any]] | None = None
                outputs: list[tuple[str, Any]] | None = None
                is_llm = is_attempt = False
                for kv in span.attributes:
                    key = kv.key
                    v = kv.value
                    which = v.WhichOneof("value")
                    value: Any = getattr(v, which) if which in _SCALARS else (any_value(v) if which else None)
                    targets = fast_map.get(key)
                    if targets is not None:
                        if key in LLM_MARKERS:
                            is_llm = True
                        for idx, convert, rank, keep, bounds in targets:
                            if keep:
                                extra[key] = _cap(value, limit)
                            if ranks[idx] <= rank:
                                continue
                            if convert is to_str and which == "string_value":
                                converted = value if len(value) <= limit else truncate(value, limit)
                            else:
                                try:
                                    converted = convert(value)
                                except WrongType as exc:
                                    if not keep:
                                        wrong_types += 1
                                        out.messages.append(
                                            f"span {span.name[:80]!r}: attribute {key} is {exc}; kept in attributes")
                                    extra[key] = _cap(value, limit)
                                    continue
                                if converted.__class__ is str and len(converted) > limit:
                                    converted = truncate(converted, limit)
                                elif bounds is not None and not bounds[0] <= converted <= bounds[1]:
                                    out_of_range += 1
                                    out.messages.append(f"span {span.name[:80]!r}: attribute {key}={converted!r} "
                                                        f"is outside {list(bounds)}; kept in attributes")
                                    extra[key] = _cap(value, limit)
                                    continue
                            row[idx] = converted
                            ranks[idx] = rank
                        continue
                    direction = content_direction(key)
                    if direction == "input":
                        (inputs := inputs if inputs is not None else []).append((key, value))
                    elif direction == "output":
                        (outputs := outputs if outputs is not None else []).append((key, value))
                    elif key == ATTEMPT:
                        # A retry attempt inside a shim call: its parent span is the model call, so
                        # counting the attempt too would double requests, tokens and cost.
                        is_attempt = True
                        extra[key] = value
                    elif key == OPENINFERENCE_KIND:
                        kind = str(value).upper()
                        is_llm = is_llm or kind in OPENINFERENCE_LLM_KINDS
                        if ranks[_OPERATION] > 3 and kind in OPENINFERENCE_OPERATIONS:
                            row[_OPERATION] = OPENINFERENCE_OPERATIONS[kind]
                            ranks[_OPERATION] = 3
                        extra[key] = value
                    elif which == "string_value" and len(value) <= limit:
                        extra[key] = value
                    else:
                        extra[key] = _cap(value, limit)
                error_from_event = None
                if span.events:
                    inputs, outputs, error_from_event = _scan_events(span.events, inputs, outputs)
                status = _STATUS[span.status.code] if 0 <= span.status.code < 3 else "unset"
                if status == "error" and row[_ERROR_TYPE] is None:
                    row[_ERROR_TYPE] = error_from_event or "_OTHER"
                start_ns, end_ns = span.start_time_unix_nano, span.end_time_unix_nano
                name = span.name
                c_trace.append(tid.hex())
                c_span.append(sid.hex())
                c_parent.append(pid.hex() if pid else None)
                c_name.append(name if len(name) <= limit else truncate(name, limit))
                c_kind.append(_KINDS[span.kind] if 0 <= span.kind < 6 else "unspecified")
                c_start.append(start_ns // 1000)
                c_end.append(end_ns // 1000)
                duration = max(end_ns - start_ns, 0) / 1e6
                if duration > _MAX_DURATION_MS:
                    out_of_range += 1
                    out.messages.append(f"span {name[:80]!r}: duration {duration:.0f} ms is outside "
                                        f"{list(SPAN_RANGES['duration_ms'])}; start and end times kept")
                    c_dur.append(None)
                else:
                    c_dur.append(duration)
                c_status.append(status)
                c_msg.append(truncate(span.status.message, limit) or None)
                c_service.append(service)
                c_version.append(version)
                c_env.append(env)
                c_scope.append(scope)
                c_llm.append(is_llm and not is_attempt)
                c_resource.append(resource_id)
                if extra:
                    text = _dumps(extra)
                    if len(text) * 4 <= per_item and len(text) * 4 <= budget.left:  # far below both caps
                        budget.left -= len(text) if text.isascii() else _utf8_len(text)
                    else:
                        text = budget.fit(extra, text)
                    c_attrs.append(text)
                else:
                    c_attrs.append(None)
                c_received.append(received)
                for col, value in zip(mapped_cols, row):
                    col.append(value)
                if inputs or outputs:
                    _add_content(content, policy, tid, sid, start_ns, inputs, outputs)
                out.accepted += 1
    out.tables["spans"] = pa.table(cols, schema=_SCHEMA)
    if resources:
        out.tables["resources"] = pa.table({"resource_id": list(resources), "attributes": list(resources.values()),
                                            "first_seen": [received] * len(resources)}, schema=_RESOURCE_SCHEMA)
    out.messages[:0] = budget.warnings()
    if content["trace_id"]:
        out.tables["span_content"] = pa.table(content, schema=_CONTENT_SCHEMA)
    if out_of_range:
        out.messages.insert(0, f"{out_of_range} value(s) out of range were not stored in their columns")
    if wrong_types:
        out.messages.insert(0, f"{wrong_types} attribute(s) of the wrong type were kept in the attributes column")
    return out


def _id_problem(tid: bytes, sid: bytes, pid: bytes) -> str | None:
    if len(tid) != 16 or tid == _ZERO16:
        return f"trace_id must be 16 non-zero bytes, got {len(tid)}"
    if len(sid) != 8 or sid == _ZERO8:
        return f"span_id must be 8 non-zero bytes, got {len(sid)}"
    if pid and len(pid) != 8:
        return f"parent_span_id must be 8 bytes, got {len(pid)}"
    return None


def _scan_events(events, inputs, outputs):
    """Content events (older GenAI conventions) and the exception type of a failed span."""
    inputs, outputs = inputs or [], outputs or []
    error_type = None
    for ev in events:
        if ev.name in CONTENT_EVENTS:
            attr_key, direction = CONTENT_EVENTS[ev.name]
            for kv in ev.attributes:
                if kv.key == attr_key:
                    (inputs if direction == "input" else outputs).append((ev.name, any_value(kv.value)))
        elif ev.name == "exception" and error_type is None:
            for kv in ev.attributes:
                if kv.key == "exception.type":
                    error_type = kv.value.string_value
    return inputs, outputs, error_type


def _add_content(content: dict[str, list], policy: ContentPolicy, tid: bytes, sid: bytes, start_ns: int,
                 inputs: list | None, outputs: list | None) -> None:
    input_text, t_in = policy.apply(_content_text(inputs or []))
    output_text, t_out = policy.apply(_content_text(outputs or []))
    if input_text is None and output_text is None:
        return
    content["trace_id"].append(tid.hex())
    content["span_id"].append(sid.hex())
    content["start_time"].append(start_ns // 1000)
    content["input_text"].append(input_text)
    content["output_text"].append(output_text)
    content["truncated"].append(t_in or t_out)


def _dumps(value: dict[str, Any]) -> str:
    try:
        return _json_encode(value)
    except (TypeError, ValueError):
        return json.dumps(value, default=str)


_json_encode = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
_json_sorted_encode = json.JSONEncoder(ensure_ascii=False, check_circular=False, sort_keys=True).encode


def _json_sorted(value: dict[str, Any]) -> str:
    try:
        return _json_sorted_encode(value)
    except (TypeError, ValueError):
        return json.dumps(value, default=str, sort_keys=True)
_SCALARS = frozenset({"string_value", "int_value", "double_value", "bool_value"})
_ZERO16, _ZERO8 = bytes(16), bytes(8)
_DIRECT = ("trace_id", "span_id", "parent_span_id", "name", "kind", "start_time", "end_time", "duration_ms",
           "status_code", "status_message", "service_name", "service_version", "deployment_environment",
           "scope_name", "is_llm", "attributes", "received_at")


# Columns filled from the attribute map (the rest are set directly above).
_ROW_COLUMNS = sorted({t.column for targets in SPAN_ATTRIBUTE_MAP.values() for t in targets})
_INDEX = {name: i for i, name in enumerate(_ROW_COLUMNS)}
_OPERATION, _ERROR_TYPE = _INDEX["operation"], _INDEX["error_type"]
# attribute -> ((column index, converter, rank, keep, (low, high) or None), ...)
_FAST_MAP = {key: tuple((_INDEX[t.column], t.convert, t.rank, t.keep, SPAN_RANGES.get(t.column)) for t in targets)
             for key, targets in SPAN_ATTRIBUTE_MAP.items()}
_MAX_DURATION_MS = SPAN_RANGES["duration_ms"][1]
