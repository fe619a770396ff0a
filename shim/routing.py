"""Choosing the backend for a call: backends, rule-based model router, canary split, kill switch.

The router runs first because data-sensitivity rules (PII, regulated tenants) must win over every
experiment; a sensitivity decision also restricts which fallbacks may see the data. The canary
splits only calls the router left on the default backend, sticky per user or session key.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.redact import Redactor, default_redactor
from shim.breaker import CircuitBreaker


@dataclass
class Backend:
    """One model endpoint. base_url/api_key for OpenAI-compatible HTTP; `call` for guarded callables.

    version is the model version label aiwatch tracks (e.g. a fine-tune or deployment tag);
    self_hosted marks endpoints allowed to see sensitive data.
    """

    name: str
    model: str
    base_url: str | None = None
    api_key: str | None = None
    provider: str = "openai"
    version: str | None = None
    self_hosted: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    breaker: CircuitBreaker | None = None
    call: Callable[..., Any] | None = None
    p50_latency_ms: float | None = None

    def __post_init__(self) -> None:
        if self.breaker is None:
            self.breaker = CircuitBreaker(self.name)
        self.breaker.add_listener(_count_transition)

    @property
    def server_address(self) -> str | None:
        if not self.base_url:
            return None
        rest = self.base_url.split("://", 1)[-1]
        return rest.split("/", 1)[0].rsplit(":", 1)[0] if rest else None


def _count_transition(name: str, old: str, new: str) -> None:
    from shim.telemetry import meter

    global _transition_counter
    if _transition_counter is None:
        _transition_counter = meter().create_counter(
            "aiwatch.breaker.transitions", description="Circuit breaker state changes")
    _transition_counter.add(1, {"aiwatch.backend": name, "from": old, "to": new})


_transition_counter: Any = None


@dataclass
class RouteContext:
    """What routing rules may look at. `text` is the user-visible input, joined."""

    text: str
    tenant: str | None = None
    user: str | None = None
    latency_budget_ms: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def estimated_tokens(self) -> int:
        return len(self.text) // 4 + 1   # ~4 characters per token for English; enough for routing


@dataclass(frozen=True)
class RouteDecision:
    """backend: name to call first; reason: recorded on the span; allowed: which fallbacks may
    receive this request (None = any)."""

    backend: str
    reason: str
    rule: str = "default"
    allowed: Callable[[Backend], bool] | None = None


Rule = Callable[[RouteContext], "RouteDecision | None"]


def _sensitive_only(target: str) -> Callable[[Backend], bool]:
    return lambda b: b.self_hosted or b.name == target


def pii_rule(backend: str, redactor: Redactor | None = None) -> Rule:
    """PII or secrets in the input -> `backend` (and only self-hosted fallbacks)."""
    r = redactor or default_redactor()

    def rule(ctx: RouteContext) -> RouteDecision | None:
        kinds = sorted({f.kind for f in r.find(ctx.text)})
        if kinds:
            return RouteDecision(backend, f"pii_detected:{','.join(kinds)}", "pii", _sensitive_only(backend))
        return None

    return rule


def regulated_tenant_rule(backend: str, tenants: set[str] | frozenset[str]) -> Rule:
    """Tenants flagged regulated -> `backend` (and only self-hosted fallbacks)."""

    def rule(ctx: RouteContext) -> RouteDecision | None:
        if ctx.tenant is not None and ctx.tenant in tenants:
            return RouteDecision(backend, f"regulated_tenant:{ctx.tenant}", "regulated_tenant", _sensitive_only(backend))
        return None

    return rule


def latency_budget_rule(p50_ms: dict[str, float]) -> Rule:
    """With a latency budget, the first backend (in the given order) whose p50 fits it."""

    def rule(ctx: RouteContext) -> RouteDecision | None:
        if ctx.latency_budget_ms is None:
            return None
        for name, p50 in p50_ms.items():
            if p50 <= ctx.latency_budget_ms:
                return RouteDecision(name, f"latency_budget:{ctx.latency_budget_ms:g}ms>=p50:{p50:g}ms", "latency_budget")
        return None

    return rule


def task_size_rule(small: str, large: str, threshold_tokens: int = 2000) -> Rule:
    """Small tasks to the cheap model, large ones to the capable (or long-context) model."""

    def rule(ctx: RouteContext) -> RouteDecision | None:
        n = ctx.estimated_tokens
        if n < threshold_tokens:
            return RouteDecision(small, f"small_task:~{n}tok<{threshold_tokens}", "task_size")
        return RouteDecision(large, f"large_task:~{n}tok>={threshold_tokens}", "task_size")

    return rule


class ModelRouter:
    """Rules in order; the first decision wins; otherwise the default backend."""

    def __init__(self, default: str, rules: list[Rule] | None = None) -> None:
        self.default = default
        self.rules = list(rules or [])

    def route(self, ctx: RouteContext) -> RouteDecision:
        for rule in self.rules:
            decision = rule(ctx)
            if decision is not None:
                return decision
        return RouteDecision(self.default, "default")


class CanaryRouter:
    """Send `percent`% of keys to `candidate`, sticky: the same key always lands in the same arm."""

    def __init__(self, candidate: Backend, percent: float, *, salt: str = "aiwatch-canary") -> None:
        if not 0 <= percent <= 100:
            raise ValueError("percent must be within 0..100")
        self.candidate = candidate
        self.percent = percent
        self.salt = salt.encode()

    def arm(self, key: str) -> str:
        digest = hashlib.sha256(self.salt + key.encode()).digest()
        bucket = int.from_bytes(digest[:4], "big") % 10_000
        return "canary" if bucket < self.percent * 100 else "baseline"


class KillSwitch:
    """Turns the AI levels off: on when `enabled`, or when the env var is truthy (read per call,
    so operators can flip it without a restart of the config system)."""

    def __init__(self, enabled: bool = False, env_var: str = "AIWATCH_KILL_SWITCH") -> None:
        self.enabled = enabled
        self.env_var = env_var

    @property
    def active(self) -> bool:
        if self.enabled:
            return True
        value = os.environ.get(self.env_var)
        return value is not None and value.strip().lower() in ("1", "true", "yes", "on")
