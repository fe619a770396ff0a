"""Body -> rows for one OTLP signal, and the worker pool that runs it off the event loop.

Decoding and mapping are pure CPU work in Python, so the server spreads them over worker
processes (one per core by default); the event loop only moves bytes and the single writer only
appends the Arrow tables the workers return.
"""
from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb

from collectors.content import ContentPolicy, RedactionConfig, build_policy
from collectors.decode import PROTOBUF, BadPayload, inflate, parse
from collectors.logs import convert_logs
from collectors.metrics import convert_metrics
from collectors.scrub import scrub_logs, scrub_metrics, scrub_traces
from collectors.traces import AttributeLimits, Converted, convert_traces


@dataclass(frozen=True)
class Signal:
    name: str
    request_cls: type[Message]
    response_cls: type[Message]
    rejected_field: str        # the partial_success counter of this signal's response
    # Any: each signal's functions take its own request class (request_cls)
    convert: Callable[[Any, ContentPolicy, AttributeLimits], Converted]
    scrub: Callable[[Any, ContentPolicy], None]     # redacts every string it would store, in place


SIGNALS = {
    "traces": Signal("traces", trace_pb.ExportTraceServiceRequest, trace_pb.ExportTraceServiceResponse,
                     "rejected_spans", lambda msg, policy, limits: convert_traces(msg, policy, limits=limits),
                     scrub_traces),
    "logs": Signal("logs", logs_pb.ExportLogsServiceRequest, logs_pb.ExportLogsServiceResponse,
                   "rejected_log_records", lambda msg, policy, _limits: convert_logs(msg, policy), scrub_logs),
    "metrics": Signal("metrics", metrics_pb.ExportMetricsServiceRequest, metrics_pb.ExportMetricsServiceResponse,
                      "rejected_data_points", lambda msg, _policy, _limits: convert_metrics(msg),
                      scrub_metrics),
}


def decode_and_convert(signal_name: str, body: bytes, kind: str, encoding: str | None, max_bytes: int,
                       policy: ContentPolicy, limits: AttributeLimits = AttributeLimits()) -> Converted:
    """Inflate, parse and map one request body; BadPayload (a 4xx) for anything malformed."""
    signal = SIGNALS[signal_name]
    try:
        parsed = parse(inflate(body, encoding, max_bytes), kind, signal.request_cls)
        signal.scrub(parsed.message, policy)
        out = signal.convert(parsed.message, policy, limits)
        if parsed.rejected:  # items that did not parse alone (invalid UTF-8, ...) were left out
            out.rejected += parsed.rejected
            out.messages[:0] = parsed.reasons
        return out
    except BadPayload:
        raise
    except RecursionError:
        raise BadPayload(400, f"{signal_name} payload is nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - never crash on input; say what was wrong
        raise BadPayload(400, f"could not convert {signal_name} payload: {type(exc).__name__}: {exc}") from None


def _warm_up_bodies() -> dict[str, bytes]:
    """One tiny request of each signal."""
    traces = trace_pb.ExportTraceServiceRequest()
    traces.resource_spans.add().scope_spans.add().spans.add(
        trace_id=b"\x01" * 16, span_id=b"\x01" * 8, name="warm-up", start_time_unix_nano=1, end_time_unix_nano=2)
    logs = logs_pb.ExportLogsServiceRequest()
    logs.resource_logs.add().scope_logs.add().log_records.add(time_unix_nano=1).body.string_value = "warm-up"
    metrics = metrics_pb.ExportMetricsServiceRequest()
    metrics.resource_metrics.add().scope_metrics.add().metrics.add(name="warm-up").gauge.data_points.add(
        time_unix_nano=1, as_double=1.0)
    return {"traces": traces.SerializeToString(), "logs": logs.SerializeToString(),
            "metrics": metrics.SerializeToString()}


def warm_up(policy: ContentPolicy, limits: AttributeLimits = AttributeLimits()) -> None:
    """Convert one tiny request of each signal, so the lazy imports of the first conversion
    (pyarrow loads pandas on its first table: seconds on a loaded machine) happen before a worker
    takes requests, not while a request, and every request queued behind it, waits."""
    for name, body in _warm_up_bodies().items():
        decode_and_convert(name, body, PROTOBUF, None, len(body) + 1024, policy, limits)


def freeze_start_up() -> None:
    """Move every object alive now (modules, compiled rules, the prefilter: ~70k) out of the
    collector's reach. A request's conversion allocates and keeps enough objects to set off full
    collections, which otherwise scan all of them each time: about 10 us of the ~60 us per span."""
    gc.collect()
    gc.freeze()


_worker_policy: ContentPolicy | None = None


def _init_worker(parent_pid: int, mode: str, max_content_chars: int, max_attribute_chars: int,
                 redaction: RedactionConfig, database: bytes | None) -> None:
    global _worker_policy
    _worker_policy = build_policy(mode, max_content_chars, max_attribute_chars, redaction, database)
    warm_up(_worker_policy)
    freeze_start_up()
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _exit_with_parent(parent_pid: int) -> None:
    # A server killed with SIGKILL cannot stop its workers; they notice the lost parent and leave.
    while os.getppid() == parent_pid:
        time.sleep(1)
    os._exit(0)


def _ready() -> bool:
    return True


def _convert_in_worker(signal_name: str, body: bytes, kind: str, encoding: str | None, max_bytes: int,
                       limits: AttributeLimits) -> Converted:
    assert _worker_policy is not None
    return decode_and_convert(signal_name, body, kind, encoding, max_bytes, _worker_policy, limits)


class ConversionPool:
    """Runs decode_and_convert in worker processes (workers > 0) or in a thread of this process."""

    def __init__(self, workers: int, policy: ContentPolicy, redaction: RedactionConfig, max_bytes: int,
                 limits: AttributeLimits = AttributeLimits()) -> None:
        self._workers = workers
        self._limits = limits
        self._policy = policy
        # Workers load the compiled prefilter instead of compiling it again (seconds each).
        serialized = getattr(policy.redactor, "serialized", None)
        self._init_args = (os.getpid(), policy.mode, policy.max_content_chars, policy.max_attribute_chars,
                           redaction, serialized() if serialized else None)
        self._max_bytes = max_bytes
        self._pool: ProcessPoolExecutor | None = None
        if workers:
            self._pool = self._new_pool()
        else:
            warm_up(policy, limits)

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the server holds threads (writer, scheduler) and a DuckDB handle.
        pool = ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=self._init_args)
        # Start every worker now, so the first requests do not pay for interpreter start-up.
        for future in [pool.submit(_ready) for _ in range(self._workers)]:
            future.result(120)
        return pool

    async def convert(self, signal_name: str, body: bytes, kind: str, encoding: str | None) -> Converted:
        loop = asyncio.get_running_loop()
        if self._pool is None:
            return await loop.run_in_executor(None, decode_and_convert, signal_name, body, kind, encoding,
                                              self._max_bytes, self._policy, self._limits)
        try:
            return await loop.run_in_executor(self._pool, _convert_in_worker, signal_name, body, kind, encoding,
                                              self._max_bytes, self._limits)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): replace the pool; this request is retried by the client.
            self._pool = self._new_pool()
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
