"""Live demo traffic: a shimmed service calling the loopback fake provider, with a live incident.

The service `support-bot` calls through the real shim (retries, breaker, canary, feedback, audit)
and exports over OTLP to the server, so the dashboard's graphs move. Each call's input size and
categories, output size, confidence and latency are drawn as the sample draws that route where
the sample ends (sample_data.generate.draw_one), so the live calls continue the sample rather than
look like an input drift of their own. A scripted incident (the provider rejecting a share of
calls for a few minutes) starts after `incident_after_s`, so a P1 fires and later resolves while
you watch.
"""
from __future__ import annotations

import logging
import math
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from core import semconv as sc
from core.clock import utcnow
from sample_data.fake_provider import Behavior, FakeOpenAI
from sample_data.generate import draw_one

log = logging.getLogger(__name__)

QUESTIONS = ["Where is my order {n}?", "How do I change the e-mail on my account?", "My invoice {n} looks wrong",
             "Can I return item {n} after 30 days?", "Summarise ticket {n} for the handover please"]


@dataclass
class LiveIncident:
    after_s: float = 180.0      # when the provider starts failing
    duration_s: float = 300.0   # how long it fails
    failure_share: float = 0.35  # share of calls answered 401 (not retried: every one is a failed call)

    def active(self, elapsed: float) -> bool:
        return self.after_s <= elapsed < self.after_s + self.duration_s


class BackgroundTraffic:
    """The sample's other services keep sending, a minute of seeded traffic at a time, so the demo
    shows one incident rather than every other service falling silent."""

    def __init__(self, server_url: str, exclude: str = "support-bot", seed: int = 12) -> None:
        from dataclasses import replace

        from sample_data.scenario import load_scenario

        scenario = load_scenario()
        self.scenario = replace(scenario, days=1 / (24 * 60), incidents=(),
                                services=tuple(s for s in scenario.services if s.name != exclude))
        self.server_url = server_url
        self.seed = seed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aiwatch-demo-background", daemon=True)

    def start(self) -> BackgroundTraffic:
        self._thread.start()
        return self

    def _run(self) -> None:

        from sample_data.generate import draw, encode
        from sample_data.loader import HttpSink
        from sample_data.otlpfile import LOGS, TRACES

        sink = HttpSink(self.server_url)
        minute = 0
        try:
            while not self._stop.is_set():
                start = utcnow().replace(second=0, microsecond=0)
                calls = self._minute_of_traffic(draw, start, minute)
                for batch in encode(calls, seed=self.seed + minute) if calls is not None else ():
                    sink.send(TRACES, batch.traces)
                    sink.send(LOGS, batch.logs)
                minute += 1
                self._stop.wait(60)
        except Exception:  # noqa: BLE001 - the demo goes on without the background services
            log.exception("background demo traffic stopped")
        finally:
            sink.close()

    def _minute_of_traffic(self, draw, start, minute: int):
        # At night a service's rate is below one call a minute; a quiet minute for every service in
        # a short demo would look like an outage, so redraw until each service has a call.
        wanted = {s.name for s in self.scenario.services}
        calls = None
        for attempt in range(20):
            calls = draw(self.scenario, start, seed=(self.seed + minute) * 100 + attempt)
            if calls is not None and set(calls.service) >= wanted:
                break
        return calls

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


class LiveTraffic:
    def __init__(self, server_url: str, rate_per_s: float = 3.0, incident: LiveIncident | None = None,
                 seed: int = 11, service: str = "support-bot", provider_port: int = 0) -> None:
        from sample_data.scenario import load_scenario

        self.scenario = load_scenario()
        self.routes = {r.name: r.weight for s in self.scenario.services if s.name == service for r in s.routes}
        self.sample_end_minute = int(self.scenario.days * 24 * 60) - 1
        self.draws = np.random.default_rng(seed)
        self._draw_lock = threading.Lock()          # calls run on a thread pool; a Generator is not thread-safe
        self._drawn: dict[int, dict[str, Any]] = {}   # call number (sent as the OpenAI `seed`) -> its draw
        self.server_url = server_url
        self.rate = rate_per_s
        self.incident = incident or LiveIncident()
        self.service = service
        self.rng = random.Random(seed)
        self.calls = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self.fake = FakeOpenAI(record=False, port=provider_port)
        self.fake.chooser = self._behavior

    def _behavior(self, body: dict) -> Behavior:
        elapsed = time.monotonic() - self._started
        if self.incident.active(elapsed) and self.rng.random() < self.incident.failure_share:
            return Behavior("auth")
        drawn = self._drawn.get(body.get("seed"))  # type: ignore[arg-type]
        if drawn is None:   # a call from elsewhere (the README's shim example): a plain answer
            return Behavior("slow", delay=0.5, content="Here is what I found.", prompt_tokens=650,
                            completion_tokens=180)
        if not drawn["ok"]:   # the sample's background failures (after its retries), as a provider fails
            kind = {429: "rate_limit", 500: "server"}.get(int(drawn["http_status"]), "hang")
            return Behavior(kind, retry_after=0.05, delay=12.0)   # hang: past the client's 10 s response timeout
        # one token whose logprob gives the drawn confidence (the shim's default hook: exp(mean logprob))
        return Behavior("slow", delay=min(float(drawn["latency_ms"]) / 1000, 8.0), content="Here is what I found.",
                        prompt_tokens=int(drawn["input_tokens"]), completion_tokens=max(int(drawn["output_tokens"]), 1),
                        logprobs=[math.log(max(float(drawn["confidence"]), 1e-6))])

    def start(self) -> LiveTraffic:
        from shim import Backend, CanaryRouter, ChatClient, RetryPolicy, Timeouts, record_feedback, setup_telemetry

        self.fake.start()
        setup_telemetry(endpoint=self.server_url, service_name=self.service, service_version="2.4.1",
                        environment="demo")
        base = self.fake.base_url
        answer = ChatClient(
            Backend("primary", "gpt-4o-mini", base_url=base, api_key="sk-demo", version="2025-01"),
            canary=CanaryRouter(Backend("canary", "gpt-4o-mini", base_url=base, api_key="sk-demo", version="2025-03"),
                                percent=10),
            retry=RetryPolicy(max_attempts=2, base_delay=0.05), timeouts=Timeouts(response=10, total=20),
            route="answer")
        summarize = ChatClient(Backend("primary", "gpt-4o", base_url=base, api_key="sk-demo", version="2024-11"),
                               retry=RetryPolicy(max_attempts=2, base_delay=0.05), route="summarize")
        self._record_feedback = record_feedback
        self._clients = {"answer": answer, "summarize": summarize}
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="aiwatch-demo-traffic", daemon=True)
        self._thread.start()
        return self

    def _one_call(self, n: int) -> None:
        route = self.rng.choices(list(self.routes), list(self.routes.values()))[0]
        with self._draw_lock:
            drawn = draw_one(self.scenario, self.service, route, self.sample_end_minute, self.draws)
        self._drawn[n] = drawn
        question = self.rng.choice(QUESTIONS).format(n=n)
        try:
            result = self._clients[route].chat(
                [{"role": "user", "content": question}], user=f"user-{self.rng.randrange(300):03d}", seed=n,
                attributes={sc.INPUT_LANGUAGE: str(drawn["language"]), sc.INPUT_TOPIC: str(drawn["topic"])})
        except Exception:  # noqa: BLE001 - a failed call is part of the show; the span records it
            self.failures += 1
            return
        finally:
            self.calls += 1
            self._drawn.pop(n, None)
        action = str(drawn["review"])   # reviewed as the sample reviews the route ("" = not reviewed)
        if action:
            self._record_feedback(result.request_id, action=action, reviewer=f"reviewer-{n % 5}",
                                  reason=None if action == "accepted" else "tone")

    def _run(self) -> None:
        with ThreadPoolExecutor(8, thread_name_prefix="demo-call") as pool:
            n = 0
            while not self._stop.is_set():
                try:
                    pool.submit(self._one_call, n)
                except RuntimeError:    # the interpreter is exiting
                    break
                n += 1
                self._stop.wait(self.rng.expovariate(self.rate))

    def status(self) -> str:
        elapsed = time.monotonic() - self._started
        state = "INCIDENT: provider rejecting calls" if self.incident.active(elapsed) else "healthy"
        return f"live traffic: {self.calls} calls, {self.failures} failed ({state})"

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        from opentelemetry import _logs, trace

        for provider in (trace.get_tracer_provider(), _logs.get_logger_provider()):
            if hasattr(provider, "shutdown"):
                provider.shutdown()
        self.fake.close()
