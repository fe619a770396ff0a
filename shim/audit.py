"""Audit and feedback events: OTLP log records and/or JSONL lines, redacted before they leave.

An audit event per call (input, output, model version, user, request id, latency, decision path)
and a feedback event per human review (`record_feedback`). Each carries semconv.EVENT_NAME plus the
semconv keys; JSONL lines add "time" (RFC 3339) and "service" for the collector's file tailer.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core import semconv
from core.redact import Redactor, default_redactor


class AuditLog:
    """Where audit events go. otlp=True emits through the global OTel LoggerProvider;
    jsonl_path appends one JSON object per line (thread-safe, flushed per event)."""

    def __init__(
        self,
        *,
        service: str = "unknown_service",
        otlp: bool = True,
        jsonl_path: str | Path | None = None,
        redactor: Redactor | None = None,
        include_content: bool = True,
    ) -> None:
        self.service = service
        self.otlp = otlp
        self.jsonl_path = Path(jsonl_path) if jsonl_path else None
        self.redactor = redactor or default_redactor()
        self.include_content = include_content
        self._lock = threading.Lock()
        self._file: Any = None

    def emit(self, event_name: str, attributes: dict[str, Any]) -> dict[str, Any]:
        """Redact text fields, drop None values, send to every sink; returns what was sent."""
        attrs: dict[str, Any] = {semconv.EVENT_NAME: event_name}
        for key, value in attributes.items():
            if value is None:
                continue
            if key in (semconv.AUDIT_INPUT, semconv.AUDIT_OUTPUT):
                if not self.include_content:
                    continue
                if not isinstance(value, str):
                    value = json.dumps(value, ensure_ascii=False, default=str)
                value = self.redactor.redact(value)
            elif key == semconv.FEEDBACK_REASON and isinstance(value, str):
                value = self.redactor.redact(value)
            attrs[key] = value
        if self.otlp:
            from shim.telemetry import logger

            logger().emit(event_name=event_name, body=event_name, attributes=attrs)
        if self.jsonl_path is not None:
            line = {"time": datetime.now(UTC).isoformat(timespec="microseconds"),
                    "service": self.service, **attrs}
            data = json.dumps(line, ensure_ascii=False, default=str) + "\n"
            with self._lock:
                if self._file is None:
                    self.jsonl_path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = self.jsonl_path.open("a", encoding="utf-8")
                self._file.write(data)
                self._file.flush()
        return attrs

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


_default = AuditLog(otlp=True)


def configure(**kwargs: Any) -> AuditLog:
    """Replace the process-wide audit log (setup_telemetry calls this; so can services)."""
    global _default
    _default.close()
    _default = AuditLog(**kwargs)
    return _default


def default_audit_log() -> AuditLog:
    return _default


def record_feedback(
    request_id: str,
    action: str,
    reviewer: str | None = None,
    reason: str | None = None,
    *,
    audit_log: AuditLog | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Emit the human-override event aiwatch counts: action is accepted | modified | rejected."""
    if action not in semconv.FEEDBACK_ACTIONS:
        raise ValueError(f"action must be one of {semconv.FEEDBACK_ACTIONS}, not {action!r}")
    return (audit_log or _default).emit(semconv.EVENT_FEEDBACK, {
        semconv.REQUEST_ID: request_id,
        semconv.FEEDBACK_ACTION: action,
        semconv.FEEDBACK_REVIEWER: reviewer,
        semconv.FEEDBACK_REASON: reason,
        **extra,
    })
