"""`guard`: the shim's protections around any callable (another SDK, a local model, a tool).

    @guard(model="claude-sonnet-4", provider="anthropic", rule_based=canned_answer)
    def ask(prompt: str) -> Message: ...

    result = ask("hello")   # CallResult; result.output is what the function returned

Exceptions are classified by shape (status codes, SDK error names, builtins), so SDK rate limits
and timeouts are retried like the HTTP client's. A sync function runs in a worker thread so the
response timeout can be enforced; a hung call is abandoned (the thread finishes on its own).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from core.pricing import Usage
from shim.engine import AttemptTimeouts, CallSpec, Engine, Response, run_async, run_sync
from shim.errors import ShimError
from shim.result import CallResult
from shim.routing import Backend

_pool: ThreadPoolExecutor | None = None


def _worker_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(64, thread_name_prefix="aiwatch-guard")
    return _pool


def default_extract(value: Any) -> Response:
    """Text, model and usage from common SDK shapes (OpenAI, Anthropic, dicts); str passes through."""
    if isinstance(value, str):
        return Response(content=value, output=value)
    get = value.get if isinstance(value, dict) else (lambda k, d=None: getattr(value, k, d))
    content: Any = None
    choices = get("choices")
    if choices:
        first = choices[0]
        msg = first.get("message") if isinstance(first, dict) else getattr(first, "message", None)
        content = msg.get("content") if isinstance(msg, dict) else getattr(msg, "content", None)
    elif get("content") is not None:
        blocks = get("content")
        if isinstance(blocks, list):   # Anthropic: list of content blocks
            content = "".join((b.get("text") if isinstance(b, dict) else getattr(b, "text", "")) or "" for b in blocks)
        else:
            content = str(blocks)
    usage = get("usage")
    raw = value if isinstance(value, dict) else None
    finish = get("stop_reason")
    return Response(content=content, model=get("model"), response_id=get("id"), finish_reason=finish,
                    usage=Usage.from_openai(usage), raw=raw, output=value)


def _text_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    for v in (*args, *kwargs.values()):
        if isinstance(v, str):
            return v
        if isinstance(v, list) and v and isinstance(v[0], dict) and "content" in v[0]:
            return "\n".join(str(m.get("content", "")) for m in v)
    messages = kwargs.get("messages")
    return str(messages) if messages else ""


def guard(
    fn: Callable[..., Any] | None = None,
    *,
    model: str = "unknown",
    provider: str = "unknown",
    name: str | None = None,
    version: str | None = None,
    extract: Callable[[Any], Response] = default_extract,
    operation: str = "chat",
    fallbacks: list[Backend] | None = None,
    **policies: Any,
) -> Any:
    """Wrap `fn` (sync or async) with retries, timeouts, breaker, fallback, spans and audit.

    The wrapped function takes the same arguments plus optional keyword-only request_id, user,
    session, tenant, route, metadata, attributes (span attributes, as ChatClient.chat), and returns a CallResult. Fallback backends' `call` is invoked with the
    same arguments. Other keyword arguments are Engine policies (retry, timeouts, rule_based ...).
    """

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        primary = Backend(name or str(getattr(f, "__qualname__", "guarded")), model, provider=provider,
                          version=version, call=f)
        engine = Engine(primary, fallbacks=fallbacks, **policies)
        call_kw = ("request_id", "user", "session", "tenant", "route", "latency_budget_ms", "metadata", "attributes")

        def spec_for(args: tuple[Any, ...], kwargs: dict[str, Any]) -> CallSpec:
            own = {k: kwargs.pop(k) for k in call_kw if k in kwargs}
            return CallSpec(request=(args, kwargs), text=_text_of(args, kwargs), operation=operation,
                            hook_args=args, hook_kwargs=kwargs, **own)

        if inspect.iscoroutinefunction(f):
            async def asend(backend: Backend, spec: CallSpec, t: AttemptTimeouts) -> Response:
                args, kwargs = spec.request
                target = backend.call
                if target is None:
                    raise ShimError("validation", f"backend {backend.name} has no callable")
                try:
                    value = await asyncio.wait_for(target(*args, **kwargs), t.read)
                except TimeoutError:
                    raise ShimError("timeout", f"no answer within {t.read:g}s", error_type="timeout") from None
                return extract(value)

            @functools.wraps(f)
            async def awrapper(*args: Any, **kwargs: Any) -> CallResult:
                outcome = await run_async(engine.plan(spec_for(args, kwargs)), asend, engine.clock)
                return outcome.result

            awrapper.engine = engine  # type: ignore[attr-defined]
            return awrapper

        def send(backend: Backend, spec: CallSpec, t: AttemptTimeouts) -> Response:
            args, kwargs = spec.request
            target = backend.call
            if target is None:
                raise ShimError("validation", f"backend {backend.name} has no callable")
            future = _worker_pool().submit(target, *args, **kwargs)
            try:
                value = future.result(timeout=t.read)
            except FutureTimeout:
                future.cancel()
                raise ShimError("timeout", f"no answer within {t.read:g}s", error_type="timeout") from None
            return extract(value)

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> CallResult:
            return run_sync(engine.plan(spec_for(args, kwargs)), send, engine.clock).result

        wrapper.engine = engine  # type: ignore[attr-defined]
        return wrapper

    return decorate(fn) if fn is not None else decorate
