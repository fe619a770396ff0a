"""The embedded DuckDB store: opens the file, applies migrations, owns the single writer.

Only the server process opens a `Store`. Reads run on per-call cursors (DuckDB's MVCC lets them
proceed while the writer commits); writes go through `store.writer`.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import duckdb
import pyarrow as pa

from store.sql import connect
from store.schema import ALL_MIGRATIONS, SCHEMA_VERSION
from store.writer import Writer

log = logging.getLogger(__name__)


class StoreBusy(RuntimeError):
    """Another process owns the database file."""


class Store:
    def __init__(self, path: str | Path, *, writer_max_rows: int = 50_000, writer_max_delay_ms: int = 5,
                 queue_max_rows: int = 400_000, threads: int | None = None) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._threads = threads
        self._con = self._open()
        self.writer = Writer(self._con.cursor(), max_rows=writer_max_rows,
                             max_delay_ms=writer_max_delay_ms, queue_max_rows=queue_max_rows,
                             reopen=None if str(path) == ":memory:" else self._reopen)
        self.writer.start()

    def _open(self) -> duckdb.DuckDBPyConnection:
        try:
            con = connect(self.path, threads=self._threads)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreBusy(f"{self.path} is open in another process (is `aiwatch serve` running? DuckDB "
                                "allows one writing process: stop it, or send data to it over OTLP)") from None
            raise
        migrate(con)
        return con

    def _reopen(self) -> duckdb.DuckDBPyConnection:
        """Called by the writer after DuckDB invalidated the database (a fatal I/O error, such as a
        full disk at checkpoint): close it and open it again. Returns a new write connection."""
        try:
            self._con.close()
        except Exception:  # noqa: BLE001 - it is being replaced
            pass
        self._con = self._open()
        log.warning("reopened %s", self.path)
        return self._con.cursor()

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pa.Table:
        """Run a read-only statement on its own cursor and return an Arrow table."""
        with self._con.cursor() as cur:
            return cur.sql(sql, params=params or None).to_arrow_table()

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        table = self.query(sql, params)
        return table.column(0)[0].as_py() if table.num_rows else None

    def size_bytes(self) -> int:
        files = [self.path, self.path.with_name(self.path.name + ".wal")]
        return sum(f.stat().st_size for f in files if f.exists())

    def close(self) -> None:
        self.writer.stop()
        self._con.close()


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply every migration not yet recorded; returns the schema version now in force."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                "description VARCHAR, applied_at TIMESTAMP DEFAULT current_timestamp)")
    applied = {row[0] for row in con.execute("SELECT version FROM schema_version").fetchall()}
    if applied and max(applied) > SCHEMA_VERSION:
        raise RuntimeError(f"database schema {max(applied)} is newer than this aiwatch ({SCHEMA_VERSION})")
    for version, description, statements in ALL_MIGRATIONS:
        if version in applied:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for stmt in statements:
                con.execute(stmt)
            con.execute("INSERT INTO schema_version (version, description) VALUES (?, ?)", [version, description])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        log.info("applied migration %d: %s", version, description)
    return SCHEMA_VERSION
