"""The protected call: routing, retries, breaker, fallback cascade, validation, spans and audit.

The logic is written once, as a generator that yields effects (make an attempt, sleep, call a
hook) and receives their results; `run_sync` and `run_async` perform the effects with blocking or
awaitable I/O. So the sync, async, streaming and `guard` paths share one tested decision procedure.

Spans: a CLIENT span per logical call named "{operation} {model}" (the requested model) with the
outcome's gen_ai.* and aiwatch.* attributes, and a child span per attempt with aiwatch.attempt.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from core import semconv as sc
from core.pricing import PriceTable, Usage, default_price_table
from core.redact import Redactor, default_redactor
from shim.audit import AuditLog, default_audit_log
from shim.errors import (
    AllLevelsFailed,
    CircuitOpenError,
    InjectionBlockedError,
    InvalidOutputError,
    KillSwitchError,
    ShimError,
    classify_exception,
)
from shim.injection import injection_score
from shim.policy import Clock, RetryPolicy, SystemClock, Timeouts
from shim.result import CallResult
from shim.routing import Backend, CanaryRouter, KillSwitch, ModelRouter, RouteContext, RouteDecision
from shim.telemetry import tracer
from shim.validation import ConfidenceHook, OutputValidator, default_confidence

# Caller-side errors prove the backend is alive: they count as breaker successes.
_BREAKER_FAILURES = frozenset({"rate_limit", "server", "timeout", "connection", "auth"})


@dataclass
class Response:
    """One successful attempt, normalised across providers."""

    content: str | None
    model: str | None = None
    response_id: str | None = None
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    raw: Any = None
    output: Any = None
    stream: Any = None   # the live stream, for streaming calls (content holds what was prefetched)


@dataclass(frozen=True)
class AttemptTimeouts:
    connect: float
    read: float
    deadline: float   # clock time by which the whole call must end


@dataclass
class CallSpec:
    """One logical call as the engine sees it."""

    request: Any                      # what the transport sends (e.g. the chat payload)
    text: str                         # input text for routing, injection score and audit
    operation: str = "chat"
    stream: bool = False
    request_id: str | None = None
    user: str | None = None
    session: str | None = None
    tenant: str | None = None
    route: str | None = None
    latency_budget_ms: float | None = None
    hook_args: tuple[Any, ...] = ()
    hook_kwargs: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)   # the caller's span attributes (caller_attributes)


# Caller span attributes: what a service knows about the input (language, topic, tier) for the drift
# analyzer's `attr:<key>` columns. Bounded so a caller's bug cannot bloat every span.
MAX_CALLER_ATTRIBUTES = 32
MAX_ATTRIBUTE_KEY = 128
MAX_ATTRIBUTE_TEXT = 1024


def caller_attributes(raw: Any, redact: Callable[[str], str]) -> dict[str, Any]:
    """The caller's attributes that can go on a span: string keys (at most MAX_ATTRIBUTE_KEY
    characters) with a bool, int, finite float or string value (strings redacted and cut to
    MAX_ATTRIBUTE_TEXT); at most MAX_CALLER_ATTRIBUTES. Anything else is left out with a warning,
    never an error: a monitoring label must not fail the call it describes."""
    out: dict[str, Any] = {}
    if not raw:
        return out
    if not isinstance(raw, dict):
        _warn_once("attributes", f"attributes must be a dict, not {type(raw).__name__}: ignored")
        return out
    for key, value in raw.items():
        if len(out) == MAX_CALLER_ATTRIBUTES:
            _warn_once("attributes:count", f"more than {MAX_CALLER_ATTRIBUTES} attributes: the rest are left out")
            break
        if not isinstance(key, str) or not 0 < len(key) <= MAX_ATTRIBUTE_KEY:
            _warn_once(f"attributes:key:{str(key)[:40]}", f"attribute key {str(key)[:40]!r} is not a string of "
                                                          f"1-{MAX_ATTRIBUTE_KEY} characters: left out")
        elif isinstance(value, str):   # cut before redacting too, so a huge value costs a bounded scan
            out[key] = redact(value[:4 * MAX_ATTRIBUTE_TEXT])[:MAX_ATTRIBUTE_TEXT]
        elif isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
            out[key] = value
        else:
            _warn_once(f"attributes:value:{key}", f"attribute {key!r}: a {type(value).__name__} value is not a "
                                                  "bool, int, finite float or string: left out")
    return out


_WARNED: set[str] = set()


def _warn_once(what: str, message: str) -> None:
    if what not in _WARNED and len(_WARNED) < 1000:
        _WARNED.add(what)
        logging.getLogger("aiwatch.shim").warning(message)


# --- effects the decision generator yields ---
@dataclass
class Attempt:
    backend: Backend
    spec: CallSpec
    timeouts: AttemptTimeouts
    span: Any


@dataclass
class Sleep:
    seconds: float


@dataclass
class Hook:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass
class CallOutcome:
    """What the generator returns: the result and the still-open parent span (streams end it later)."""

    result: CallResult
    span: Any
    spec: CallSpec
    backend: Backend | None
    response: Response | None
    started: float
    path: list[str]


@dataclass
class FallbackCascade:
    """The levels after the primary: fallback models in order, then a rule-based function (called
    with the same arguments as the model call), then a human escalation hook: a callable given a
    ticket dict (returning an answer, or None when it queued the request) or a queue (put(ticket))."""

    fallbacks: list[Backend] = field(default_factory=list)
    rule_based: Callable[..., Any] | None = None
    human: Any = None


Transport = Callable[[Backend, CallSpec, AttemptTimeouts], Any]


class Engine:
    """Holds the policies of one client; `plan(spec)` is the decision procedure."""

    def __init__(
        self,
        primary: Backend,
        *,
        cascade: FallbackCascade | None = None,
        fallbacks: list[Backend] | None = None,
        backends: list[Backend] | None = None,
        rule_based: Callable[..., Any] | None = None,
        human: Any = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        router: ModelRouter | None = None,
        canary: CanaryRouter | None = None,
        shadow: Any = None,
        kill_switch: KillSwitch | None = None,
        validator: OutputValidator | None = None,
        confidence: ConfidenceHook | None = default_confidence,
        prices: PriceTable | None = None,
        audit: AuditLog | bool | None = True,
        redactor: Redactor | None = None,
        injection_block_threshold: float | None = None,
        capture_content: bool = False,
        clock: Clock | None = None,
        route: str | None = None,
    ) -> None:
        if cascade is not None:
            fallbacks = cascade.fallbacks
            rule_based = cascade.rule_based
            human = cascade.human
        self.primary = primary
        self.fallbacks = list(fallbacks or [])
        self.backends: dict[str, Backend] = {b.name: b for b in [primary, *self.fallbacks, *(backends or [])]}
        if canary is not None:
            self.backends.setdefault(canary.candidate.name, canary.candidate)
        self.rule_based = rule_based
        self.human = human
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self.router = router
        self.canary = canary
        self.shadow = shadow
        self.kill_switch = kill_switch or KillSwitch()
        self.validator = validator
        self.confidence = confidence
        self.prices = prices or default_price_table()
        self.audit = audit
        self.redactor = redactor or default_redactor()
        self.injection_block_threshold = injection_block_threshold
        self.capture_content = capture_content
        self.clock: Clock = clock or SystemClock()
        self.route = route

    # ------------------------------------------------------------------ decision procedure
    def plan(self, spec: CallSpec) -> Generator[Any, Any, CallOutcome]:
        clock = self.clock
        started = clock.now()
        deadline = started + self.timeouts.total
        request_id = spec.request_id or os.urandom(16).hex()   # uuid4-sized, cheaper
        spec.request_id = request_id
        path: list[str] = []
        errors: list[tuple[str, str, BaseException]] = []

        span = tracer().start_span(
            f"{spec.operation} {self.primary.model}", kind=SpanKind.CLIENT,
            attributes=self._base_attributes(spec, request_id))
        parent_ctx = trace.set_span_in_context(span)

        score = injection_score(spec.text)
        span.set_attribute(sc.INJECTION_SCORE, score)
        if self.injection_block_threshold is not None and score >= self.injection_block_threshold:
            err = InjectionBlockedError(score)
            path.append("injection:blocked")
            self._fail(span, spec, err, path, started, request_id)
            raise err

        levels, decision, arm = self._levels(spec, request_id)
        span.set_attribute(sc.ARM, arm)
        if decision is not None:
            span.set_attribute(sc.ROUTING_DECISION, decision.backend)
            span.set_attribute(sc.ROUTING_REASON, decision.reason)
            if decision.rule != "default":
                path.append(f"route:{decision.backend}")
        killed = self.kill_switch.active
        if killed:
            path.append("kill_switch")
            levels = []

        attempts_total = 0
        for level, backend in levels:
            try:
                response, attempts = yield from self._call_backend(backend, spec, deadline, parent_ctx, level)
                attempts_total += attempts
            except ShimError as err:
                attempts_total += getattr(err, "_attempts", 0)
                errors.append((level, backend.name, err))
                path.append(f"{level}:{err.error_type}")
                continue
            format_ok = None
            if self.validator is not None and not spec.stream:
                format_ok = self.validator.check(response.content)
                if not format_ok and self.validator.fallback_on_invalid:
                    errors.append((level, backend.name, InvalidOutputError()))
                    path.append(f"{level}:invalid_output")
                    continue
            path.append(f"{level}:ok")
            result = CallResult(
                request_id=request_id, content=response.content, model=response.model or backend.model,
                version=backend.version, backend=backend.name, fallback_level=level, format_ok=format_ok,
                arm=arm if backend is levels[0][1] else "baseline", retries=max(0, attempts_total - 1),
                routing_decision=decision.backend if decision else None,
                routing_reason=decision.reason if decision else None, injection_score=score,
                output=response.output)
            outcome = CallOutcome(result, span, spec, backend, response, started, path)
            if not spec.stream:
                self.finish(outcome, response)
            return outcome

        # Every model level failed (or the kill switch is on): rule-based, then human.
        for level, fn in (("rule_based", self.rule_based), ("human", self.human)):
            if fn is None:
                continue
            try:
                if level == "human":
                    value = yield from self._escalate(fn, spec, request_id, errors)
                else:
                    value = yield Hook(fn, spec.hook_args, spec.hook_kwargs)
            except Exception as exc:  # noqa: BLE001 - a failing level only moves the cascade on
                level_err = classify_exception(exc)
                errors.append((level, level, level_err))
                path.append(f"{level}:{level_err.error_type}")
                continue
            path.append(f"{level}:ok" if value is not None or level == "rule_based" else f"{level}:queued")
            result = CallResult(
                request_id=request_id, content=value if isinstance(value, str) or value is None else str(value),
                output=value, fallback_level=level, arm=arm, retries=max(0, attempts_total - 1),
                routing_decision=decision.backend if decision else None,
                routing_reason=decision.reason if decision else None, injection_score=score)
            if self.validator is not None and not spec.stream and value is not None:
                result.format_ok = self.validator.check(result.content)
            outcome = CallOutcome(result, span, spec, None, None, started, path)
            if not spec.stream:
                self.finish(outcome, None)
            return outcome

        failure: ShimError = KillSwitchError() if killed and not errors else AllLevelsFailed(errors)
        span.set_attribute(sc.RETRY_COUNT, max(0, attempts_total - 1))
        self._fail(span, spec, failure, path, started, request_id)
        raise failure

    def _levels(self, spec: CallSpec, request_id: str) -> tuple[list[tuple[str, Backend]], RouteDecision | None, str]:
        decision = None
        first = self.primary
        if self.router is not None:
            decision = self.router.route(RouteContext(
                spec.text, tenant=spec.tenant, user=spec.user,
                latency_budget_ms=spec.latency_budget_ms, metadata=spec.metadata))
            first = self.backends[decision.backend]
        arm = "baseline"
        if self.canary is not None and first is self.primary:
            arm = self.canary.arm(spec.user or spec.session or request_id)
            if arm == "canary":
                first = self.canary.candidate
        levels = [("primary", first)]
        for b in [self.primary, *self.fallbacks]:
            if b is first or any(b is lb for _, lb in levels):
                continue
            if decision is not None and decision.allowed is not None and not decision.allowed(b):
                continue
            levels.append(("fallback", b))
        return levels, decision, arm

    def _call_backend(
        self, backend: Backend, spec: CallSpec, deadline: float, parent_ctx: Any, level: str
    ) -> Generator[Any, Any, tuple[Response, int]]:
        """Attempts on one backend with retries; returns (response, attempts) or raises ShimError."""
        breaker = backend.breaker
        assert breaker is not None
        clock = self.clock
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - clock.now()
            if remaining <= 0:
                err = ShimError("timeout", "total time cap reached", error_type="total_timeout")
                err._attempts = attempt - 1  # type: ignore[attr-defined]
                raise err
            n_transitions = len(breaker.transitions)
            allowed = breaker.allow()
            child = tracer().start_span(
                f"{spec.operation} {backend.model}", context=parent_ctx, kind=SpanKind.CLIENT,
                attributes=self._attempt_attributes(spec, backend, attempt, level))
            self._transition_events(child, breaker, n_transitions)
            if not allowed:
                err = CircuitOpenError(backend.name)
                child.set_attribute(sc.BREAKER_STATE, breaker.state)
                self._end_error(child, err)
                err._attempts = attempt - 1  # type: ignore[attr-defined]
                raise err
            timeouts = AttemptTimeouts(
                connect=min(self.timeouts.connect, remaining),
                read=min(self.timeouts.stream_heartbeat if spec.stream else self.timeouts.response, remaining),
                deadline=deadline)
            try:
                response = yield Attempt(backend, spec, timeouts, child)
            except Exception as exc:  # noqa: BLE001 - classified below, re-raised as ShimError
                err = classify_exception(exc)
                n_transitions = len(breaker.transitions)
                if err.error_class in _BREAKER_FAILURES:
                    breaker.record_failure()
                else:
                    breaker.record_success()
                self._transition_events(child, breaker, n_transitions)
                child.set_attribute(sc.BREAKER_STATE, breaker.state)
                self._end_error(child, err)
                delay = None
                if err.transient and attempt < self.retry.max_attempts:
                    delay = self.retry.backoff(attempt, err.retry_after)
                if delay is None or clock.now() + delay >= deadline:
                    err._attempts = attempt  # type: ignore[attr-defined]
                    raise err from exc
                yield Sleep(delay)
                continue
            n_transitions = len(breaker.transitions)
            breaker.record_success()
            self._transition_events(child, breaker, n_transitions)
            # Attempt spans carry only what differs per attempt; usage and cost live on the parent
            # (each OTel attribute costs ~2 us, and this is the hot path).
            child.set_attributes({sc.GEN_AI_RESPONSE_MODEL: response.model or backend.model,
                                  sc.BREAKER_STATE: breaker.state})
            if not spec.stream:
                child.end()
            else:
                response._attempt_span = child
            return response, attempt

    def _escalate(self, human: Any, spec: CallSpec, request_id: str,
                  errors: list[tuple[str, str, BaseException]]) -> Generator[Any, Any, Any]:
        ticket = {"request_id": request_id, "input": self.redactor.redact(spec.text), "user": spec.user,
                  "tenant": spec.tenant, "errors": [f"{lvl}/{name}: {e}" for lvl, name, e in errors]}
        if hasattr(human, "put") and not callable(human):
            human.put(ticket)
            return None
        if hasattr(human, "put_nowait"):
            human.put_nowait(ticket)
            return None
        return (yield Hook(human, (ticket,), {}))

    # ------------------------------------------------------------------ finishing
    def finish(self, outcome: CallOutcome, response: Response | None, error: BaseException | None = None) -> CallResult:
        """Compute metadata, set the parent span's attributes, end it, write the audit event."""
        result, span, spec = outcome.result, outcome.span, outcome.spec
        result.latency_ms = (self.clock.now() - outcome.started) * 1000
        result.decision_path = ">".join(outcome.path)
        backend = outcome.backend
        attrs: dict[str, Any] = {}
        if response is not None and backend is not None:
            result.tokens = response.usage
            result.finish_reason = response.finish_reason
            result.response_id = response.response_id
            result.cost = self.prices.cost(result.model or backend.model, response.usage)
            if self.confidence is not None and result.content is not None:
                try:
                    result.confidence = self.confidence(result.content, response.raw or {})
                except Exception:  # noqa: BLE001 - a broken hook must not fail the call
                    result.confidence = None
            attrs.update(self._response_attributes(None, backend, response, spec))
            attrs[sc.MODEL_VERSION] = backend.version or result.model or backend.model
            attrs[sc.BREAKER_STATE] = backend.breaker.state if backend.breaker else "closed"
            if result.cost is not None:
                attrs[sc.COST_USD] = result.cost
                attrs[sc.COST_PRICE] = self.prices.source(result.model or backend.model)
        if result.confidence is not None:
            attrs[sc.CONFIDENCE] = float(result.confidence)
        if result.format_ok is not None:
            attrs[sc.FORMAT_OK] = result.format_ok
        attrs[sc.FALLBACK_LEVEL] = result.fallback_level
        attrs[sc.RETRY_COUNT] = result.retries
        attrs[sc.ARM] = result.arm
        attrs[sc.DECISION_PATH] = result.decision_path
        attrs[sc.LATENCY_MS] = result.latency_ms
        if self.capture_content and result.content is not None:
            attrs[sc.GEN_AI_OUTPUT_MESSAGES] = self.redactor.redact(result.content)
        if error is not None:
            err = classify_exception(error)
            attrs[sc.ERROR_TYPE] = err.error_type
            attrs[sc.ERROR_CLASS] = err.error_class
            span.set_status(Status(StatusCode.ERROR, str(error)[:200]))
        span.set_attributes(attrs)   # one call: each set_attribute takes the span's lock
        span.end()
        self._audit(spec, result, error)
        return result

    def _fail(self, span: Any, spec: CallSpec, err: ShimError, path: list[str], started: float, request_id: str) -> None:
        latency_ms = (self.clock.now() - started) * 1000
        span.set_attribute(sc.ERROR_TYPE, err.error_type)
        span.set_attribute(sc.ERROR_CLASS, err.error_class)
        span.set_attribute(sc.DECISION_PATH, ">".join(path))
        span.set_attribute(sc.LATENCY_MS, latency_ms)
        span.set_status(Status(StatusCode.ERROR, str(err)[:200]))
        span.end()
        result = CallResult(request_id=request_id, content=None, latency_ms=latency_ms,
                            decision_path=">".join(path), fallback_level="none")
        self._audit(spec, result, err)

    def _audit(self, spec: CallSpec, result: CallResult, error: BaseException | None) -> None:
        if self.audit is False or self.audit is None:
            return
        log = self.audit if isinstance(self.audit, AuditLog) else default_audit_log()
        try:
            log.emit(sc.EVENT_AUDIT, {
                sc.REQUEST_ID: result.request_id,
                sc.AUDIT_INPUT: spec.text,
                sc.AUDIT_OUTPUT: result.content,
                sc.GEN_AI_OPERATION_NAME: spec.operation,
                sc.GEN_AI_REQUEST_MODEL: self.primary.model,
                sc.GEN_AI_RESPONSE_MODEL: result.model,
                sc.MODEL_VERSION: result.version,
                sc.USER_ID: spec.user,
                sc.TENANT: spec.tenant,
                sc.ROUTE: spec.route or self.route,
                sc.ARM: result.arm,
                sc.LATENCY_MS: round(result.latency_ms, 3),
                sc.DECISION_PATH: result.decision_path,
                sc.FALLBACK_LEVEL: result.fallback_level,
                sc.FORMAT_OK: result.format_ok,
                sc.CONFIDENCE: result.confidence,
                sc.COST_USD: result.cost,
                sc.ERROR_TYPE: classify_exception(error).error_type if error is not None else None,
            })
        except Exception:  # noqa: BLE001 - auditing must never fail the caller's request
            pass

    # ------------------------------------------------------------------ attributes
    def _base_attributes(self, spec: CallSpec, request_id: str) -> dict[str, Any]:
        # the caller's first: aiwatch's own attributes below (and those set later) win on a clash
        attrs: dict[str, Any] = {
            **caller_attributes(spec.attributes, self.redactor.redact),
            sc.GEN_AI_OPERATION_NAME: spec.operation,
            sc.GEN_AI_PROVIDER_NAME: self.primary.provider,
            sc.GEN_AI_REQUEST_MODEL: self.primary.model,
            sc.REQUEST_ID: request_id,
        }
        route = spec.route or self.route
        if route:
            attrs[sc.ROUTE] = route
        if spec.user:
            attrs[sc.USER_ID] = spec.user
        if spec.tenant:
            attrs[sc.TENANT] = spec.tenant
        req = spec.request if isinstance(spec.request, dict) else {}
        if req.get("temperature") is not None:
            attrs[sc.GEN_AI_REQUEST_TEMPERATURE] = float(req["temperature"])
        max_tokens = req.get("max_tokens") or req.get("max_completion_tokens")
        if max_tokens is not None:
            attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] = int(max_tokens)
        if self.capture_content:
            attrs[sc.GEN_AI_INPUT_MESSAGES] = self.redactor.redact(spec.text)
        return attrs

    def _attempt_attributes(self, spec: CallSpec, backend: Backend, attempt: int, level: str) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: spec.operation,
            sc.GEN_AI_PROVIDER_NAME: backend.provider,
            sc.GEN_AI_REQUEST_MODEL: backend.model,
            sc.ATTEMPT: attempt,
            sc.FALLBACK_LEVEL: level,
        }
        if backend.server_address:
            attrs[sc.SERVER_ADDRESS] = backend.server_address
        if backend.version:
            attrs[sc.MODEL_VERSION] = backend.version
        return attrs

    @staticmethod
    def _response_attributes(span: Any, backend: Backend, response: Response, spec: CallSpec) -> dict[str, Any]:
        """The answer's gen_ai.* attributes; set on `span` unless it is None. Returns them."""
        attrs: dict[str, Any] = {sc.GEN_AI_RESPONSE_MODEL: response.model or backend.model}
        if response.response_id:
            attrs[sc.GEN_AI_RESPONSE_ID] = response.response_id
        if response.finish_reason:
            attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = (response.finish_reason,)
        u = response.usage
        if u.input_tokens or u.output_tokens:
            attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = u.input_tokens
            attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = u.output_tokens
            attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = u.cached_input_tokens
            attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = u.reasoning_tokens
        if span is not None:
            span.set_attributes(attrs)
        return attrs

    @staticmethod
    def _transition_events(span: Any, breaker: Any, since: int) -> None:
        for old, new in breaker.transitions[since:]:
            span.add_event(sc.EVENT_BREAKER_TRANSITION, {"aiwatch.breaker.name": breaker.name, "from": old, "to": new})

    @staticmethod
    def _end_error(span: Any, err: ShimError) -> None:
        span.set_attribute(sc.ERROR_TYPE, err.error_type)
        span.set_attribute(sc.ERROR_CLASS, err.error_class)
        if err.status_code is not None:
            span.set_attribute(sc.HTTP_RESPONSE_STATUS_CODE, err.status_code)
        span.set_status(Status(StatusCode.ERROR, str(err)[:200]))
        span.end()


# ---------------------------------------------------------------------- drivers
def run_sync(gen: Generator[Any, Any, CallOutcome], transport: Transport, clock: Clock) -> CallOutcome:
    """Perform the generator's effects with blocking calls."""
    send: Any = None
    throw: BaseException | None = None
    while True:
        try:
            effect = gen.throw(throw) if throw is not None else gen.send(send)
        except StopIteration as stop:
            return stop.value
        send, throw = None, None
        try:
            if isinstance(effect, Attempt):
                send = transport(effect.backend, effect.spec, effect.timeouts)
            elif isinstance(effect, Sleep):
                clock.sleep(effect.seconds)
            elif isinstance(effect, Hook):
                send = effect.fn(*effect.args, **effect.kwargs)
                if inspect.isawaitable(send):
                    raise TypeError("async hook passed to a sync client; use the async methods")
        except Exception as exc:  # noqa: BLE001 - handed back into the generator to classify
            throw = exc


async def run_async(gen: Generator[Any, Any, CallOutcome], transport: Callable[..., Any], clock: Clock) -> CallOutcome:
    """Perform the generator's effects with awaitable calls (hooks may be sync or async)."""
    send: Any = None
    throw: BaseException | None = None
    while True:
        try:
            effect = gen.throw(throw) if throw is not None else gen.send(send)
        except StopIteration as stop:
            return stop.value
        send, throw = None, None
        try:
            if isinstance(effect, Attempt):
                send = await transport(effect.backend, effect.spec, effect.timeouts)
            elif isinstance(effect, Sleep):
                await clock.asleep(effect.seconds)
            elif isinstance(effect, Hook):
                send = effect.fn(*effect.args, **effect.kwargs)
                if inspect.isawaitable(send):
                    send = await send
        except Exception as exc:  # noqa: BLE001 - handed back into the generator to classify
            throw = exc
