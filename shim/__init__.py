"""aiwatch shim: call AI models safely and produce the telemetry aiwatch monitors.

    from shim import Backend, ChatClient, setup_telemetry
    setup_telemetry(endpoint="http://aiwatch:4318", service_name="support-bot")
    client = ChatClient(Backend("openai", "gpt-4o-mini", base_url="https://api.openai.com/v1", api_key=...))
    result = client.chat([{"role": "user", "content": "hi"}], user="u-42")

Importing the shim loads only the standard library, httpx and the OpenTelemetry API.
"""

from shim.audit import AuditLog, record_feedback
from shim.breaker import CircuitBreaker
from shim.client import AsyncChatStream, ChatClient, ChatStream
from shim.engine import FallbackCascade
from shim.errors import AllLevelsFailed, CircuitOpenError, ShimError, classify_exception
from shim.guard import guard
from shim.injection import injection_score
from shim.policy import RetryPolicy, Timeouts
from shim.pricing import PriceTable, Usage
from shim.redact import Finding, Redactor
from shim.result import CallResult
from shim.routing import (Backend, CanaryRouter, KillSwitch, ModelRouter, RouteDecision, latency_budget_rule,
                          pii_rule, regulated_tenant_rule, task_size_rule)
from shim.shadow import ShadowMode
from shim.telemetry import setup_telemetry
from shim.validation import OutputValidator, confidence_from_field, confidence_from_logprobs

AIClient = ChatClient

__all__ = [
    "AIClient", "AllLevelsFailed", "AsyncChatStream", "AuditLog", "Backend", "CallResult", "CanaryRouter",
    "ChatClient", "ChatStream", "CircuitBreaker", "CircuitOpenError", "FallbackCascade", "Finding",
    "KillSwitch", "ModelRouter", "OutputValidator", "PriceTable", "Redactor", "RetryPolicy", "RouteDecision",
    "ShadowMode", "ShimError", "Timeouts", "Usage", "classify_exception", "confidence_from_field",
    "confidence_from_logprobs", "guard", "injection_score", "latency_budget_rule", "pii_rule",
    "record_feedback", "regulated_tenant_rule", "setup_telemetry", "task_size_rule",
]
