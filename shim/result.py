"""What every guarded call returns: the answer plus the metadata aiwatch monitors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.pricing import Usage


@dataclass
class CallResult:
    """The answer and how it was obtained.

    content is the text (None when the human level queued the request instead of answering);
    output is the raw value for `guard`-wrapped callables; fallback_level is one of
    semconv.FALLBACK_LEVELS; decision_path reads like "route:self_hosted>primary:timeout>fallback:ok".
    """

    request_id: str
    content: str | None
    model: str | None = None
    version: str | None = None
    backend: str | None = None
    latency_ms: float = 0.0
    tokens: Usage = field(default_factory=Usage)
    cost: float | None = None
    confidence: float | None = None
    fallback_level: str = "primary"
    format_ok: bool | None = None
    arm: str = "baseline"
    retries: int = 0
    finish_reason: str | None = None
    response_id: str | None = None
    injection_score: float = 0.0
    routing_decision: str | None = None
    routing_reason: str | None = None
    decision_path: str = ""
    output: Any = None
