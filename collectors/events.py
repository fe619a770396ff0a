"""Audit and human-feedback events, from OTLP log records or JSONL lines, to table rows.

Both sources give a flat attribute dict (the keys in `core.semconv`), a time and a service; the
same functions turn them into rows, so the two paths cannot drift apart. Audit text is redacted
again here: the service should have redacted it, the store must not depend on that.
"""
from __future__ import annotations

import json
from typing import Any

from collectors.attributes import WrongType, to_float
from collectors.content import ContentPolicy, truncate
from core import semconv as sc

_AUDIT_KEYS = {sc.REQUEST_ID, sc.USER_ID, sc.GEN_AI_REQUEST_MODEL, sc.MODEL_VERSION, sc.ROUTE,
               sc.LATENCY_MS, sc.DECISION_PATH, sc.AUDIT_INPUT, sc.AUDIT_OUTPUT, sc.EVENT_NAME}
_FEEDBACK_KEYS = {sc.REQUEST_ID, sc.FEEDBACK_ACTION, sc.FEEDBACK_REVIEWER, sc.FEEDBACK_REASON, sc.ROUTE,
                  sc.GEN_AI_REQUEST_MODEL, sc.MODEL_VERSION, sc.EVENT_NAME}


class BadEvent(ValueError):
    """The event lacks what makes it usable; the message says what."""


def _s(attrs: dict[str, Any], key: str, limit: int) -> str | None:
    value = attrs.get(key)
    return None if value is None else truncate(str(value), limit)


def _rest(attrs: dict[str, Any], known: set[str]) -> str | None:
    rest = {k: v for k, v in attrs.items() if k not in known}
    return json.dumps(rest, default=str) if rest else None


def audit_row(attrs: dict[str, Any], time_us: int, service: str | None, trace_id: str | None,
              span_id: str | None, source: str, policy: ContentPolicy) -> dict[str, Any]:
    limit = policy.max_attribute_chars
    latency = attrs.get(sc.LATENCY_MS)
    try:
        latency = None if latency is None else to_float(latency)
    except WrongType as exc:
        raise BadEvent(f"{sc.LATENCY_MS} is {exc}") from None
    return {
        "time": time_us, "service_name": service, "request_id": _s(attrs, sc.REQUEST_ID, limit),
        "trace_id": trace_id, "span_id": span_id, "user_id": _s(attrs, sc.USER_ID, limit),
        "model": _s(attrs, sc.GEN_AI_REQUEST_MODEL, limit), "model_version": _s(attrs, sc.MODEL_VERSION, limit),
        "route": _s(attrs, sc.ROUTE, limit), "latency_ms": latency,
        "decision_path": _s(attrs, sc.DECISION_PATH, limit),
        "input_text": policy.apply(_text(attrs.get(sc.AUDIT_INPUT)))[0],
        "output_text": policy.apply(_text(attrs.get(sc.AUDIT_OUTPUT)))[0],
        "source": source, "attributes": _rest(attrs, _AUDIT_KEYS),
    }


def feedback_row(attrs: dict[str, Any], time_us: int, service: str | None, trace_id: str | None,
                 source: str, policy: ContentPolicy) -> dict[str, Any]:
    limit = policy.max_attribute_chars
    action = str(attrs.get(sc.FEEDBACK_ACTION, "")).strip().lower()
    if action not in sc.FEEDBACK_ACTIONS:
        raise BadEvent(f"{sc.FEEDBACK_ACTION} must be one of {', '.join(sc.FEEDBACK_ACTIONS)}, got {action!r}")
    if not attrs.get(sc.REQUEST_ID):
        raise BadEvent(f"feedback needs {sc.REQUEST_ID}")
    reason = attrs.get(sc.FEEDBACK_REASON)
    return {
        "time": time_us, "service_name": service, "request_id": _s(attrs, sc.REQUEST_ID, limit),
        "trace_id": trace_id, "action": action, "reviewer": _s(attrs, sc.FEEDBACK_REVIEWER, limit),
        "reason": None if reason is None else policy.apply(str(reason))[0],
        "route": _s(attrs, sc.ROUTE, limit), "model": _s(attrs, sc.GEN_AI_REQUEST_MODEL, limit),
        "model_version": _s(attrs, sc.MODEL_VERSION, limit), "source": source,
        "attributes": _rest(attrs, _FEEDBACK_KEYS),
    }


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, default=str)
