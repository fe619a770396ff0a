"""Latency the shim adds per call, against the loopback fake, compared with the bare httpx call.

Both paths use one keep-alive httpx.Client against the same fake provider in the same run, with an
SDK TracerProvider whose spans go to a no-op exporter (so span creation is counted, not export).
Calls alternate between the two paths so drift in the machine affects both equally.

Then the two timings the unit tests no longer assert (they prove the behaviour without a clock):
the caller's latency with a shadow candidate that never answers (was `elapsed < 0.5` for 5 calls in
tests/shim/test_routing.py), and how long `@guard` takes to answer from its rule-based fallback when
the wrapped call hangs, with a 0.2 s response timeout (was `< 0.9 s` in tests/shim/test_guard.py).
Run: .venv/bin/python bench/shim_overhead.py [n]
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import httpx
from opentelemetry import _logs as otel_logs
from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(_ROOT), str(_ROOT / "tests")]   # repo first, or tests/shim would shadow the shim package
from fakes.openai_server import FakeOpenAI  # noqa: E402

import shim  # noqa: E402


class NullExporter(SpanExporter):
    def export(self, spans):  # type: ignore[no-untyped-def]
        return SpanExportResult.SUCCESS


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main(n: int = 2000) -> None:
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(NullExporter()))
    trace.set_tracer_provider(tp)
    otel_logs.set_logger_provider(LoggerProvider())   # audit events processed, not exported
    import time

    messages = [{"role": "user", "content": "What is the capital of France? My id is 12345."}]
    with FakeOpenAI() as server:
        http = httpx.Client()
        client = shim.ChatClient(shim.Backend("fake", "gpt-4o-mini", base_url=server.base_url, api_key="k"),
                                 http=http, audit=shim.AuditLog(otlp=True))
        url = server.base_url + "/chat/completions"
        payload = {"model": "gpt-4o-mini", "messages": messages}
        headers = {"Authorization": "Bearer k"}
        for _ in range(200):   # warm-up: connections, imports, regex caches
            http.post(url, json=payload, headers=headers).json()
            client.chat(messages)
        bare, guarded = [], []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            http.post(url, json=payload, headers=headers).json()
            bare.append((time.perf_counter_ns() - t0) / 1000)
            t0 = time.perf_counter_ns()
            client.chat(messages)
            guarded.append((time.perf_counter_ns() - t0) / 1000)
    for name, xs in (("bare httpx", bare), ("shim", guarded)):
        print(f"{name:10s} p50={statistics.median(xs):8.1f} us  p99={percentile(xs, 0.99):8.1f} us")
    print(f"{'overhead':10s} p50={statistics.median(guarded) - statistics.median(bare):8.1f} us  "
          f"p99={percentile(guarded, 0.99) - percentile(bare, 0.99):8.1f} us  (target: < 100 us at p50)")


def timeouts(calls: int = 5) -> None:
    import threading
    import time

    from fakes.openai_server import Behavior

    messages = [{"role": "user", "content": "hi"}]
    with FakeOpenAI() as primary, FakeOpenAI() as candidate:
        candidate.default = Behavior("hang", delay=60)
        shadow = shim.ShadowMode(shim.Backend("cand", "gpt-4.1-mini", base_url=candidate.base_url), timeout=60,
                                 max_concurrency=2)
        client = shim.ChatClient(shim.Backend("cloud", "gpt-4o-mini", base_url=primary.base_url), audit=False,
                                 retry=shim.RetryPolicy(max_attempts=1), shadow=shadow)
        client.chat(messages)   # warm-up
        t0 = time.perf_counter()
        for _ in range(calls):
            client.chat(messages)
        took = time.perf_counter() - t0
        candidate.release()
        shadow.wait(timeout=10)
        client.close()
    print(f"shadow that never answers: {calls} caller calls in {took * 1000:.1f} ms (the tests' old bound: 500 ms)")

    release = threading.Event()

    @shim.guard(model="m", audit=False, timeouts=shim.Timeouts(response=0.2),
                retry=shim.RetryPolicy(max_attempts=2, random=lambda: 0), rule_based=lambda q: f"canned: {q}")
    def hung(q: str) -> str:
        release.wait(30)
        return "late"

    t0 = time.perf_counter()
    result = hung("hi")
    took = time.perf_counter() - t0
    release.set()
    print(f"guard, 0.2 s response timeout, hung call: {result.content!r} after {took * 1000:.0f} ms "
          "(the tests' old bound: 900 ms)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
    timeouts()
