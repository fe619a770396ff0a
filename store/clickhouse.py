"""The ClickHouse backend: the same `Store` seam over a ClickHouse server (clickhouse-connect, HTTP)
or the same engine in-process on a local directory (chdb).

Both transports run the same SQL (ClickHouse dialect, values bound as `{name:Type}` parameters,
never spliced) and move Arrow tables in and out. The telemetry is read from the OpenTelemetry
Collector's `otel_traces` / `otel_logs` tables (store/clickhouse_schema.py); a `SourceMapping`
given at open time (the collectors' attribute map) turns them into aiwatch's `spans` view and
turns aiwatch's own ingest into rows of the same tables.
"""
from __future__ import annotations

import logging
import queue
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import pyarrow as pa

from store.base import Dialect, Params, WriteFn
from store.writer import QueuedWriter, WriteRequest

log = logging.getLogger(__name__)

# Database, table and cluster names as settings accept them: plain identifiers only, so a name is
# safe to spell in SQL (backquoted) without escaping.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63})?")   # Nested: Events.Name

# Session settings both transports run with: SQL NULL semantics where DuckDB has them (a rollup's
# "all" label is NULL, an aggregate over no rows is NULL, an outer join's missing side is NULL),
# UTC times, and mutations (retention deletes) that finish before the call returns.
SESSION_SETTINGS: dict[str, Any] = {
    "group_by_use_nulls": 1, "aggregate_functions_null_for_empty": 1, "join_use_nulls": 1,
    "session_timezone": "UTC", "mutations_sync": 1,
}


# One Keeper / ZooKeeper node as the `keeper` setting gives it: host:port (a hostname or IPv4 address).
KEEPER_NODE = re.compile(r"([A-Za-z0-9][A-Za-z0-9.-]{0,252}):([0-9]{1,5})")
# Where chdb's engine keeps KeeperMap tables in Keeper (a server uses its own keeper_map_path_prefix).
KEEPER_MAP_PREFIX = "/aiwatch_keeper_map"


class KeeperAway(RuntimeError):
    """Keeper does not answer in time: this instance holds no lease and records no notification."""


# How long a Keeper node may take to answer a handshake before Keeper counts as away this time
KEEPER_PROBE_S = 2.0


class StoreSettingError(ValueError):
    """The `store` setting cannot be used; the message says why (never echoing a password)."""


def identifier(name: str, what: str = "name") -> str:
    """`name` checked against IDENTIFIER and backquoted for SQL."""
    if not IDENTIFIER.fullmatch(name or ""):
        raise StoreSettingError(f"{what} {name!r} is not allowed: use 1-64 letters, digits or '_', not starting "
                                "with a digit")
    return f"`{name}`"


def column_name(name: str) -> str:
    """A column of an insert (checked against COLUMN), backquoted."""
    if not COLUMN.fullmatch(name):
        raise ValueError(f"column {name!r} is not a plain column name")
    return f"`{name}`"


@dataclass(frozen=True)
class StoreTarget:
    """The parsed `store` setting."""

    kind: str                     # duckdb | clickhouse | chdb
    database: str = "default"
    host: str = ""
    port: int = 8123
    user: str = "default"
    password: str = field(default="", repr=False)
    path: str = ""                # chdb: the engine's directory
    secure: bool = False          # clickhouses:// (HTTPS)

    def describe(self) -> str:
        """For logs and /readyz: no password."""
        if self.kind == "duckdb":
            return "duckdb"
        if self.kind == "chdb":
            return f"chdb://{self.path}?database={self.database}"
        return f"{'clickhouses' if self.secure else 'clickhouse'}://{self.user}@{self.host}:{self.port}/{self.database}"


def parse_store(value: str) -> StoreTarget:
    """`duckdb`, `clickhouse://user:password@host:8123/DATABASE` (clickhouses:// for HTTPS) or
    `chdb:///absolute/path?database=DATABASE`. The database defaults to `default`."""
    text = (value or "duckdb").strip()
    if text == "duckdb":
        return StoreTarget("duckdb")
    parts = urlsplit(text)
    if parts.scheme in ("clickhouse", "clickhouses"):
        if not parts.hostname:
            raise StoreSettingError("store: a clickhouse:// URL needs a host (clickhouse://user:password@host:8123/db)")
        try:
            port = parts.port or (8443 if parts.scheme == "clickhouses" else 8123)
        except ValueError:
            raise StoreSettingError("store: the port is not a number in 1-65535") from None
        database = parts.path.strip("/") or "default"
        identifier(database, "store: database")
        return StoreTarget("clickhouse", database, parts.hostname, port, unquote(parts.username or "default"),
                           unquote(parts.password or ""), secure=parts.scheme == "clickhouses")
    if parts.scheme == "chdb":
        if parts.netloc or not parts.path.startswith("/"):
            raise StoreSettingError("store: chdb needs an absolute path: chdb:///absolute/path?database=NAME")
        query = parse_qs(parts.query)
        unknown = set(query) - {"database"}
        if unknown:
            raise StoreSettingError(f"store: unknown chdb option(s) {', '.join(sorted(unknown))} (only database)")
        database = (query.get("database") or ["default"])[-1]
        identifier(database, "store: database")
        return StoreTarget("chdb", database, path=unquote(parts.path))
    raise StoreSettingError("store: expected duckdb, clickhouse://user:password@host:8123/DATABASE or "
                            "chdb:///absolute/path?database=DATABASE")


def parse_keeper(value: str) -> tuple[tuple[str, int], ...]:
    """`host:port[,host:port...]`: the Keeper / ZooKeeper ensemble of chdb's in-process engine."""
    nodes = []
    for part in (p.strip() for p in (value or "").split(",")):
        m = KEEPER_NODE.fullmatch(part)
        if not m or not 0 < int(m.group(2)) < 65536:
            raise StoreSettingError(f"{part!r} is not host:port (e.g. 127.0.0.1:2181,keeper-2:2181)")
        nodes.append((m.group(1), int(m.group(2))))
    return tuple(nodes)


def keeper_config(nodes: tuple[tuple[str, int], ...], engine_id: str) -> str:
    """The engine configuration that gives chdb a Keeper and enables KeeperMap, as a server's
    <zookeeper> and <keeper_map_path_prefix> do (hosts checked by KEEPER_NODE, engine_id hex: nothing
    to escape). Every chdb engine has the same all-zero server UUID, under which ClickHouse keeps its
    Keeper session node; a sessions path of this directory's own keeps two engines' nodes apart (two
    creating the one shared node at once fail with "Node exists")."""
    hosts = "".join(f"<node><host>{h}</host><port>{p}</port></node>" for h, p in nodes)
    return (f"<clickhouse><zookeeper>{hosts}<sessions_path>/aiwatch_sessions/{engine_id}</sessions_path></zookeeper>"
            f"<keeper_map_path_prefix>{KEEPER_MAP_PREFIX}</keeper_map_path_prefix></clickhouse>\n")


def _engine_id(folder: Path) -> str:
    """A random id for this chdb directory, made once and kept in it."""
    path = folder / "aiwatch-engine-id"
    if not path.exists():
        path.write_text(secrets.token_hex(8))
    text = path.read_text().strip()
    return text if re.fullmatch(r"[0-9a-f]{16}", text) else secrets.token_hex(8)


# --- transports: the same SQL over HTTP or in-process -------------------------------------------


class Transport(Protocol):
    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table: ...
    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None: ...
    def insert(self, table: str, data: pa.Table) -> None: ...
    def insert_select(self, table: str, rows: MappedRows) -> None: ...
    def use(self, database: str) -> None: ...
    def close(self) -> None: ...


def _param_text(value: Any) -> str:
    """A bound value in the text form ClickHouse parses for a `{name:Type}` parameter."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_quoted(v) for v in value) + "]"
    return str(value)


def _quoted(value: Any) -> str:
    """A value inside a bound array: strings and times quoted, NULL spelled out."""
    if value is None:
        return "NULL"
    if isinstance(value, (datetime, date)):
        value = _param_text(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return _param_text(value)


class ChdbTransport:
    """The ClickHouse engine in this process, on a local directory (one session, used by one thread
    at a time)."""

    def __init__(self, path: str, keeper: str = "") -> None:
        from chdb import session

        uri = path
        if keeper:   # the engine reads its Keeper from a config file (clickhouse-local's --config-file)
            config = Path(path) / "aiwatch-keeper.xml"
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text(keeper_config(parse_keeper(keeper), _engine_id(config.parent)))
            uri = f"{path}?config-file={config}"
        self._session = session.Session(uri)
        self._lock = threading.RLock()
        for name, value in SESSION_SETTINGS.items():
            self._session.query(f"SET {name} = {_quoted(value)}")

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        with self._lock:
            return self._session.query(sql, "ArrowTable", params=_texts(params))

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        with self._lock:
            self._session.query(sql, "Null", params=_texts(params))

    def insert(self, table: str, data: pa.Table) -> None:
        columns = ", ".join(column_name(c) for c in data.column_names)
        _aiwatch_rows = data  # noqa: F841 - chdb's Python() table function reads this local by name
        with self._lock:
            self._session.query(f"INSERT INTO {table} ({columns}) SELECT * FROM Python(_aiwatch_rows)", "Null")

    def insert_select(self, table: str, rows: MappedRows) -> None:
        columns = ", ".join(column_name(c) for c in rows.columns)
        _aiwatch_rows = rows.data  # noqa: F841 - read by name, as above
        with self._lock:
            self._session.query(f"INSERT INTO {table} ({columns}) SELECT {rows.select} FROM Python(_aiwatch_rows)",
                                "Null")

    def use(self, database: str) -> None:
        with self._lock:
            self._session.query(f"USE {identifier(database)}", "Null")

    def close(self) -> None:
        with self._lock:
            self._session.close()


def _texts(params: Mapping[str, Any] | None) -> dict[str, str] | None:
    return {k: _param_text(v) for k, v in params.items()} if params else None


class HttpTransport:
    """A ClickHouse server through clickhouse-connect (HTTP): the same statements, bound server-side."""

    def __init__(self, target: StoreTarget, connect_timeout_s: float = 10, query_timeout_s: float = 300) -> None:
        import clickhouse_connect

        self._client = clickhouse_connect.get_client(
            host=target.host, port=target.port, username=target.user, password=target.password,
            secure=target.secure, connect_timeout=connect_timeout_s,
            send_receive_timeout=query_timeout_s, settings=SESSION_SETTINGS, autogenerate_session_id=False)
        self._lock = threading.Lock()   # one HTTP connection pool, but settings stay per request

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        return self._client.query_arrow(sql, parameters=dict(params or {}), use_strings=True)

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._client.command(sql, parameters=dict(params or {}))

    def insert(self, table: str, data: pa.Table) -> None:
        database, name = (part.strip("`") for part in table.split(".", 1))
        self._client.insert_arrow(name, data, database=database)

    def insert_select(self, table: str, rows: MappedRows) -> None:
        """The rows as an Arrow stream in the request body, read by the server's input() function
        with the columns' types, converted by the SELECT on the way in."""
        structure = ", ".join(f"{column_name(f.name)} {_input_type(f.type)}" for f in rows.data.schema)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, rows.data.schema) as stream:
            stream.write_table(rows.data)
        columns = ", ".join(column_name(c) for c in rows.columns)
        self._client.command(f"INSERT INTO {table} ({columns}) SELECT {rows.select} FROM input({_quoted(structure)}) "
                             "FORMAT ArrowStream", data=sink.getvalue().to_pybytes())

    def use(self, database: str) -> None:
        self._client.database = database

    def close(self) -> None:
        self._client.close()


_INPUT_TYPES = {pa.string(): "String", pa.timestamp("us"): "DateTime64(6)", pa.float64(): "Float64",
                pa.int64(): "Int64", pa.int32(): "Int32", pa.bool_(): "Bool", pa.uint8(): "UInt8"}


def _input_type(typ: pa.DataType) -> str:
    """The nullable ClickHouse type an Arrow column of aiwatch's rows is read as."""
    if typ not in _INPUT_TYPES:
        raise TypeError(f"no ClickHouse input type for {typ}")
    return f"Nullable({_INPUT_TYPES[typ]})"


def _naive(table: pa.Table) -> pa.Table:
    """ClickHouse answers times as UTC-zoned Arrow timestamps and low-cardinality strings as
    dictionaries; aiwatch's readers take naive UTC microseconds and plain strings (as DuckDB gives)."""
    columns, changed = [], False
    for col in table.columns:
        typ = col.type
        if pa.types.is_dictionary(typ):
            col, changed = col.cast(typ.value_type), True
            typ = col.type
        if pa.types.is_timestamp(typ) and (typ.tz is not None or typ.unit != "us"):
            col, changed = col.cast(pa.timestamp(typ.unit)).cast(pa.timestamp("us"), safe=False), True
        elif pa.types.is_list(typ) and pa.types.is_timestamp(typ.value_type) and typ.value_type.tz is not None:
            col, changed = col.cast(pa.list_(pa.timestamp(typ.value_type.unit))).cast(pa.list_(pa.timestamp("us"))), True
        elif pa.types.is_large_string(typ):
            col, changed = col.cast(pa.string()), True
        columns.append(col)
    if not changed:
        return table
    return pa.Table.from_arrays(columns, names=table.column_names)


# --- what the collectors supply: their schema of a span, both ways --------------------------------


@dataclass(frozen=True)
class MappedRows:
    """Rows for one of the Collector's tables, converted by the engine as they are inserted: the
    Arrow `data` (aiwatch's columns) and `select`, a SELECT list over it giving `columns` in order
    (the transport supplies FROM)."""

    data: pa.Table
    columns: tuple[str, ...]
    select: str


class SourceMapping(Protocol):
    """How the Collector's tables read as aiwatch's `spans` (and back). Supplied by collectors/ (the
    one attribute map), so the store holds no vocabulary of its own."""

    def spans_view(self, traces_table: str, materialized: bool = False) -> str:
        """A SELECT over `traces_table` (a quoted name) with aiwatch's span columns (`materialized`:
        reading the columns materialize_statements adds)."""
        ...

    def materialize_statements(self, traces_table: str, on: str) -> list[str]:
        """Idempotent DDL adding MATERIALIZED columns for the mapped span attributes."""
        ...

    def to_otel_traces(self, spans: pa.Table, resources: pa.Table | None) -> MappedRows:
        """aiwatch span rows (and their request's resources) as rows of the Collector's traces table."""
        ...

    def to_otel_logs(self, logs: pa.Table) -> MappedRows:
        """aiwatch log rows as rows of the Collector's logs table."""
        ...

    def feedback_view(self, logs_table: str) -> str:
        """A SELECT over `logs_table` with the feedback table's columns: the review verdicts the
        Collector stored as log events."""
        ...

    def audit_view(self, logs_table: str) -> str:
        """A SELECT over `logs_table` with the audit_events table's columns: the audit records the
        Collector stored as log events."""
        ...


# --- the writer: one thread, in order, the `TableWriter` interface ---------------------------------


class ClickHouseWriter(QueuedWriter):
    """Writes in submission order on one thread. An insert is atomic per table (one block); there
    are no multi-statement transactions, so output tables are ReplacingMergeTree and a rerun
    replaces rather than duplicates. Admission and the queue are `QueuedWriter`'s, as DuckDB's."""

    def __init__(self, apply: Callable[[dict[str, pa.Table], WriteFn | None], Any], queue_max_rows: int,
                 max_rows: int = 50_000) -> None:
        super().__init__(queue_max_rows, "aiwatch-ch-writer")
        self._apply = apply
        self._max_rows = max_rows
        self.start()

    def _run(self) -> None:
        """Group consecutive appends into one insert per table (ClickHouse wants few, large parts);
        a write function runs alone, in its place in the order."""
        stopping = False
        while not stopping:
            req = self._queue.get()
            if req is None:
                break
            batch, rows, after = [req], req.rows, None
            while req.fn is None and rows < self._max_rows:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                if nxt.fn is not None:
                    after = nxt
                    break
                batch.append(nxt)
                rows += nxt.rows
            self._commit(batch)
            if after is not None:
                self._commit([after])

    def _commit(self, batch: list[WriteRequest]) -> None:
        started = time.perf_counter()
        names = dict.fromkeys(name for r in batch for name in r.tables)
        tables = {name: pa.concat_tables([r.tables[name] for r in batch if name in r.tables], promote_options="default")
                  for name in names}
        rows = sum(r.rows for r in batch)
        try:
            result = self._apply(tables, batch[0].fn)
        except BaseException as exc:  # noqa: BLE001 - one bad request never stops the writer
            if len(batch) > 1:   # find the bad one: the others commit alone
                for r in batch:
                    self._commit([r])
                return
            log.warning("clickhouse write failed: %s", exc)
            self.stats.failed_requests += 1
            self._finish(batch, exc=exc)
            return
        self.stats.commits += 1
        self.stats.rows_committed += rows
        self.stats.commit_seconds.observe(time.perf_counter() - started)
        self.stats.batch_rows.observe(rows)
        self._finish(batch, results=[result] * len(batch))


class ClickHouseConnection:
    """What a write function gets inside the ClickHouse writer (in place of DuckDB's connection)."""

    dialect: Dialect = "clickhouse"

    def __init__(self, store: ClickHouseStore) -> None:
        self.store = store

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self.store.transport.command(sql, params)

    def insert(self, table: str, data: pa.Table) -> None:
        self.store.insert(table, data)


# --- the store ------------------------------------------------------------------------------------


class ClickHouseStore:
    """`store = "clickhouse://..."` or `"chdb:///..."`: telemetry in the Collector's tables, aiwatch's
    own tables beside them in the same database."""

    dialect: Dialect = "clickhouse"

    def __init__(self, target: StoreTarget, mapping: SourceMapping, *, traces_table: str = "otel_traces",
                 logs_table: str = "otel_logs", cluster: str = "", retention_days: int = 30,
                 analysis_retention_days: int = 400, queue_max_rows: int = 400_000, writer_max_rows: int = 50_000,
                 keeper_map: bool = False, keeper: str = "", materialize: bool = False,
                 transport: Transport | None = None) -> None:
        if target.kind not in ("clickhouse", "chdb"):
            raise StoreSettingError(f"store: {target.kind} is not a ClickHouse target")
        self.target = target
        self.mapping = mapping
        self.database = identifier(target.database, "store: database")
        self.traces_table = f"{self.database}.{identifier(traces_table, 'traces_table')}"
        self.logs_table = f"{self.database}.{identifier(logs_table, 'logs_table')}"
        self.cluster = identifier(cluster, "clickhouse_cluster") if cluster else ""
        self.retention_days, self.analysis_retention_days = retention_days, analysis_retention_days
        self.materialize = materialize   # the `clickhouse_materialize` setting
        # Several instances (the `lease` setting): the lease and the notification log are KeeperMap
        # tables in Keeper (chdb: the `keeper` ensemble; a server: its own <zookeeper> configuration).
        if keeper_map and target.kind == "chdb" and not keeper:
            raise StoreSettingError("lease: chdb needs the `keeper` setting (host:port of Keeper or ZooKeeper)")
        self.keeper_map, self.keeper = keeper_map, keeper
        self.keeper_ready = not keeper_map   # its tables in Keeper exist (ensure_keeper)
        self._keeper_lock = threading.Lock()
        # set by the server while it runs the lease: False once this instance may no longer act as holder
        self.fence: Callable[[], bool] | None = None
        self.transport = transport or self.new_transport()
        self.migrate()
        self.transport.use(target.database)   # unqualified names (the read API's queries) mean this database
        self.writer = ClickHouseWriter(self._apply, queue_max_rows, writer_max_rows)

    def new_transport(self, query_timeout_s: float = 300) -> Transport:
        """Another connection to the same database (the lease's own, so a renewal never queues behind
        an analyzer's query on the store's connection; with its own deadline, so a server whose
        Keeper hangs fails a renewal in time instead of holding it for minutes)."""
        if self.target.kind == "chdb":
            return ChdbTransport(self.target.path, self.keeper)
        return HttpTransport(self.target, query_timeout_s=query_timeout_s)

    # --- reads
    def query(self, sql: str, params: Params = None) -> pa.Table:
        named = _named(params)
        if named and "$" in sql:
            sql = bind_named(sql, named)
        return _naive(self.transport.query(sql, named))

    def scalar(self, sql: str, params: Params = None) -> Any:
        table = self.query(sql, params)
        return table.column(0)[0].as_py() if table.num_rows else None

    def query_capped(self, sql: str, params: Params, max_bytes: int, batch_rows: int = 256) -> tuple[pa.Table, bool]:
        table = self.query(sql, params)
        kept: list[pa.RecordBatch] = []
        size = 0
        for batch in table.to_batches(batch_rows):
            if kept and size + batch.nbytes > max_bytes:
                return pa.Table.from_batches(kept, table.schema), True
            kept.append(batch)
            size += batch.nbytes
        return pa.Table.from_batches(kept, table.schema), False

    # --- writes
    def table(self, name: str) -> str:
        """The quoted, database-qualified name of one of aiwatch's tables or views."""
        return f"{self.database}.{identifier(name, 'table')}"

    def insert(self, name: str, data: pa.Table) -> None:
        """Append rows to aiwatch's table `name`; `spans` and `logs` rows go to the Collector's tables."""
        if data.num_rows:
            from store.clickhouse_schema import OWN_ROWS

            target = ({"spans": self.traces_table, "logs": self.logs_table}.get(name)
                      or self.table(OWN_ROWS.get(name, name)))
            self.transport.insert(target, data)

    def _apply(self, tables: dict[str, pa.Table], fn: WriteFn | None) -> Any:
        resources = tables.get("resources")
        for name, data in tables.items():
            if name == "resources":
                continue   # folded into each span's ResourceAttributes, as the Collector stores them
            if name == "spans":
                self.transport.insert_select(self.traces_table, self.mapping.to_otel_traces(data, resources))
            elif name == "logs":
                self.transport.insert_select(self.logs_table, self.mapping.to_otel_logs(data))
            else:
                self.insert(name, data)
        return fn(ClickHouseConnection(self)) if fn is not None else None

    def append(self, tables: Mapping[str, pa.Table], timeout: float | None = 60) -> None:
        self.writer.write(dict(tables), timeout=timeout)

    def migrate(self) -> int:
        from store.clickhouse_schema import migrate

        return migrate(self)

    def check_keeper(self, deadline_s: float = KEEPER_PROBE_S) -> None:
        """Raise KeeperAway when a node of chdb's Keeper accepts connections but does not answer
        (store/keeper_probe.py): the engine would wait on it for minutes, and every query of the
        process with it. A server's Keeper is the server's (the lease's requests have a deadline)."""
        if self.target.kind == "chdb" and self.keeper:
            from store.keeper_probe import unanswering

            silent = unanswering(parse_keeper(self.keeper), deadline_s)
            if silent:
                raise KeeperAway(f"Keeper node(s) {', '.join(silent)} accept connections but do not answer "
                                 f"within {deadline_s:g} s")

    def ensure_keeper(self, transport: Transport) -> None:
        """Create the tables in Keeper (the notification log, the send claims) if not done yet, on
        `transport`; raises while Keeper is unreachable. Nothing that needs them runs before: they
        are used only by the lease holder, and the lease calls this before it contends."""
        from store import clickhouse_alerts

        with self._keeper_lock:
            if self.keeper_ready:
                return
            self.check_keeper()
            on = f" ON CLUSTER {self.cluster}" if self.cluster else ""
            for stmt in clickhouse_alerts.keeper_statements(self, on):
                transport.command(stmt)
            self.keeper_ready = True

    def delete_older_than(self, cutoff: datetime | None, analysis_cutoff: datetime | None = None) -> dict[str, int]:
        """Partitions by day with TTL do the routine work; this drops what a shortened retention left."""
        from store.clickhouse_schema import delete_older_than

        return self.writer.write(fn=lambda con: delete_older_than(con, cutoff, analysis_cutoff))

    def size_bytes(self) -> int:
        return int(self.scalar("SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = "
                               "{db:String}", {"db": self.target.database}) or 0)

    def close(self) -> None:
        self.writer.stop()
        self.transport.close()


_LITERAL_OR_NAME = re.compile(r"('(?:[^'\\]|\\.|'')*')|\$([A-Za-z_][A-Za-z0-9_]*)")


def _ch_type(value: Any) -> str:
    """The ClickHouse type a bound value is declared as (by its Python type)."""
    if value is None:
        return "Nullable(String)"
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int64"
    if isinstance(value, float):
        return "Float64"
    if isinstance(value, datetime):
        return "DateTime64(6)"
    if isinstance(value, (list, tuple)):
        inner = {_ch_type(v) for v in value if v is not None} or {"String"}
        if len(inner) != 1:
            raise TypeError("a bound list mixes types")
        item = inner.pop()
        return f"Array(Nullable({item}))" if None in value and not item.startswith("Array") else f"Array({item})"
    return "String"


def bind_named(sql: str, params: Mapping[str, Any]) -> str:
    """DuckDB-style `$name` placeholders (outside string literals) as ClickHouse's typed
    `{name:Type}`, typed by the bound values: the read API's portable statements run on both
    engines unchanged. The values stay bound; nothing is spliced into the text."""
    def one(m: re.Match) -> str:
        if m.group(1) is not None:
            return m.group(1)
        name = m.group(2)
        if name not in params:
            raise KeyError(f"parameter ${name} is not bound")
        return "{" + f"{name}:{_ch_type(params[name])}" + "}"
    return _LITERAL_OR_NAME.sub(one, sql)


def _named(params: Params) -> dict[str, Any] | None:
    if params is None:
        return None
    if isinstance(params, Mapping):
        return dict(params)
    if len(params) == 0:
        return None
    raise TypeError("ClickHouse statements bind named parameters ({name:Type}), not positional ones")

