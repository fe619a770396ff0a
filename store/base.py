"""The typed seam between the store and everything above it.

`Reader` is what a read needs (a query to Arrow, a scalar); `Store` adds the single writer (append
Arrow tables, run a write function in one transaction), migrations and retention. The embedded
DuckDB store (`store.db`) and the ClickHouse store (`store.clickhouse`) both satisfy `Store`;
nothing above `store/` may know which one it holds. Each backend names its SQL `dialect`, which
only `store/` modules read (to pick the statement written for that engine).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import pyarrow as pa

if TYPE_CHECKING:
    from store.writer import WriterStats

# Bound values: positional (`?`) or named (`$name`) parameters, never spliced into SQL text.
Params = Sequence[Any] | Mapping[str, Any] | None
Dialect = Literal["duckdb", "clickhouse"]
# A function the writer runs on its write connection inside the batch's transaction.
WriteFn = Callable[[Any], Any]


@runtime_checkable
class Reader(Protocol):
    """Anything SQL can be read from: the store itself, or an in-memory copy (alert backtests)."""

    def query(self, sql: str, params: Params = None) -> pa.Table:
        """Run a read-only statement; the rows as an Arrow table."""
        ...

    def scalar(self, sql: str, params: Params = None) -> Any:
        """The first column of the first row (None when there are no rows)."""
        ...


class TableWriter(Protocol):
    """The single writer: appends and write functions, batched and committed in order."""

    broken: str | None   # why writes fail now (a short phrase), or None
    stats: WriterStats   # commits, rows, failures and latency histograms, read by /metrics

    @property
    def pending_rows(self) -> int: ...

    def submit(self, tables: Mapping[str, pa.Table] | None = None, fn: WriteFn | None = None) -> Future[Any]:
        """Queue a write; the future resolves once it is committed (result: fn's return value)."""
        ...

    def write(self, tables: Mapping[str, pa.Table] | None = None, fn: WriteFn | None = None,
              timeout: float | None = 60) -> Any:
        """Submit and wait for the commit."""
        ...

    def stop(self, timeout: float = 30) -> None: ...


@runtime_checkable
class Store(Reader, Protocol):
    """A backend: reads, the single writer, migrations and retention."""

    dialect: Dialect

    @property
    def writer(self) -> TableWriter:
        """The single writer (read-only here, so each backend may hold its own writer class)."""
        ...

    def query_capped(self, sql: str, params: Params, max_bytes: int,
                     batch_rows: int = 256) -> tuple[pa.Table, bool]:
        """Like `query`, but stops once `max_bytes` of rows are held: (rows, whether more were left)."""
        ...

    def append(self, tables: Mapping[str, pa.Table], timeout: float | None = 60) -> None:
        """Append Arrow tables (by column name) through the writer; returns once committed."""
        ...

    def migrate(self) -> int:
        """Apply every migration not yet applied (idempotent); the schema version now in force."""
        ...

    def delete_older_than(self, cutoff: datetime | None, analysis_cutoff: datetime | None = None) -> dict[str, int]:
        """Retention: drop raw rows before `cutoff` and analysis rows before `analysis_cutoff`
        (None keeps what it governs); rows deleted per table where the engine counts them."""
        ...

    def size_bytes(self) -> int: ...

    def close(self) -> None: ...
