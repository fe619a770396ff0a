"""The single writer: every write to the database goes through one thread.

Callers submit Arrow tables (appends) and/or a function to run on the write connection; the writer
groups whatever is queued into one transaction (flush at `max_rows` or `max_delay_ms`), commits,
then resolves each caller's future. A caller that sees its future succeed knows its rows are
committed: that is what lets the collectors answer 2xx only for durable data. The queue is bounded
by rows, so an overloaded server refuses work (`Overloaded`) instead of growing without bound.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

import duckdb
import pyarrow as pa

log = logging.getLogger(__name__)

WriteFn = Callable[[duckdb.DuckDBPyConnection], Any]


class Overloaded(Exception):
    """The write queue is full; the caller should shed load (429/503 with Retry-After)."""


class WriterClosed(Exception):
    """The writer is stopping and takes no more work."""


@dataclass
class _Request:
    tables: dict[str, pa.Table]
    fn: WriteFn | None
    rows: int
    future: Future = field(default_factory=Future)


@dataclass
class WriterStats:
    commits: int = 0
    rows_committed: int = 0
    failed_requests: int = 0
    last_commit_ms: float = 0.0
    commit_ms_total: float = 0.0


class Writer:
    def __init__(self, con: duckdb.DuckDBPyConnection, *, max_rows: int = 50_000,
                 max_delay_ms: int = 5, queue_max_rows: int = 400_000) -> None:
        self._con = con
        self._max_rows = max_rows
        self._max_delay = max_delay_ms / 1000
        self._queue_max_rows = queue_max_rows
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._pending_rows = 0
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="aiwatch-writer", daemon=True)
        self.stats = WriterStats()

    # --- public ---
    def start(self) -> None:
        self._thread.start()

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    def submit(self, tables: dict[str, pa.Table] | None = None, fn: WriteFn | None = None) -> Future:
        """Queue a write; the returned future resolves after commit (result: fn's return value)."""
        tables = {name: t for name, t in (tables or {}).items() if t.num_rows}
        rows = sum(t.num_rows for t in tables.values())
        with self._lock:
            if self._closed:
                raise WriterClosed("the writer is shutting down")
            # One request larger than the whole queue is still admitted when the queue is empty.
            if self._pending_rows and self._pending_rows + rows > self._queue_max_rows:
                raise Overloaded(f"{self._pending_rows} rows are waiting to be written")
            self._pending_rows += rows
        req = _Request(tables, fn, rows)
        self._queue.put(req)
        return req.future

    def write(self, tables: dict[str, pa.Table] | None = None, fn: WriteFn | None = None,
              timeout: float | None = 60) -> Any:
        """Submit and wait for the commit."""
        return self.submit(tables, fn).result(timeout)

    def stop(self, timeout: float = 30) -> None:
        """Commit everything queued, then stop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    # --- the writer thread ---
    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch, rows = [first], first.rows
            deadline = time.monotonic() + self._max_delay
            while rows < self._max_rows:
                remaining = deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=max(remaining, 0)) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                rows += item.rows
            self._commit(batch)

    def _commit(self, batch: list[_Request]) -> None:
        started = time.perf_counter()
        try:
            results = self._apply(batch)
        except Exception as exc:  # noqa: BLE001 - isolate the bad request, keep the good ones
            if len(batch) > 1:
                for req in batch:
                    self._commit([req])
                return
            log.warning("write failed: %s", exc)
            self._finish(batch, exc=exc)
            self.stats.failed_requests += 1
            return
        elapsed = (time.perf_counter() - started) * 1000
        self.stats.commits += 1
        self.stats.rows_committed += sum(r.rows for r in batch)
        self.stats.last_commit_ms = elapsed
        self.stats.commit_ms_total += elapsed
        self._finish(batch, results=results)

    def _apply(self, batch: list[_Request]) -> list[Any]:
        con = self._con
        con.execute("BEGIN TRANSACTION")
        try:
            by_table: dict[str, list[pa.Table]] = {}
            for req in batch:
                for name, tbl in req.tables.items():
                    by_table.setdefault(name, []).append(tbl)
            for name, tables in by_table.items():
                merged = pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
                con.register("_aiwatch_batch", merged)
                try:
                    con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _aiwatch_batch")
                finally:
                    con.unregister("_aiwatch_batch")
            results = [req.fn(con) if req.fn else None for req in batch]
            con.execute("COMMIT")
            return results
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _finish(self, batch: list[_Request], results: list[Any] | None = None,
                exc: BaseException | None = None) -> None:
        with self._lock:
            self._pending_rows -= sum(r.rows for r in batch)
        for i, req in enumerate(batch):
            if exc is not None:
                req.future.set_exception(exc)
            else:
                req.future.set_result(results[i] if results else None)
