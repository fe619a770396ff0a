"""Shared fixtures for the shim tests: the loopback fake provider, in-memory OTel exporters and an
injectable clock, so no test sleeps for real or leaves the machine."""

from __future__ import annotations

import sys
from pathlib import Path

import shim  # noqa: F401 - import the real package before tests/ (which holds tests/shim) joins sys.path

sys.path.insert(0, str(Path(__file__).parents[1]))   # makes tests/fakes importable as `fakes`
sys.path.insert(0, str(Path(__file__).parent))        # makes redaction_corpus importable

import time
from collections.abc import Iterator

import pytest
from fakes.openai_server import FakeOpenAI
from opentelemetry import _logs as otel_logs
from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_SPANS = InMemorySpanExporter()
_LOGS = InMemoryLogRecordExporter()
_tp = TracerProvider()
_tp.add_span_processor(SimpleSpanProcessor(_SPANS))
trace.set_tracer_provider(_tp)
_lp = LoggerProvider()
_lp.add_log_record_processor(SimpleLogRecordProcessor(_LOGS))
otel_logs.set_logger_provider(_lp)


class FakeClock:
    """Real monotonic time plus whatever the code under test 'slept'; sleeps return at once."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.offset += max(0.0, seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _SPANS.clear()
    yield _SPANS
    _SPANS.clear()


@pytest.fixture
def logs() -> Iterator[InMemoryLogRecordExporter]:
    _LOGS.clear()
    yield _LOGS
    _LOGS.clear()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as s:
        yield s
