"""The alerts stage's tables on ClickHouse, and the writes store/alerting.py makes there.

ClickHouse has no in-place UPDATE or primary-key upsert, so every table DuckDB updates in place
(alert state, groups, notification log, outbox, silences, key-value) is a ReplacingMergeTree
`<name>_rows` keyed like DuckDB's primary key: a change inserts a new version of the row, a delete
inserts a tombstone (`deleted = 1`). A view `<name>` reads the newest version with FINAL and drops
tombstones, so the readers in store/alerting.py and the read API run the same SELECTs on both
backends. Append-only tables (history, delivery attempts, review) are plain MergeTree.

With several instances (`store.keeper_map`, the `lease` setting) the notification log is a KeeperMap
table in Keeper instead: `alert_nflog_keeper`, keyed by group and receiver, read through the same
`alert_nflog` view. Whichever instance holds the lease reads what every earlier holder notified, at
once and consistently (Keeper's linearizable writes), so a new holder never pages an alert again.
Its writes are fenced: an instance that no longer holds the lease cannot record (or send) a page.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from store.clickhouse import ClickHouseConnection, ClickHouseStore

_T, _S, _F, _I, _L, _B = "DateTime64(6)", "String", "Float64", "Int32", "Int64", "Bool"
_ARROW = {_T: pa.timestamp("us"), _S: pa.string(), _F: pa.float64(), _I: pa.int32(), _L: pa.int64(), _B: pa.bool_()}

# table -> (key columns, other columns with their types); the same columns as store/schema_alerts.py
VERSIONED: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "alert_state": (("fingerprint",), {
        "rule": _S, "severity": _S, "labels": _S, "annotations": _S, "state": _S, "active_at": _T, "fired_at": _T,
        "resolved_at": _T, "last_true_at": _T, "last_eval_at": _T, "value": _F, "threshold": _F, "group_key": _S,
        "resolve_flushed": _B}),
    "alert_groups": (("group_key",), {"route": _S, "group_labels": _S, "created_at": _T, "next_flush_at": _T,
                                      "last_flush_at": _T}),
    "alert_nflog": (("group_key", "receiver"), {"firing": _S, "resolved": _S, "notified_at": _T}),
    "alert_outbox": (("id",), {
        "seq": _L, "created_at": _T, "receiver": _S, "receiver_type": _S, "group_key": _S, "status": _S,
        "dedup_key": _S, "payload": _S, "state": _S, "attempts": _I, "next_attempt_at": _T, "delivered_at": _T,
        "last_status": _I, "last_error": _S}),
    "alert_silences": (("id",), {"matchers": _S, "starts_at": _T, "ends_at": _T, "created_by": _S, "comment": _S,
                                 "created_at": _T, "updated_at": _T}),
    "alert_kv": (("key",), {"value": _S, "updated_at": _T}),
}
APPENDED: dict[str, tuple[str, dict[str, str]]] = {   # table -> (time column, other columns)
    "alert_history": ("time", {"fingerprint": _S, "rule": _S, "severity": _S, "labels": _S, "from_state": _S,
                               "to_state": _S, "value": _F, "threshold": _F}),
    "alert_notifications": ("time", {"outbox_id": _S, "receiver": _S, "receiver_type": _S, "group_key": _S,
                                     "status": _S, "attempt": _I, "outcome": _S, "http_status": _I, "error": _S,
                                     "duration_ms": _F}),
    "alert_review": ("time", {"fingerprint": _S, "rule": _S, "severity": _S, "status": _S, "labels": _S,
                              "summary": _S, "description": _S, "value": _F, "threshold": _F, "starts_at": _T,
                              "ends_at": _T, "outbox_id": _S}),
}


NFLOG_KEEPER = "alert_nflog_keeper"
SENDS_KEEPER = "alert_sends_keeper"   # outbox id -> sending | sent | retry | failed: at most one send each
_KEY_SEPARATOR = "\x1f"   # group_key and receiver in one KeeperMap key (KeeperMap keys are one column)


class LeaseLost(RuntimeError):
    """This instance no longer holds the lease: it must not record or send notifications."""


def keeper_path(store: ClickHouseStore, name: str) -> str:
    """A KeeperMap table's path in Keeper, per database: two deployments on one Keeper stay apart."""
    return f"/{store.target.database}/{name}"


def keeper_statements(store: ClickHouseStore, on: str) -> list[str]:
    """DDL for the alert tables in Keeper (several instances; idempotent). Apart from `statements`:
    creating a KeeperMap table needs Keeper, and an instance must start, ingest and serve reads while
    Keeper is away (ClickHouseStore.ensure_keeper runs these once it answers)."""
    keys, cols = VERSIONED["alert_nflog"]
    nflog_columns = ", ".join(f"{c} Nullable({t})" for c, t in cols.items())
    return [f"""CREATE TABLE IF NOT EXISTS {store.table(NFLOG_KEEPER)}{on} (k String, group_key String,
            receiver String, {nflog_columns}) ENGINE = KeeperMap('{keeper_path(store, NFLOG_KEEPER)}') PRIMARY KEY k""",
            f"""CREATE TABLE IF NOT EXISTS {store.table(SENDS_KEEPER)}{on} (id String, state String,
            at DateTime64(6)) ENGINE = KeeperMap('{keeper_path(store, SENDS_KEEPER)}') PRIMARY KEY id""",
            f"""CREATE OR REPLACE VIEW {store.table("alert_nflog")}{on} AS SELECT {', '.join((*keys, *cols))}
            FROM {store.table(NFLOG_KEEPER)}"""]


def statements(store: ClickHouseStore, on: str, engine: Any) -> list[str]:
    """DDL for the alert tables (idempotent). `engine(name, args)` gives the (replicated) engine.
    With `store.keeper_map` the notification log is left to `keeper_statements`."""
    out = []
    for name, (keys, cols) in VERSIONED.items():
        if name == "alert_nflog" and store.keeper_map:
            continue
        columns = [f"{k} String" for k in keys] + [f"{c} Nullable({t})" for c, t in cols.items()]
        out.append(f"""CREATE TABLE IF NOT EXISTS {store.table(name + '_rows')}{on} ({', '.join(columns)},
            version UInt64, deleted UInt8 DEFAULT 0) ENGINE = {engine("ReplacingMergeTree", "version")}
            ORDER BY ({', '.join(keys)})""")
        out.append(f"""CREATE OR REPLACE VIEW {store.table(name)}{on} AS SELECT {', '.join((*keys, *cols))}
            FROM {store.table(name + '_rows')} FINAL WHERE deleted = 0""")
    for name, (time_column, cols) in APPENDED.items():
        columns = [f"{time_column} {_T}"] + [f"{c} Nullable({t})" for c, t in cols.items()]
        ttl = appended_ttl(store, name)
        out.append(f"""CREATE TABLE IF NOT EXISTS {store.table(name)}{on} ({', '.join(columns)})
            ENGINE = {engine("MergeTree")} PARTITION BY toYYYYMM({time_column}) ORDER BY {time_column}
            {f"TTL {ttl}" if ttl else ""}""")
    return out


def appended_ttl(store: ClickHouseStore, name: str) -> str:
    """The TTL of an append-only alert table: the record of what fired and what was sent is kept
    as long as the analyzers' reports the weekly review reads beside it (analysis_retention_days;
    0 keeps it). The versioned tables hold current state (garbage_collect tombstones what is
    done), so no TTL there: expiring a row's only version would drop live state."""
    days = store.analysis_retention_days
    return f"toDateTime({APPENDED[name][0]}) + toIntervalDay({int(days)})" if days else ""


def upgrade_ttl(store: ClickHouseStore, on: str) -> None:
    """Append-only alert tables created before they had a TTL get it (idempotent: only a table
    whose definition has no TTL is altered; ON CLUSTER when configured)."""
    for name in APPENDED:
        ttl = appended_ttl(store, name)
        if not ttl:
            continue
        engine_full = store.scalar("SELECT engine_full FROM system.tables WHERE database = {db:String} AND "
                                   "name = {name:String}", {"db": store.target.database, "name": name})
        if engine_full is not None and " TTL " not in f" {engine_full} ":
            store.transport.command(f"ALTER TABLE {store.table(name)}{on} MODIFY TTL {ttl}")


# Versions: nanoseconds since the epoch, strictly increasing within this process (a tombstone and
# the upsert after it in one tick keep their order; across instances the clock orders them).
_last = 0
_lock = threading.Lock()


def _version() -> int:
    global _last
    with _lock:
        _last = max(_last + 1, time.time_ns())
        return _last


def _arrow(name: str, rows: Sequence[dict[str, Any]], deleted: bool = False) -> pa.Table:
    keys, cols = VERSIONED[name]
    version = _version()
    data = {c: pa.array([r.get(c) for r in rows], type=_ARROW[cols.get(c, _S)]) for c in (*keys, *cols)}
    data["version"] = pa.array([version] * len(rows), pa.uint64())
    data["deleted"] = pa.array([int(deleted)] * len(rows), pa.uint8())
    return pa.table(data)


def check_fence(con: ClickHouseConnection) -> None:
    """Raise LeaseLost when this instance no longer holds the lease (several instances only)."""
    fence = con.store.fence
    if con.store.keeper_map and fence is not None and not fence():
        raise LeaseLost("this instance no longer holds the lease: no notification is recorded or sent")
    if con.store.keeper_map:
        con.store.check_keeper()    # a hung Keeper would hold this write, and every query, for minutes


def _in_keeper(con: ClickHouseConnection, name: str) -> bool:
    if name != "alert_nflog" or not con.store.keeper_map:
        return False
    check_fence(con)
    return True


def _nflog_key(row: dict[str, Any]) -> str:
    return f"{row['group_key']}{_KEY_SEPARATOR}{row['receiver']}"


def upsert(con: ClickHouseConnection, name: str, rows: Sequence[dict[str, Any]]) -> None:
    """New versions of `rows` (whole rows: columns left out become NULL)."""
    if rows and _in_keeper(con, name):   # KeeperMap: an insert of an existing key replaces it
        table = _arrow(name, rows).drop_columns(["version", "deleted"])
        con.insert(NFLOG_KEEPER, table.append_column("k", pa.array([_nflog_key(r) for r in rows], pa.string())))
    elif rows:
        con.insert(f"{name}_rows", _arrow(name, rows))


def delete(con: ClickHouseConnection, name: str, keys: Sequence[dict[str, Any]]) -> None:
    """Tombstones for the rows with these key values."""
    if keys and _in_keeper(con, name):
        con.execute(f"ALTER TABLE {con.store.table(NFLOG_KEEPER)} DELETE WHERE has({{keys:Array(String)}}, k)",
                    {"keys": [_nflog_key(k) for k in keys]})
    elif keys:
        con.insert(f"{name}_rows", _arrow(name, keys, deleted=True))


def current(con: ClickHouseConnection, name: str, where: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the view `name` matching `where` (`$name` parameters), read inside a write."""
    return con.store.query(f"SELECT * FROM {name} WHERE {where}", params).to_pylist()


def begin_send(con: ClickHouseConnection, outbox_id: str, now: datetime) -> str:
    """Claim the send of one outbox row in Keeper, before it is sent: 'go' (send it now), 'sent'
    (an earlier lease holder delivered it) or 'unknown' (one was sending it when it stopped, so it
    may have arrived: not sent again). Compare-and-set in strict mode, so two instances never both
    get 'go' for one row; a row whose last attempt failed retryably ('retry') may be claimed again."""
    check_fence(con)
    table = con.store.table(SENDS_KEEPER)
    params = {"id": outbox_id, "at": now}
    state = _send_state(con, table, outbox_id)
    try:
        if state is None:
            con.execute(f"INSERT INTO {table} SETTINGS keeper_map_strict_mode = 1 VALUES "
                        "({id:String}, 'sending', {at:DateTime64(6)})", params)
            return "go"
        if state == "retry":
            con.execute(f"ALTER TABLE {table} UPDATE state = 'sending', at = {{at:DateTime64(6)}} WHERE "
                        "id = {id:String} AND state = 'retry' SETTINGS keeper_map_strict_mode = 1", params)
            if _send_state(con, table, outbox_id) == "sending":
                return "go"
    except Exception:  # noqa: BLE001 - another instance claimed it first
        return "unknown"
    return "sent" if state in ("sent", "failed") else "unknown"


def end_send(con: ClickHouseConnection, outbox_id: str, state: str, now: datetime) -> None:
    """After the attempt: sent, retry (nothing arrived for sure: a later attempt may go) or failed."""
    con.execute(f"ALTER TABLE {con.store.table(SENDS_KEEPER)} UPDATE state = {{state:String}}, "
                "at = {at:DateTime64(6)} WHERE id = {id:String}", {"id": outbox_id, "state": state, "at": now})


def forget_sends(con: ClickHouseConnection, before: datetime) -> None:
    con.execute(f"ALTER TABLE {con.store.table(SENDS_KEEPER)} DELETE WHERE at < {{t:DateTime64(6)}}", {"t": before})


def _send_state(con: ClickHouseConnection, table: str, outbox_id: str) -> str | None:
    rows = con.store.transport.query(f"SELECT state FROM {table} WHERE id = {{id:String}}", {"id": outbox_id})
    return rows.column("state")[0].as_py() if rows.num_rows else None


def expire_silence(con: ClickHouseConnection, silence_id: str, now: datetime) -> bool:
    found = current(con, "alert_silences", "(id = $id OR startsWith(id, $id)) AND ends_at > $now",
                    {"id": silence_id, "now": now})
    if len(found) != 1:
        return False
    row = found[0]
    upsert(con, "alert_silences", [{**row, "ends_at": now, "starts_at": min(row["starts_at"], now),
                                    "updated_at": now}])
    return True
