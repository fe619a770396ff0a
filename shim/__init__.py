"""aiwatch shim: call AI models safely and produce the telemetry aiwatch monitors.

    from shim import Backend, ChatClient, setup_telemetry
    setup_telemetry(endpoint="http://aiwatch:4318", service_name="support-bot")
    client = ChatClient(Backend("openai", "gpt-4o-mini", base_url="https://api.openai.com/v1", api_key=...))
    result = client.chat([{"role": "user", "content": "hi"}], user="u-42")

Importing `shim` loads nothing else: each public name loads its module on first use. What the shim
shares with the server (attribute names, the redactor, prices) lives in `core`, which the collectors
use without the client.
"""

import importlib
from typing import TYPE_CHECKING

# Public name -> module: loaded on first use, so `import shim` does not pull in the client, httpx and
# the OpenTelemetry SDK.
_EXPORTS = {
    **dict.fromkeys(('AuditLog', 'record_feedback'), 'shim.audit'),
    **dict.fromkeys(('CircuitBreaker',), 'shim.breaker'),
    **dict.fromkeys(('AsyncChatStream', 'ChatClient', 'ChatStream'), 'shim.client'),
    **dict.fromkeys(('FallbackCascade',), 'shim.engine'),
    **dict.fromkeys(('AllLevelsFailed', 'CircuitOpenError', 'ShimError', 'classify_exception'), 'shim.errors'),
    **dict.fromkeys(('guard',), 'shim.guard'),
    **dict.fromkeys(('injection_score',), 'shim.injection'),
    **dict.fromkeys(('RetryPolicy', 'Timeouts'), 'shim.policy'),
    **dict.fromkeys(('PriceTable', 'Usage'), 'core.pricing'),
    **dict.fromkeys(('Finding', 'Redactor'), 'core.redact'),
    **dict.fromkeys(('CallResult',), 'shim.result'),
    **dict.fromkeys(('Backend', 'CanaryRouter', 'KillSwitch', 'ModelRouter', 'RouteDecision', 'latency_budget_rule',
                     'pii_rule', 'regulated_tenant_rule', 'task_size_rule'), 'shim.routing'),
    **dict.fromkeys(('ShadowMode',), 'shim.shadow'),
    **dict.fromkeys(('setup_telemetry',), 'shim.telemetry'),
    **dict.fromkeys(('OutputValidator', 'confidence_from_field', 'confidence_from_logprobs'), 'shim.validation'),
}

if TYPE_CHECKING:
    from core.pricing import PriceTable, Usage
    from core.redact import Finding, Redactor
    from shim.audit import AuditLog, record_feedback
    from shim.breaker import CircuitBreaker
    from shim.client import AsyncChatStream, ChatClient, ChatStream
    from shim.engine import FallbackCascade
    from shim.errors import AllLevelsFailed, CircuitOpenError, ShimError, classify_exception
    from shim.guard import guard
    from shim.injection import injection_score
    from shim.policy import RetryPolicy, Timeouts
    from shim.result import CallResult
    from shim.routing import (
        Backend,
        CanaryRouter,
        KillSwitch,
        ModelRouter,
        RouteDecision,
        latency_budget_rule,
        pii_rule,
        regulated_tenant_rule,
        task_size_rule,
    )
    from shim.shadow import ShadowMode
    from shim.telemetry import setup_telemetry
    from shim.validation import OutputValidator, confidence_from_field, confidence_from_logprobs


def __getattr__(name: str) -> object:
    target = "ChatClient" if name == "AIClient" else name
    module = _EXPORTS.get(target)
    if module is None:
        raise AttributeError(f"module 'shim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), target)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "AIClient", "AllLevelsFailed", "AsyncChatStream", "AuditLog", "Backend", "CallResult", "CanaryRouter",
    "ChatClient", "ChatStream", "CircuitBreaker", "CircuitOpenError", "FallbackCascade", "Finding",
    "KillSwitch", "ModelRouter", "OutputValidator", "PriceTable", "Redactor", "RetryPolicy", "RouteDecision",
    "ShadowMode", "ShimError", "Timeouts", "Usage", "classify_exception", "confidence_from_field",
    "confidence_from_logprobs", "guard", "injection_score", "latency_budget_rule", "pii_rule",
    "record_feedback", "regulated_tenant_rule", "setup_telemetry", "task_size_rule",
]
