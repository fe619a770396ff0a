"""The single writer: every write to the database goes through one thread.

Callers submit Arrow tables (appends) and/or a function to run on the write connection; the writer
groups whatever is queued into one transaction (flush at `max_rows` or `max_delay_ms`), commits,
then resolves each caller's future. A caller that sees its future succeed knows its rows are
committed: that is what lets the collectors answer 2xx only for durable data. The queue is bounded
by rows, so an overloaded server refuses work (`Overloaded`) instead of growing without bound.

When the disk fails (full, I/O errors) the writer is `broken`: it refuses work (`WriterBroken`, a
503) and probes the database every `retry_s`, reopening it when DuckDB invalidated it, until a
write and a checkpoint succeed again. Each transaction also records its batch id in `writer_ledger`,
so a commit that raised after its data was durable (a failed checkpoint) is told apart from one
that did not happen: the first is acknowledged, never answered 503 and duplicated by the retry.
"""
from __future__ import annotations

import bisect
import itertools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from store.base import WriteFn
from store.schema import KEYED_TABLES

log = logging.getLogger(__name__)



class Overloaded(Exception):
    """The write queue is full; the caller should shed load (429/503 with Retry-After)."""


class WriterClosed(Exception):
    """The writer is stopping and takes no more work."""


class WriterBroken(Exception):
    """The database cannot take writes now (disk full, I/O error); nothing was committed: retry later."""


class _CommitFailed(Exception):
    """COMMIT raised: the batch may or may not be durable (see the ledger)."""

    def __init__(self, results: list[Any]) -> None:
        super().__init__("commit failed")
        self.results = results


# Errors of the disk or the database file, not of one request: a batch that meets one is not split
# (every request would meet it again) and the writer turns broken until a probe write succeeds.
STORAGE_ERRORS = (duckdb.IOException, duckdb.FatalException, duckdb.TransactionException, OSError)
_PROBE = "writer.probe"   # job_state key the recovery probe writes


@dataclass
class WriteRequest:
    """One submitted write: the tables to append, a function to run, and the caller's future."""
    tables: dict[str, pa.Table]
    fn: WriteFn | None   # runs on the backend's write connection, in the batch's transaction
    rows: int
    future: Future = field(default_factory=Future)


COMMIT_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_ROWS_BUCKETS = (1, 10, 100, 1_000, 5_000, 10_000, 50_000, 100_000, 400_000)


@dataclass
class Buckets:
    """A histogram kept by the writer thread (Prometheus `le` buckets); /metrics reads it."""
    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)   # per bucket, the last one above every bound
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = self.counts or [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[int]:
        return list(itertools.accumulate(self.counts))


@dataclass
class WriterStats:
    commits: int = 0
    rows_committed: int = 0
    failed_requests: int = 0
    commit_seconds: Buckets = field(default_factory=lambda: Buckets(COMMIT_SECONDS_BUCKETS))
    batch_rows: Buckets = field(default_factory=lambda: Buckets(BATCH_ROWS_BUCKETS))


class QueuedWriter:
    """The queue and admission every backend's writer shares: `submit` admits a write while the
    queue holds fewer than `queue_max_rows` rows (one larger request when it is empty), refuses it
    while stopping (`WriterClosed`) or broken (`WriterBroken`), and returns a future resolved after
    commit; one thread (`_run`, the backend's) drains the queue and calls `_finish`."""

    def __init__(self, queue_max_rows: int, thread_name: str) -> None:
        self.broken: str | None = None   # why writes fail now (a short reason, no file contents)
        self._queue_max_rows = queue_max_rows
        self._queue: queue.SimpleQueue[WriteRequest | None] = queue.SimpleQueue()
        self._pending_rows = 0
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self.stats = WriterStats()

    def start(self) -> None:
        self._thread.start()

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    def submit(self, tables: Mapping[str, pa.Table] | None = None, fn: WriteFn | None = None) -> Future:
        """Queue a write; the returned future resolves after commit (result: fn's return value)."""
        tables = {name: t for name, t in (tables or {}).items() if t.num_rows}
        rows = sum(t.num_rows for t in tables.values())
        with self._lock:
            if self._closed:
                raise WriterClosed("the writer is shutting down")
            if self.broken:
                raise WriterBroken(self.broken)
            # One request larger than the whole queue is still admitted when the queue is empty.
            if self._pending_rows and self._pending_rows + rows > self._queue_max_rows:
                raise Overloaded(f"{self._pending_rows} rows are waiting to be written")
            self._pending_rows += rows
        req = WriteRequest(tables, fn, rows)
        self._queue.put(req)
        return req.future

    def write(self, tables: Mapping[str, pa.Table] | None = None, fn: WriteFn | None = None,
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

    def _run(self) -> None:
        raise NotImplementedError

    def _finish(self, batch: list[WriteRequest], results: list[Any] | None = None,
                exc: BaseException | None = None) -> None:
        """Release the batch's rows from the queue, then resolve each request's future."""
        with self._lock:
            self._pending_rows -= sum(r.rows for r in batch)
        for i, req in enumerate(batch):
            if exc is not None:
                req.future.set_exception(exc)
            else:
                req.future.set_result(results[i] if results else None)


class Writer(QueuedWriter):
    def __init__(self, con: duckdb.DuckDBPyConnection, *, max_rows: int = 50_000,
                 max_delay_ms: int = 5, queue_max_rows: int = 400_000,
                 reopen: Callable[[], duckdb.DuckDBPyConnection] | None = None, retry_s: float = 2.0) -> None:
        super().__init__(queue_max_rows, "aiwatch-writer")
        self._con = con
        self._reopen = reopen       # closes and reopens the database; returns a new write connection
        self._retry_s = retry_s
        self._batch_ids = (f"{uuid.uuid4().hex[:12]}-{i}" for i in itertools.count(1))
        self._max_rows = max_rows
        self._max_delay = max_delay_ms / 1000

    # --- the writer thread ---
    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                first = self._queue.get(timeout=self._retry_s) if self.broken else self._queue.get()
            except queue.Empty:
                self._recover()
                continue
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
            if self.broken and not self._recover():
                self._finish(batch, exc=WriterBroken(self.broken))
                continue
            try:
                self._commit(batch)
            except BaseException as exc:  # noqa: BLE001 - the writer thread must outlive any batch
                log.exception("writer: unexpected failure")
                self._finish([r for r in batch if not r.future.done()], exc=exc)

    def _commit(self, batch: list[WriteRequest]) -> None:
        started = time.perf_counter()
        batch_id = next(self._batch_ids)
        try:
            results = self._apply(batch, batch_id)
        except _CommitFailed as failed:
            cause = failed.__cause__ or failed
            committed = self._committed(batch_id)
            if committed is True:   # durable: acknowledge (a retry would duplicate it)
                log.warning("commit raised (%s) after the batch was durable: acknowledged", cause)
                if isinstance(cause, STORAGE_ERRORS):
                    self._set_broken(cause)
                results = failed.results
            elif committed is None or isinstance(cause, STORAGE_ERRORS):
                self._set_broken(cause)
                self._fail(batch, cause)
                return
            else:
                self._isolate(batch, cause)
                return
        except STORAGE_ERRORS as exc:
            self._set_broken(exc)
            self._fail(batch, exc)
            return
        except Exception as exc:  # noqa: BLE001 - isolate the bad request, keep the good ones
            self._isolate(batch, exc)
            return
        rows = sum(r.rows for r in batch)
        self.stats.commits += 1
        self.stats.rows_committed += rows
        self.stats.commit_seconds.observe(time.perf_counter() - started)
        self.stats.batch_rows.observe(rows)
        self._finish(batch, results=results)

    def _isolate(self, batch: list[WriteRequest], exc: BaseException) -> None:
        """A request made the batch fail: commit the others alone, fail only it."""
        if len(batch) > 1:
            for req in batch:
                if self.broken:   # the disk failed meanwhile: the rest waits for a retry
                    self._fail([req], WriterBroken(self.broken))
                else:
                    self._commit([req])
            return
        log.warning("write failed: %s", exc)
        self._finish(batch, exc=exc)
        self.stats.failed_requests += 1

    def _apply(self, batch: list[WriteRequest], batch_id: str) -> list[Any]:
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
                    con.execute(_insert_sql(name))
                finally:
                    con.unregister("_aiwatch_batch")
            results = [req.fn(con) if req.fn else None for req in batch]
            con.execute(_LEDGER_SQL, [batch_id])
        except BaseException:
            _rollback(con)
            raise
        try:
            con.execute("COMMIT")
        except Exception as exc:
            _rollback(con)
            raise _CommitFailed(results) from exc
        return results

    # --- a broken disk ---
    def _set_broken(self, exc: BaseException) -> None:
        if self.broken is None:
            log.error("the database cannot take writes; refusing them until a probe write succeeds: %s", exc)
        self.broken = _reason(exc)

    def _fail(self, batch: list[WriteRequest], exc: BaseException) -> None:
        self.stats.failed_requests += len(batch)
        self._finish(batch, exc=WriterBroken(_reason(exc)))

    def _reconnect(self) -> bool:
        """Reopen the database (DuckDB invalidates it after a fatal I/O error)."""
        if self._reopen is None:
            return False
        try:
            self._con.close()
        except Exception:  # noqa: BLE001 - it is being replaced
            pass
        try:
            self._con = self._reopen()
            return True
        except Exception as exc:  # noqa: BLE001 - still unusable: the next probe tries again
            log.warning("could not reopen the database: %s", exc)
            return False

    def _usable(self) -> bool:
        try:
            self._con.execute("SELECT count(*) FROM job_state").fetchall()
            return True
        except Exception:  # noqa: BLE001 - invalidated or closed
            return self._reconnect()

    def _committed(self, batch_id: str) -> bool | None:
        """Whether the batch is in the database (None: the database cannot be read to tell)."""
        if not self._usable():
            return None
        try:
            row = self._con.execute("SELECT batch FROM writer_ledger").fetchone()
        except Exception:  # noqa: BLE001
            return None
        return row is not None and row[0] == batch_id

    def _recover(self) -> bool:
        """Probe: a small write and a checkpoint (the file, not only the WAL, must take data)."""
        if not self._usable():
            return False
        try:
            self._con.execute("BEGIN TRANSACTION")
            self._con.execute(_PROBE_SQL, [_PROBE, str(time.time())])
            self._con.execute("COMMIT")
            self._con.execute("CHECKPOINT")
        except Exception as exc:  # noqa: BLE001 - still broken
            _rollback(self._con)
            self.broken = _reason(exc)
            return False
        log.warning("the database takes writes again")
        self.broken = None
        return True


_LEDGER_SQL = "UPDATE writer_ledger SET batch = ?"
_PROBE_SQL = "INSERT OR REPLACE INTO job_state (job, state, updated_at) VALUES (?, ?, now()::TIMESTAMP)"


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    # A failed COMMIT, or an invalidated database, leaves no transaction to roll back: that must not
    # hide the error that matters.
    try:
        con.execute("ROLLBACK")
    except Exception:  # noqa: BLE001
        pass


def _reason(exc: BaseException) -> str:
    text = str(exc).lower()
    if "no space left" in text or "disk full" in text:
        return "disk full"
    if isinstance(exc, (duckdb.IOException, OSError)) or "could not write" in text or "i/o" in text:
        return "disk write error"
    return "database write error"


def _insert_sql(table: str) -> str:
    """Appends, or for a keyed table (KEYED_TABLES) only the rows whose key is not stored yet."""
    key = KEYED_TABLES.get(table)
    if key is None:
        return f"INSERT INTO {table} BY NAME SELECT * FROM _aiwatch_batch"
    return (f"INSERT INTO {table} BY NAME SELECT * FROM _aiwatch_batch b"
            f" WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.{key} = b.{key})"
            f" QUALIFY row_number() OVER (PARTITION BY b.{key}) = 1")
