"""Redaction of every string a request would store, before it is mapped to rows.

One call per request (`SCRUBBERS[signal](message, policy)`, from the pipeline; `scrub_mapping` for
JSONL audit lines): it gathers the string values of span names, status messages, attributes
(nested lists and maps too), resource attributes and log bodies, cuts each to the stored length,
redacts them together (one prefilter pass per batch on the server) and writes back only what
changed. Keys in the policy's drop list are removed, keys in its keep list are stored as sent.
Message content (GenAI input/output, audit input/output) is left to `ContentPolicy.apply`, which
follows `content_mode`.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collectors.attributes import CONTENT_EVENTS, content_direction
from collectors.content import ContentPolicy
from core import semconv as sc

# Identity of the sender: stored as sent, so a service keeps its name in every table.
IDENTITY_KEYS = frozenset({"service.name", "service.version", "deployment.environment",
                           "deployment.environment.name"})
_AUDIT_CONTENT = frozenset({sc.AUDIT_INPUT, sc.AUDIT_OUTPUT})


class _Batch:
    """String slots to redact together, by length limit: (text, object, field) to write back to.

    This walk runs for every attribute of every span, so it is kept lean: no closure per slot,
    and the content-key test is remembered per key (keys repeat across spans)."""

    def __init__(self, policy: ContentPolicy) -> None:
        self.policy = policy
        self.passed = policy.keep_keys | IDENTITY_KEYS
        self.slots: dict[int, list[tuple[str, Any, str]]] = {}
        self._skip_cache: dict[str, bool] = {}

    def add(self, text: str, limit: int, obj: Any, field: str) -> None:
        if text:
            self.slots.setdefault(limit, []).append((text, obj, field))

    def attributes(self, kvs: Any, limit: int, skip: Callable[[str], Any] | None = None) -> None:
        """A repeated KeyValue field: drop listed keys, queue the string values of the others."""
        drop = self.policy.drop_keys
        if drop:
            for i in range(len(kvs) - 1, -1, -1):
                if kvs[i].key in drop:
                    del kvs[i]
        passed, cache = self.passed, self._skip_cache
        slots = self.slots.setdefault(limit, [])
        for kv in kvs:
            key = kv.key
            if key in passed:
                continue
            if skip is not None:
                skipped = cache.get(key)
                if skipped is None:
                    skipped = cache[key] = bool(skip(key))
                if skipped:
                    continue
            v = kv.value
            text = v.string_value           # "" for every other kind of value
            if text:
                slots.append((text, v, "string_value"))
            elif v.HasField("array_value") or v.HasField("kvlist_value"):
                self.value(v, limit)

    def value(self, v: Any, limit: int) -> None:
        which = v.WhichOneof("value")
        if which == "string_value":
            self.add(v.string_value, limit, v, "string_value")
        elif which == "array_value":
            for item in v.array_value.values:
                self.value(item, limit)
        elif which == "kvlist_value":
            self.attributes(v.kvlist_value.values, limit)

    def run(self) -> None:
        redact_many = self.policy.redactor.redact_many  # type: ignore[union-attr]
        for limit, slots in self.slots.items():
            if not slots:
                continue
            # Names, models, routes and statuses repeat across the spans of a request: redact each once.
            unique = list(dict.fromkeys(text for text, _, _ in slots))
            changed = {text: new for text, new in zip(unique, redact_many(unique, limit)) if new is not text}
            if changed:
                for text, obj, field in slots:
                    new = changed.get(text)
                    if new is not None:
                        setattr(obj, field, new)


def scrub_traces(req: ExportTraceServiceRequest, policy: ContentPolicy) -> None:
    if not policy.scrubs:
        return
    batch = _Batch(policy)
    limit = policy.max_attribute_chars
    for rs in req.resource_spans:
        batch.attributes(rs.resource.attributes, limit)
        for ss in rs.scope_spans:
            for span in ss.spans:
                batch.add(span.name, limit, span, "name")
                if span.HasField("status"):
                    batch.add(span.status.message, limit, span.status, "message")
                batch.attributes(span.attributes, limit, skip=content_direction)
                for event in span.events:   # exception.type becomes error_type; content events are content
                    if event.name not in CONTENT_EVENTS:
                        batch.attributes(event.attributes, limit)
    batch.run()


def scrub_logs(req: ExportLogsServiceRequest, policy: ContentPolicy) -> None:
    if not policy.scrubs:
        return
    batch = _Batch(policy)
    limit = policy.max_attribute_chars
    for rl in req.resource_logs:
        batch.attributes(rl.resource.attributes, limit)
        for sl in rl.scope_logs:
            for rec in sl.log_records:
                batch.attributes(rec.attributes, limit, skip=_AUDIT_CONTENT.__contains__)
                if rec.HasField("body") and policy.mode == "keep":
                    # With content_mode=redact the body is redacted as content (ContentPolicy.apply).
                    batch.value(rec.body, policy.max_content_chars)
    batch.run()


def scrub_metrics(req: ExportMetricsServiceRequest, policy: ContentPolicy) -> None:
    if not policy.scrubs:
        return
    batch = _Batch(policy)
    limit = policy.max_attribute_chars
    for rm in req.resource_metrics:
        batch.attributes(rm.resource.attributes, limit)
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                which = metric.WhichOneof("data")
                if which is None:
                    continue
                for point in getattr(metric, which).data_points:
                    batch.attributes(point.attributes, limit)
    batch.run()


def scrub_mapping(data: dict[str, Any], policy: ContentPolicy) -> dict[str, Any]:
    """A JSONL event's fields with the same treatment (audit input/output left to the policy)."""
    if not policy.scrubs:
        return data
    slots: list[tuple[str, Callable[[str], None]]] = []

    def walk(value: Any, write: Callable[[Any], None]) -> None:
        if isinstance(value, str):
            if value:
                slots.append((value, write))
        elif isinstance(value, dict):
            for k in [k for k in value if k in policy.drop_keys]:
                del value[k]
            for k, v in value.items():
                if k not in policy.keep_keys and k not in IDENTITY_KEYS and k not in _AUDIT_CONTENT:
                    walk(v, functools.partial(value.__setitem__, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, functools.partial(value.__setitem__, i))

    walk(data, lambda new: None)
    texts = [text for text, _ in slots]
    for (text, write), new in zip(slots, policy.redactor.redact_many(texts, policy.max_attribute_chars)):  # type: ignore[union-attr]
        if new is not text:
            write(new)
    return data
