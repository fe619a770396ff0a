"""Put OTLP messages into aiwatch: straight into a store (no server running) or over OTLP/HTTP."""
from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import httpx

from collectors.content import ContentPolicy, default_policy
from collectors.logs import convert_logs
from collectors.metrics import convert_metrics
from collectors.traces import convert_traces
from sample_data.otlpfile import LOGS, METRICS, PATHS, TRACES


class Sink(Protocol):
    def send(self, signal: int, msg: Any) -> int: ...
    def flush(self) -> None: ...   # everything sent is stored when it returns
    def close(self) -> None: ...


class StoreSink:
    """Writes through the collectors' converters and the store's single writer (server not running).

    Commits overlap the next message's conversion: up to `IN_FLIGHT` batches wait for the writer."""

    IN_FLIGHT = 4

    def __init__(self, db_path: str | Path, policy: ContentPolicy | None = None) -> None:
        """`db_path`: the settings' db_path (the wiring passes it; this stage does not read settings)."""
        from collections import deque

        from store.db import Store

        self.store = Store(Path(db_path))
        self.policy = policy or default_policy()
        self._pending: deque = deque()

    def send(self, signal: int, msg: Any) -> int:
        if signal == TRACES:
            converted = convert_traces(msg, self.policy)
        elif signal == LOGS:
            converted = convert_logs(msg, self.policy)
        else:
            converted = convert_metrics(msg)
        self._pending.append(self.store.writer.submit(converted.tables))
        while len(self._pending) > self.IN_FLIGHT:   # a failed commit raises here, as a blocking write would
            self._pending.popleft().result(60)
        return converted.accepted

    def flush(self) -> None:
        while self._pending:
            self._pending.popleft().result(60)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.store.close()


class HttpSink:
    """POSTs protobuf OTLP to a running server, retrying on 429/503 as the OTLP spec asks."""

    def __init__(self, url: str, token: str = "", timeout: float = 60) -> None:
        headers = {"content-type": "application/x-protobuf"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self.client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    def send(self, signal: int, msg: Any) -> int:
        body = msg.SerializeToString()
        for attempt in range(10):
            r = self.client.post(PATHS[signal], content=body)
            if r.status_code in (429, 503):
                time.sleep(float(r.headers.get("retry-after", "1")) * (1 + attempt * 0.5))
                continue
            if r.status_code >= 400:
                raise RuntimeError(f"{PATHS[signal]} answered {r.status_code}: {r.text[:300]}")
            return 1
        raise RuntimeError(f"{PATHS[signal]} stayed overloaded after 10 tries")

    def flush(self) -> None:
        """Each send was acknowledged: nothing is waiting."""

    def close(self) -> None:
        self.client.close()


def count_items(signal: int, msg: Any) -> int:
    if signal == TRACES:
        return sum(len(ss.spans) for rs in msg.resource_spans for ss in rs.scope_spans)
    if signal == LOGS:
        return sum(len(sl.log_records) for rl in msg.resource_logs for sl in rl.scope_logs)
    if signal == METRICS:
        return sum(1 for rm in msg.resource_metrics for sm in rm.scope_metrics for _ in sm.metrics)
    return 0


def deliver(messages: Iterable[tuple[int, Any]], sink: Sink, progress=None) -> int:
    sent = 0
    for signal, msg in messages:
        sink.send(signal, msg)
        n = count_items(signal, msg)
        sent += n
        if progress is not None:
            progress.update(n)
    sink.flush()
    return sent
