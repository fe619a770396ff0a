"""The embedded DuckDB store (the default backend): opens the file, applies migrations, owns the
single writer. It satisfies the `store.base.Store` protocol.

Only the server process opens a `Store`. Reads run on per-call cursors (DuckDB's MVCC lets them
proceed while the writer commits); writes go through `store.writer`.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from store.base import Dialect, Params
from store.retention import delete_older_than
from store.schema import ALL_MIGRATIONS, SCHEMA_VERSION
from store.sql import connect
from store.writer import Writer

log = logging.getLogger(__name__)


class StoreBusy(RuntimeError):
    """Another process owns the database file."""


class StoreCorrupt(RuntimeError):
    """The database file is damaged (truncated, or not a DuckDB file): the server must not start on it."""


# A DuckDB file is three 4 KiB headers, then `total_blocks` blocks (tests/store check this layout
# against the DuckDB in use, so an upgrade that changes it fails there, not in production).
HEADER_BYTES = 3 * 4096
# What DuckDB says when it cannot open a damaged file (missing bytes, bad checksums, not its format).
_DAMAGE_SIGNS = ("could not read enough bytes", "corrupt", "checksum", "not a valid duckdb database")


class Store:
    """The DuckDB backend (`store = "duckdb"`): one file, one writing process."""

    dialect: Dialect = "duckdb"

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
            if any(sign in str(exc).lower() for sign in _DAMAGE_SIGNS):
                raise StoreCorrupt(_damaged(self.path, str(exc))) from None
            raise
        try:
            check_intact(con, self.path)
        except BaseException:
            con.close()
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

    def query(self, sql: str, params: Params = None) -> pa.Table:
        """Run a read-only statement on its own cursor and return an Arrow table."""
        with self._con.cursor() as cur:
            return cur.sql(sql, params=params or None).to_arrow_table()

    def query_capped(self, sql: str, params: Params,
                     max_bytes: int, batch_rows: int = 256) -> tuple[pa.Table, bool]:
        """Like `query`, but reads batch by batch and stops once `max_bytes` of Arrow data are held:
        (the rows read, whether more were left unread). Memory stays near `max_bytes` whatever matches."""
        batches: list[pa.RecordBatch] = []
        size = 0
        with self._con.cursor() as cur:
            reader = cur.sql(sql, params=params or None).to_arrow_reader(batch_rows)
            schema = reader.schema
            for batch in reader:
                if batches and size + batch.nbytes > max_bytes:
                    return pa.Table.from_batches(batches, schema), True
                batches.append(batch)
                size += batch.nbytes
        return pa.Table.from_batches(batches, schema), False

    def scalar(self, sql: str, params: Params = None) -> Any:
        table = self.query(sql, params)
        return table.column(0)[0].as_py() if table.num_rows else None

    def append(self, tables: Mapping[str, pa.Table], timeout: float | None = 60) -> None:
        self.writer.write(dict(tables), timeout=timeout)

    def migrate(self) -> int:
        """Migrations ran at open (before the writer took the connection); the version in force."""
        return SCHEMA_VERSION

    def delete_older_than(self, cutoff: datetime | None, analysis_cutoff: datetime | None = None) -> dict[str, int]:
        return self.writer.write(fn=lambda con: delete_older_than(con, cutoff, analysis_cutoff))

    def size_bytes(self) -> int:
        files = [self.path, self.path.with_name(self.path.name + ".wal")]
        return sum(f.stat().st_size for f in files if f.exists())

    def close(self) -> None:
        self.writer.stop()
        self._con.close()


def check_intact(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Refuse a truncated file. DuckDB opens one happily and fails only when a query reaches a missing
    block (so the server would start "ready" while every analyzer fails): compare the file's size
    with the blocks its header counts. Data still in the WAL is not in that count."""
    if str(path) == ":memory:":
        return
    # Free blocks are left out: a checkpoint cuts free blocks off the end of the file while the
    # header still counts them (a clean stop after heavy ingest leaves such a file).
    row = con.execute("SELECT block_size, total_blocks, free_blocks FROM pragma_database_size() "
                      "WHERE database_name = current_database()").fetchone()
    if row is None:
        raise StoreCorrupt(f"{path}: DuckDB reports no size for the database")
    block_size, total, free = row
    blocks = total - free
    expected, actual = HEADER_BYTES + blocks * block_size, path.stat().st_size
    if actual < expected:
        raise StoreCorrupt(_damaged(path, f"the file has {actual} bytes but its header counts {blocks} blocks "
                                          f"in use of {block_size} bytes ({expected} bytes): it was truncated"))


def _damaged(path: Path, why: str) -> str:
    return (f"the database file {path} is damaged: {why}. Restore it from a backup, or move it aside "
            "to start with an empty database.")


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
