"""A guarded client for OpenAI-compatible chat completion endpoints (OpenAI, vLLM, TGI, Ollama ...).

`ChatClient.chat` / `achat` return a CallResult; `stream` / `astream` return an iterator of text
deltas whose `.result` is filled when the stream ends. Retries and fallbacks happen only before the
first token reaches the caller; after that a stall (no chunk for stream_heartbeat seconds) ends
the stream with a timeout ShimError.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from core.pricing import Usage
from shim.engine import AttemptTimeouts, CallOutcome, CallSpec, Engine, Response, run_async, run_sync
from shim.errors import ShimError, classify_exception, classify_http
from shim.result import CallResult
from shim.routing import Backend

Messages = list[dict[str, Any]]


def _input_text(messages: Messages) -> str:
    parts = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):   # multimodal parts: keep the text ones
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "\n".join(parts)


def _httpx_timeout(t: AttemptTimeouts) -> httpx.Timeout:
    return httpx.Timeout(connect=t.connect, read=t.read, write=t.read, pool=t.connect)


def _request(backend: Backend, spec: CallSpec) -> tuple[str, dict[str, Any], dict[str, str]]:
    if not backend.base_url:
        raise ShimError("validation", f"backend {backend.name} has no base_url")
    url = backend.base_url.rstrip("/") + "/chat/completions"
    payload = {**spec.request, "model": backend.model}
    if spec.stream:
        payload["stream"] = True
        payload.setdefault("stream_options", {"include_usage": True})
    headers = {"X-Request-ID": spec.request_id or "", **backend.headers}
    if backend.api_key:
        headers["Authorization"] = f"Bearer {backend.api_key}"
    return url, payload, headers


def _parse_completion(r: httpx.Response) -> Response:
    if r.status_code >= 400:
        try:
            body: Any = r.json()
        except ValueError:
            body = r.text
        raise classify_http(r.status_code, body, r.headers)
    try:
        data = r.json()
        choice = data["choices"][0]
        content = choice["message"].get("content")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ShimError("server", f"malformed response: {exc!r}", error_type="invalid_response") from None
    finish = choice.get("finish_reason")
    if finish == "content_filter":
        raise ShimError("content_filter", "answer withheld by the provider's content filter",
                        error_type="content_filter")
    return Response(content=content, model=data.get("model"), response_id=data.get("id"),
                    finish_reason=finish, usage=Usage.from_openai(data.get("usage")), raw=data)


class _StreamState:
    """Accumulates SSE chunks into text, finish reason, usage and logprobs."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.model: str | None = None
        self.response_id: str | None = None
        self.finish_reason: str | None = None
        self.usage = Usage()
        self.logprobs: list[dict[str, Any]] = []
        self.done = False

    def feed_line(self, line: str) -> str | None:
        """Consume one SSE line; return the text delta it carried, if any."""
        if not line.startswith("data:"):
            return None
        data = line[5:].strip()
        if data == "[DONE]":
            self.done = True
            return None
        try:
            chunk = json.loads(data)
        except ValueError:
            raise ShimError("server", "malformed stream chunk", error_type="invalid_response") from None
        if isinstance(chunk, dict) and "error" in chunk:
            raise classify_http(500, chunk)
        self.model = chunk.get("model") or self.model
        self.response_id = chunk.get("id") or self.response_id
        if chunk.get("usage"):
            self.usage = Usage.from_openai(chunk["usage"])
        delta_text = None
        for choice in chunk.get("choices") or []:
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
                if self.finish_reason == "content_filter" and not self.parts:
                    raise ShimError("content_filter", "stream withheld by content filter", error_type="content_filter")
            lp = choice.get("logprobs") or {}
            self.logprobs.extend(lp.get("content") or [])
            text = (choice.get("delta") or {}).get("content")
            if text:
                self.parts.append(text)
                delta_text = text
        return delta_text

    def response(self, stream: Any = None) -> Response:
        raw = {"choices": [{"logprobs": {"content": self.logprobs}}]} if self.logprobs else {}
        return Response(content="".join(self.parts), model=self.model, response_id=self.response_id,
                        finish_reason=self.finish_reason, usage=self.usage, raw=raw, stream=stream)


class ChatClient:
    """Guarded chat completions against one or more OpenAI-compatible backends.

    All policies (fallbacks, retry, timeouts, router, canary, shadow, kill switch, validator,
    confidence, prices, audit, redactor, injection threshold, clock) are keyword arguments passed
    to the Engine; see shim.engine.Engine for their meaning.
    """

    def __init__(self, primary: Backend, *, http: httpx.Client | None = None,
                 ahttp: httpx.AsyncClient | None = None, operation: str = "chat", **policies: Any) -> None:
        self.engine = Engine(primary, **policies)
        self.operation = operation
        self._http = http
        self._ahttp = ahttp

    # --- lazily created connection pools (keep-alive matters for overhead) ---
    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))
        return self._http

    @property
    def ahttp(self) -> httpx.AsyncClient:
        if self._ahttp is None:
            self._ahttp = httpx.AsyncClient(limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))
        return self._ahttp

    def close(self) -> None:
        if self.engine.shadow is not None:
            self.engine.shadow.wait()
        if self._http is not None:
            self._http.close()

    async def aclose(self) -> None:
        if self.engine.shadow is not None:   # let running shadows finish before their pool closes
            await self.engine.shadow.await_tasks()
        if self._ahttp is not None:
            await self._ahttp.aclose()

    def _spec(self, messages: Messages, stream: bool, *, request_id: str | None = None, user: str | None = None,
              session: str | None = None, tenant: str | None = None, route: str | None = None,
              latency_budget_ms: float | None = None, metadata: dict[str, Any] | None = None,
              attributes: dict[str, Any] | None = None, **params: Any) -> CallSpec:
        return CallSpec(request={"messages": messages, **params}, text=_input_text(messages),
                        operation=self.operation, stream=stream, request_id=request_id, user=user,
                        session=session, tenant=tenant, route=route, latency_budget_ms=latency_budget_ms,
                        hook_args=(messages,), metadata=metadata or {}, attributes=attributes or {})

    # --- sync ---
    def chat(self, messages: Messages, **kwargs: Any) -> CallResult:
        """One guarded chat completion. kwargs: request_id, user, session, tenant, route,
        latency_budget_ms, metadata (for the router), attributes (span attributes describing the
        input, e.g. {"aiwatch.input.language": "de"}: what the drift analyzer's `attr:` columns
        watch), and any OpenAI parameter (temperature, max_tokens, ...)."""
        spec = self._spec(messages, False, **kwargs)
        outcome = run_sync(self.engine.plan(spec), self._send, self.engine.clock)
        self._shadow_sync(outcome)
        return outcome.result

    def stream(self, messages: Messages, **kwargs: Any) -> ChatStream:
        spec = self._spec(messages, True, **kwargs)
        return ChatStream(self, run_sync(self.engine.plan(spec), self._send, self.engine.clock))

    def _send(self, backend: Backend, spec: CallSpec, t: AttemptTimeouts) -> Response:
        url, payload, headers = _request(backend, spec)
        if not spec.stream:
            return _parse_completion(self.http.post(url, json=payload, headers=headers, timeout=_httpx_timeout(t)))
        r = self.http.send(self.http.build_request("POST", url, json=payload, headers=headers,
                                                   timeout=_httpx_timeout(t)), stream=True)
        try:
            if r.status_code >= 400:
                r.read()
                _parse_completion(r)   # raises the classified error
            lines = r.iter_lines()
            state = _StreamState()
            for line in lines:        # prefetch up to the first token: failures before it are retryable
                if state.feed_line(line) or state.done:
                    break
        except BaseException:
            r.close()
            raise
        return state.response(stream=(r, lines, state))

    def _shadow_sync(self, outcome: CallOutcome) -> None:
        shadow = self.engine.shadow
        if shadow is None or outcome.result.fallback_level != "primary":
            return
        spec = outcome.spec
        span = outcome.span

        def run() -> None:
            t0 = time.monotonic()
            sspan = shadow.start_span(span, self.operation, spec.request_id)
            t = AttemptTimeouts(connect=min(self.engine.timeouts.connect, shadow.timeout),
                                read=shadow.timeout, deadline=float("inf"))
            try:
                resp = self._send(shadow.candidate, CallSpec(**{**spec.__dict__, "stream": False}), t)
            except BaseException as exc:  # noqa: BLE001 - a shadow failure is recorded, never raised
                shadow.end_span(sspan, error=exc, latency_ms=(time.monotonic() - t0) * 1000)
                return
            shadow.end_span(sspan, resp, cost=self.engine.prices.cost(resp.model or shadow.candidate.model, resp.usage),
                            latency_ms=(time.monotonic() - t0) * 1000)

        shadow.submit(run)

    # --- async ---
    async def achat(self, messages: Messages, **kwargs: Any) -> CallResult:
        spec = self._spec(messages, False, **kwargs)
        outcome = await run_async(self.engine.plan(spec), self._asend, self.engine.clock)
        self._shadow_async(outcome)
        return outcome.result

    async def astream(self, messages: Messages, **kwargs: Any) -> AsyncChatStream:
        spec = self._spec(messages, True, **kwargs)
        return AsyncChatStream(self, await run_async(self.engine.plan(spec), self._asend, self.engine.clock))

    async def _asend(self, backend: Backend, spec: CallSpec, t: AttemptTimeouts) -> Response:
        url, payload, headers = _request(backend, spec)
        if not spec.stream:
            r = await self.ahttp.post(url, json=payload, headers=headers, timeout=_httpx_timeout(t))
            return _parse_completion(r)
        r = await self.ahttp.send(self.ahttp.build_request("POST", url, json=payload, headers=headers,
                                                           timeout=_httpx_timeout(t)), stream=True)
        try:
            if r.status_code >= 400:
                await r.aread()
                _parse_completion(r)
            lines = r.aiter_lines()
            state = _StreamState()
            async for line in lines:
                if state.feed_line(line) or state.done:
                    break
        except BaseException:
            await r.aclose()
            raise
        return state.response(stream=(r, lines, state))

    def _shadow_async(self, outcome: CallOutcome) -> None:
        shadow = self.engine.shadow
        if shadow is None or outcome.result.fallback_level != "primary":
            return
        spec, span = outcome.spec, outcome.span

        async def run() -> None:
            t0 = time.monotonic()
            sspan = shadow.start_span(span, self.operation, spec.request_id)
            t = AttemptTimeouts(connect=min(self.engine.timeouts.connect, shadow.timeout),
                                read=shadow.timeout, deadline=float("inf"))
            try:
                resp = await self._asend(shadow.candidate, CallSpec(**{**spec.__dict__, "stream": False}), t)
            except BaseException as exc:  # noqa: BLE001
                shadow.end_span(sspan, error=exc, latency_ms=(time.monotonic() - t0) * 1000)
                return
            shadow.end_span(sspan, resp, cost=self.engine.prices.cost(resp.model or shadow.candidate.model, resp.usage),
                            latency_ms=(time.monotonic() - t0) * 1000)

        shadow.submit_async(run)


def _stall(exc: BaseException) -> ShimError:
    if isinstance(exc, ShimError):
        return exc
    if isinstance(exc, httpx.ReadTimeout):
        return ShimError("timeout", "stream stalled: no chunk within the heartbeat", error_type="stream_stall")
    return classify_exception(exc)


class ChatStream:
    """Iterate for text deltas; `result` is the CallResult once the stream has ended."""

    def __init__(self, client: ChatClient, outcome: CallOutcome) -> None:
        self._client = client
        self._outcome = outcome
        self.result: CallResult | None = None
        self._finished = False

    def __iter__(self) -> Iterator[str]:
        outcome = self._outcome
        resp = outcome.response
        if resp is None:   # answered by the rule-based or human level
            if outcome.result.content:
                yield outcome.result.content
            self._finish(None, None)
            return
        r, lines, state = resp.stream
        if resp.content:
            yield resp.content
        try:
            deadline = outcome.started + self._client.engine.timeouts.total
            for line in lines:
                delta = state.feed_line(line)
                if delta:
                    yield delta
                if self._client.engine.clock.now() > deadline:
                    raise ShimError("timeout", "total time cap reached mid-stream", error_type="total_timeout")
        except BaseException as exc:
            err = _stall(exc)
            self._finish(state, err)
            raise err from None
        finally:
            r.close()
        self._finish(state, None)

    def _finish(self, state: Any, error: BaseException | None) -> None:
        if self._finished:
            return
        self._finished = True
        self.result = _finish_stream(self._client.engine, self._outcome, state, error)

    def close(self) -> None:
        """Stop early: close the connection and record what was received."""
        if self._outcome.response is not None:
            self._outcome.response.stream[0].close()
            self._finish(self._outcome.response.stream[2], None)
        else:
            self._finish(None, None)

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncChatStream:
    """`async for` text deltas; `result` is the CallResult once the stream has ended."""

    def __init__(self, client: ChatClient, outcome: CallOutcome) -> None:
        self._client = client
        self._outcome = outcome
        self.result: CallResult | None = None
        self._finished = False

    async def __aiter__(self) -> AsyncIterator[str]:
        outcome = self._outcome
        resp = outcome.response
        if resp is None:
            if outcome.result.content:
                yield outcome.result.content
            self._finish(None, None)
            return
        r, lines, state = resp.stream
        if resp.content:
            yield resp.content
        try:
            async for line in lines:
                delta = state.feed_line(line)
                if delta:
                    yield delta
        except BaseException as exc:
            err = _stall(exc)
            self._finish(state, err)
            raise err from None
        finally:
            await r.aclose()
        self._finish(state, None)

    def _finish(self, state: Any, error: BaseException | None) -> None:
        if not self._finished:
            self._finished = True
            self.result = _finish_stream(self._client.engine, self._outcome, state, error)

    async def aclose(self) -> None:
        if self._outcome.response is not None:
            await self._outcome.response.stream[0].aclose()
            self._finish(self._outcome.response.stream[2], None)
        else:
            self._finish(None, None)


def _finish_stream(engine: Engine, outcome: CallOutcome, state: Any, error: BaseException | None) -> CallResult:
    response = None
    if state is not None:
        response = state.response()
        outcome.result.content = response.content
        outcome.result.model = response.model or outcome.result.model
        if engine.validator is not None and error is None:
            outcome.result.format_ok = engine.validator.check(response.content)
        attempt_span = getattr(outcome.response, "_attempt_span", None)
        if attempt_span is not None:
            if error is not None:
                engine._end_error(attempt_span, classify_exception(error))
            else:
                attempt_span.end()
        if error is not None:
            outcome.path.append(f"stream:{classify_exception(error).error_type}")
    return engine.finish(outcome, response, error)
