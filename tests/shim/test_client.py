"""ChatClient against the loopback fake provider: retries, timeouts, breaker, fallback, spans."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fakes.openai_server import Behavior, FakeOpenAI

from core import semconv as sc
from shim import AllLevelsFailed, Backend, ChatClient, CircuitBreaker, FallbackCascade, RetryPolicy, ShimError, Timeouts

MSG = [{"role": "user", "content": "What is the capital of France?"}]


def backend(server: FakeOpenAI, name: str = "primary", model: str = "gpt-4o-mini", **kw: Any) -> Backend:
    return Backend(name, model, base_url=server.base_url, api_key="test-key", version=f"{model}@v1", **kw)


def client(server: FakeOpenAI, clock: Any, *, attempts: int = 3, **kw: Any) -> ChatClient:
    kw.setdefault("timeouts", Timeouts(connect=1, response=2, total=30, stream_heartbeat=0.3))
    kw.setdefault("audit", False)
    primary = kw.pop("primary", None) or backend(server, breaker=CircuitBreaker("primary", clock=clock))
    return ChatClient(primary, retry=RetryPolicy(max_attempts=attempts, base_delay=0.5, random=lambda: 0.5),
                      clock=clock, **kw)


def by_name(spans: Any) -> tuple[Any, list[Any]]:
    finished = spans.get_finished_spans()
    parents = [s for s in finished if sc.ATTEMPT not in (s.attributes or {}) and s.attributes.get(sc.ARM) != "shadow"]
    assert len(parents) == 1, [s.name for s in finished]
    children = sorted((s for s in finished if sc.ATTEMPT in (s.attributes or {})), key=lambda s: s.start_time)
    return parents[0], children


def test_success_spans_and_metadata(server: FakeOpenAI, clock: Any, spans: Any) -> None:
    server.default = Behavior("ok", content="Paris", prompt_tokens=1000, completion_tokens=200, cached_tokens=400)
    result = client(server, clock).chat(MSG, user="u-1", tenant="acme", route="geo-qa", temperature=0.2, max_tokens=50)
    assert result.content == "Paris"
    assert result.fallback_level == "primary" and result.retries == 0
    assert result.tokens.input_tokens == 1000 and result.tokens.cached_input_tokens == 400
    # gpt-4o-mini: 600 * 0.15 + 400 * 0.075 + 200 * 0.60 per million
    assert result.cost == pytest.approx((600 * 0.15 + 400 * 0.075 + 200 * 0.60) / 1e6)
    assert result.version == "gpt-4o-mini@v1" and result.latency_ms > 0 and len(result.request_id) == 32
    assert server.requests[0].headers["X-Request-ID"] == result.request_id
    assert server.requests[0].headers["Authorization"] == "Bearer test-key"

    parent, children = by_name(spans)
    assert parent.name == "chat gpt-4o-mini" and len(children) == 1
    a = parent.attributes
    assert a[sc.GEN_AI_OPERATION_NAME] == "chat" and a[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[sc.GEN_AI_REQUEST_MODEL] == a[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini"
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == 1000 and a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 200
    assert a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 400
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.2 and a[sc.GEN_AI_REQUEST_MAX_TOKENS] == 50
    assert a[sc.REQUEST_ID] == result.request_id and a[sc.USER_ID] == "u-1" and a[sc.TENANT] == "acme"
    assert a[sc.ROUTE] == "geo-qa" and a[sc.ARM] == "baseline" and a[sc.MODEL_VERSION] == "gpt-4o-mini@v1"
    assert a[sc.FALLBACK_LEVEL] == "primary" and a[sc.RETRY_COUNT] == 0 and a[sc.BREAKER_STATE] == "closed"
    assert a[sc.COST_USD] == pytest.approx(result.cost) and a[sc.INJECTION_SCORE] == 0.0
    assert a[sc.COST_PRICE].startswith("genai-prices ") and a[sc.COST_PRICE].endswith("openai/gpt-4o-mini")
    assert children[0].parent.span_id == parent.context.span_id
    assert children[0].attributes[sc.ATTEMPT] == 1 and children[0].attributes[sc.SERVER_ADDRESS] == "127.0.0.1"


def test_429_honours_retry_after(server: FakeOpenAI, clock: Any, spans: Any) -> None:
    server.script(Behavior("429", retry_after=2), "ok")
    result = client(server, clock).chat(MSG)
    assert result.retries == 1 and len(server.requests) == 2
    assert clock.sleeps == [2.0]   # jitter would give 0.25; the server asked for 2 s
    parent, children = by_name(spans)
    assert [c.attributes[sc.ATTEMPT] for c in children] == [1, 2]
    assert children[0].attributes[sc.ERROR_CLASS] == "rate_limit"
    assert children[0].attributes[sc.ERROR_TYPE] == "rate_limit_exceeded"
    assert children[0].attributes[sc.HTTP_RESPONSE_STATUS_CODE] == 429
    assert sc.ERROR_TYPE not in children[1].attributes
    assert parent.attributes[sc.RETRY_COUNT] == 1


def test_500_retried_exactly_max_attempts_with_jitter(server: FakeOpenAI, clock: Any, spans: Any) -> None:
    server.default = Behavior("500")
    with pytest.raises(AllLevelsFailed) as info:
        client(server, clock, attempts=4).chat(MSG)
    assert info.value.error_class == "server"
    assert len(server.requests) == 4
    assert clock.sleeps == [0.25, 0.5, 1.0]    # random()=0.5 times 0.5 * 2**n
    parent, children = by_name(spans)
    assert len(children) == 4 and parent.attributes[sc.ERROR_CLASS] == "server"
    assert parent.status.status_code.name == "ERROR"


@pytest.mark.parametrize("kind,error_class", [("context_length", "token_limit"), ("content_filter", "content_filter"),
                                              ("auth", "auth")])
def test_non_transient_not_retried_but_falls_back(server: FakeOpenAI, clock: Any, spans: Any,
                                                 kind: str, error_class: str) -> None:
    server.script(kind)   # the fallback gets the default "ok"
    fb = backend(server, "fallback", model="gpt-4.1-mini")
    result = client(server, clock, fallbacks=[fb]).chat(MSG)
    assert result.fallback_level == "fallback" and result.model == "gpt-4.1-mini"
    assert [r.body["model"] for r in server.requests] == ["gpt-4o-mini", "gpt-4.1-mini"]
    assert clock.sleeps == []
    parent, children = by_name(spans)
    assert children[0].attributes[sc.ERROR_CLASS] == error_class
    assert children[1].attributes[sc.FALLBACK_LEVEL] == "fallback"
    assert parent.attributes[sc.FALLBACK_LEVEL] == "fallback"
    assert result.decision_path.startswith("primary:") and result.decision_path.endswith(">fallback:ok")


def test_200_with_content_filter_finish_reason_is_an_error(server: FakeOpenAI, clock: Any) -> None:
    server.script(Behavior("ok", content="", finish_reason="content_filter"))
    with pytest.raises(AllLevelsFailed) as info:
        client(server, clock).chat(MSG)
    assert info.value.error_class == "content_filter" and len(server.requests) == 1


def test_hang_times_out_and_retries(server: FakeOpenAI, clock: Any, spans: Any) -> None:
    server.script(Behavior("hang", delay=120), "ok")      # hangs until the server closes: only the timeout ends it
    result = client(server, clock, timeouts=Timeouts(connect=1, response=0.3, total=30)).chat(MSG)
    assert result.retries == 1
    _, children = by_name(spans)
    assert children[0].attributes[sc.ERROR_CLASS] == "timeout"


def test_garbage_body_is_a_transient_server_error(server: FakeOpenAI, clock: Any) -> None:
    server.script("garbage", "ok")
    result = client(server, clock).chat(MSG)
    assert result.retries == 1 and result.content == "Hello from the fake."


def test_connection_refused_is_classified(clock: Any) -> None:
    dead = Backend("dead", "gpt-4o-mini", base_url="http://127.0.0.1:9/v1")
    c = ChatClient(dead, retry=RetryPolicy(max_attempts=2, random=lambda: 0), clock=clock, audit=False)
    with pytest.raises(AllLevelsFailed) as info:
        c.chat(MSG)
    assert info.value.error_class == "connection"


def test_total_cap_stops_retries(server: FakeOpenAI, clock: Any) -> None:
    server.default = Behavior("429", retry_after=20)
    c = client(server, clock, attempts=5, timeouts=Timeouts(total=10))
    with pytest.raises(AllLevelsFailed):
        c.chat(MSG)
    assert len(server.requests) == 1 and clock.sleeps == []   # waiting 20 s would break the 10 s cap


def test_breaker_opens_skips_backend_then_half_open_trial(server: FakeOpenAI, clock: Any, spans: Any) -> None:
    breaker = CircuitBreaker("primary", failure_threshold=2, cooldown=30, clock=clock)
    fb = backend(server, "fallback", model="gpt-4.1-mini")
    c = client(server, clock, attempts=1, primary=backend(server, breaker=breaker), fallbacks=[fb])
    server.script("500", "ok", "500", "ok")   # primary fails, fallback answers, twice
    assert c.chat(MSG).fallback_level == "fallback"
    assert c.chat(MSG).fallback_level == "fallback"
    assert breaker.state == "open"
    opened = [e for s in spans.get_finished_spans() for e in s.events if e.name == sc.EVENT_BREAKER_TRANSITION]
    assert [(e.attributes["from"], e.attributes["to"]) for e in opened] == [("closed", "open")]

    spans.clear()
    n = len(server.requests)
    result = c.chat(MSG)        # breaker open: the primary is not called at all
    assert result.fallback_level == "fallback" and len(server.requests) == n + 1
    assert server.requests[-1].body["model"] == "gpt-4.1-mini"
    _, children = by_name(spans)
    assert children[0].attributes[sc.ERROR_TYPE] == "circuit_open"

    clock.advance(30)
    spans.clear()
    result = c.chat(MSG)        # half-open trial succeeds and closes the breaker
    assert result.fallback_level == "primary" and breaker.state == "closed"
    events = [(e.attributes["from"], e.attributes["to"]) for s in spans.get_finished_spans() for e in s.events]
    assert events == [("open", "half_open"), ("half_open", "closed")]
    assert breaker.transitions == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_cascade_rule_based_then_human(server: FakeOpenAI, clock: Any, spans: Any) -> None:
    server.default = Behavior("500")
    tickets: list[dict[str, Any]] = []
    fb = backend(server, "fallback", model="gpt-4.1-mini")
    c = client(server, clock, attempts=2, cascade=FallbackCascade([fb], rule_based=lambda messages: "Paris (rule)"))
    result = c.chat(MSG)
    assert result.content == "Paris (rule)" and result.fallback_level == "rule_based"
    assert len(server.requests) == 4 and result.retries == 3
    assert result.decision_path == "primary:server_error>fallback:server_error>rule_based:ok"

    def broken_rule(messages: Any) -> str:
        raise RuntimeError("no rule for this")

    c = client(server, clock, attempts=1, cascade=FallbackCascade([], rule_based=broken_rule, human=tickets.append))
    result = c.chat(MSG, user="u-9")
    assert result.fallback_level == "human" and result.content is None
    assert tickets[0]["request_id"] == result.request_id and tickets[0]["user"] == "u-9"

    c = client(server, clock, attempts=1, cascade=FallbackCascade([], human=lambda ticket: "answered by Ana"))
    assert c.chat(MSG).content == "answered by Ana"


def test_async_retries_and_fallback(server: FakeOpenAI, clock: Any, spans: Any) -> None:
    server.script(Behavior("429", retry_after=1), "500", "500", "ok")
    fb = backend(server, "fallback", model="gpt-4.1-mini")
    c = client(server, clock, fallbacks=[fb])

    async def main() -> Any:
        try:
            return await c.achat(MSG)
        finally:
            await c.aclose()

    result = asyncio.run(main())
    assert result.fallback_level == "fallback" and result.retries == 3
    assert clock.sleeps == [1.0, 0.5]
    assert [r.body["model"] for r in server.requests] == ["gpt-4o-mini"] * 3 + ["gpt-4.1-mini"]


def test_async_hang_times_out(server: FakeOpenAI, clock: Any) -> None:
    server.default = Behavior("hang", delay=5)
    c = client(server, clock, attempts=2, timeouts=Timeouts(response=0.2))

    async def main() -> None:
        with pytest.raises(AllLevelsFailed) as info:
            await c.achat(MSG)
        assert info.value.error_class == "timeout"
        await c.aclose()

    asyncio.run(main())
    assert len(server.requests) == 2


def test_stream_with_usage_and_spans(server: FakeOpenAI, clock: Any, spans: Any) -> None:
    server.default = Behavior("ok", content="Paris is the capital.", prompt_tokens=30, completion_tokens=6)
    stream = client(server, clock).stream(MSG)
    text = "".join(stream)
    assert text == "Paris is the capital."
    assert stream.result is not None and stream.result.tokens.output_tokens == 6
    assert server.requests[0].body["stream"] is True
    assert server.requests[0].body["stream_options"] == {"include_usage": True}
    parent, children = by_name(spans)
    assert parent.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 6 and len(children) == 1


def test_stream_stall_before_first_token_is_retried(server: FakeOpenAI, clock: Any) -> None:
    server.script(Behavior("stream_stall", stall_after=0, delay=5), "ok")
    stream = client(server, clock).stream(MSG)
    assert "".join(stream) == "Hello from the fake." and stream.result.retries == 1


def test_stream_stall_mid_stream_is_a_timeout(server: FakeOpenAI, clock: Any, spans: Any) -> None:
    server.script(Behavior("stream_stall", stall_after=2, delay=120))   # silent until closed: the timeout ends it
    stream = client(server, clock).stream(MSG)
    received: list[str] = []
    with pytest.raises(ShimError) as info:
        for piece in stream:
            received.append(piece)
    assert received == ["Hell", "o fr"] and info.value.error_class == "timeout"
    assert stream.result.content == "Hello fr"
    parent, children = by_name(spans)
    assert parent.attributes[sc.ERROR_TYPE] == "stream_stall"
    assert children[0].attributes[sc.ERROR_TYPE] == "stream_stall"


def test_async_stream(server: FakeOpenAI, clock: Any) -> None:
    c = client(server, clock)

    async def main() -> tuple[str, Any]:
        stream = await c.astream(MSG)
        text = "".join([piece async for piece in stream])
        await c.aclose()
        return text, stream.result

    text, result = asyncio.run(main())
    assert text == "Hello from the fake." and result.tokens.input_tokens == 12


def test_caller_attributes_describe_the_input_on_the_span(server: FakeOpenAI, clock: Any, spans: Any,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """What the service knows about the input (language, topic, tier) goes on the call's span for
    the drift analyzer's `attr:` columns; a bad one is left out with one warning, never fails the
    call; strings are redacted and capped; aiwatch's own attributes win a clash."""
    from shim.engine import MAX_ATTRIBUTE_TEXT, MAX_CALLER_ATTRIBUTES

    server.default = Behavior("ok", content="Paris")
    attributes = {sc.INPUT_LANGUAGE: "fr", sc.INPUT_TOPIC: "geography", "tier": 2, "vip": True, "score": 0.5,
                  "note": "mail jane.doe@example.com " + "x" * 5000, sc.ROUTE: "spoofed",
                  "nan": float("nan"), "list": [1, 2], 7: "not a string key", "": "empty key"}
    with caplog.at_level("WARNING", logger="aiwatch.shim"):
        result = client(server, clock).chat(MSG, route="geo-qa", attributes=attributes)
        client(server, clock).chat(MSG, route="geo-qa", attributes=attributes)   # warned once, not per call
    assert result.content == "Paris"
    parent, _ = by_name_first(spans)
    a = parent.attributes
    assert a[sc.INPUT_LANGUAGE] == "fr" and a[sc.INPUT_TOPIC] == "geography"
    assert a["tier"] == 2 and a["vip"] is True and a["score"] == 0.5
    assert a[sc.ROUTE] == "geo-qa"                                # aiwatch's own wins
    assert "jane.doe@example.com" not in a["note"] and len(a["note"]) == MAX_ATTRIBUTE_TEXT
    assert not {"nan", "list", "7", ""} & set(a)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 4 and len(set(warnings)) == 4, warnings
    many = {f"k{i}": i for i in range(MAX_CALLER_ATTRIBUTES + 10)}
    spans.clear()
    client(server, clock).chat(MSG, attributes=many)
    parent, _ = by_name_first(spans)
    assert sum(1 for k in parent.attributes if k.startswith("k")) == MAX_CALLER_ATTRIBUTES


def by_name_first(spans: Any) -> tuple[Any, list[Any]]:
    """The first call's parent span and attempts (several calls were made)."""
    finished = spans.get_finished_spans()
    parents = [s for s in finished if sc.ATTEMPT not in (s.attributes or {})]
    return parents[0], [s for s in finished if sc.ATTEMPT in (s.attributes or {})]
