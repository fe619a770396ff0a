"""A file of recorded OTLP requests: write, read, shift in time, load into a store or send to a server.

Format: gzip of records, each `<signal byte><u32 big-endian length><protobuf bytes>`; the first
record is a JSON header with the period start, so a load can move the whole recording to end now.
"""
from __future__ import annotations

import gzip
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

HEADER, TRACES, LOGS, METRICS = 0, 1, 2, 3
MESSAGES: dict[int, type[Message]] = {TRACES: ExportTraceServiceRequest, LOGS: ExportLogsServiceRequest,
                                      METRICS: ExportMetricsServiceRequest}
PATHS = {TRACES: "/v1/traces", LOGS: "/v1/logs", METRICS: "/v1/metrics"}
_PREFIX = struct.Struct(">BI")


@dataclass(frozen=True)
class Header:
    period_start: datetime
    days: float
    scenario: str
    seed: int


class Recorder:
    def __init__(self, path: str | Path, header: Header) -> None:
        self._file: gzip.GzipFile = gzip.open(path, "wb", compresslevel=9)
        meta = {"period_start": header.period_start.isoformat(), "days": header.days,
                "scenario": header.scenario, "seed": header.seed}
        self._put(HEADER, json.dumps(meta).encode())

    def _put(self, signal: int, payload: bytes) -> None:
        self._file.write(_PREFIX.pack(signal, len(payload)))
        self._file.write(payload)

    def add(self, signal: int, msg: Message) -> None:
        self._put(signal, msg.SerializeToString())

    def close(self) -> None:
        self._file.close()


def read(path: str | Path) -> tuple[Header, Iterator[tuple[int, bytes]]]:
    f = gzip.open(path, "rb")
    first = _next(f)
    if first is None or first[0] != HEADER:
        raise ValueError(f"{path}: not an aiwatch OTLP recording (no header)")
    meta = json.loads(first[1])
    header = Header(datetime.fromisoformat(meta["period_start"]), meta["days"], meta["scenario"], meta["seed"])

    def records() -> Iterator[tuple[int, bytes]]:
        with f:
            while True:
                item = _next(f)
                if item is None:
                    return
                yield item
    return header, records()


def _next(f: gzip.GzipFile) -> tuple[int, bytes] | None:
    prefix = f.read(_PREFIX.size)
    if not prefix:
        return None
    signal, length = _PREFIX.unpack(prefix)
    return signal, f.read(length)


def shift(signal: int, msg: Any, delta_ns: int) -> None:
    """Move every timestamp in the message by delta_ns, in place."""
    if not delta_ns:
        return
    if signal == TRACES:
        for rs in msg.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    span.start_time_unix_nano += delta_ns
                    span.end_time_unix_nano += delta_ns
                    for ev in span.events:
                        ev.time_unix_nano += delta_ns
    elif signal == LOGS:
        for rl in msg.resource_logs:
            for sl in rl.scope_logs:
                for rec in sl.log_records:
                    if rec.time_unix_nano:
                        rec.time_unix_nano += delta_ns
                    if rec.observed_time_unix_nano:
                        rec.observed_time_unix_nano += delta_ns
    elif signal == METRICS:
        for rm in msg.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.WhichOneof("data")
                    if kind:
                        for p in getattr(metric, kind).data_points:
                            p.time_unix_nano += delta_ns
                            if p.start_time_unix_nano:
                                p.start_time_unix_nano += delta_ns
