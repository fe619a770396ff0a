"""All SQL the alerts stage runs: reading analyzer outputs for rule conditions, and reading and
writing alert state, groups, the notification log, the outbox, silences and the review record.

Reads take any object with `.query(sql, params) -> pyarrow.Table` (the `Store`, or an in-memory
copy), or a backtest's `AnalysisIndex` (store/replay_index.py), which answers them without SQL.
Writes take the writer's connection (run them inside `store.writer.write(fn=...)` so that one
tick's changes commit together on DuckDB; on ClickHouse each table's insert is atomic and rows are
versioned, see store/clickhouse_alerts.py).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from store import clickhouse_alerts as ch
from store.base import Reader
from store.replay_index import AnalysisIndex
from store.sql import connect

# --- analyzer outputs -------------------------------------------------------------------------

# When a row is visible at `now`: once its bucket is complete (1m and 1h rows: time = bucket start;
# burn rates: time = the evaluated minute), or once it was computed. Live, the hourly analyzers
# rewrite the current hour every few minutes, so a partial hour counts as soon as it exists; a
# replay of rows computed later falls back to bucket completion. Rows go stale after `_STALE_S`.
_VISIBLE_S = "(CASE WHEN metric LIKE 'burn_rate%' THEN 60 WHEN grain = '1h' THEN 3600 ELSE 60 END)"
_STALE_S = "(CASE WHEN metric LIKE 'burn_rate%' THEN 300 WHEN grain = '1h' THEN 7200 ELSE 300 END)"
_VISIBLE = f"(time + to_seconds({_VISIBLE_S}) <= $now OR (computed_at <= $now AND time <= $now))"


# DuckDB's spellings of the functions these reads use, and ClickHouse's (same semantics on these arguments)
_CLICKHOUSE_NAMES = (("to_seconds(", "toIntervalSecond("), ("list_contains(", "has("))


def _dialect(db: Any, sql: str) -> str:
    """The statement for `db`'s engine (the window functions, QUALIFY and GROUP BY ALL are shared)."""
    if _on_clickhouse(db):
        for duck, click in _CLICKHOUSE_NAMES:
            sql = sql.replace(duck, click)
    return sql


def _on_clickhouse(target: Any) -> bool:
    return getattr(target, "dialect", "duckdb") == "clickhouse"


def analysis_table_exists(db: Reader) -> bool:
    if getattr(db, "has_analysis", False) or _on_clickhouse(db):   # a backtest's copy, or ClickHouse's view:
        return True                                                     # made with the store
    t = db.query("SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'analysis_metrics'")
    return bool(t.column("n")[0].as_py())


def latest_values(db: Reader, now: datetime, keys: Sequence[str]) -> pa.Table:
    """The newest visible, still-current row per series for each 'metric|grain' in `keys`."""
    if isinstance(db, AnalysisIndex):
        return db.latest_values(now, keys)
    hourly = [k for k in keys if k.endswith("|1h") and not k.startswith("burn_rate")]
    recent = [k for k in keys if k not in hourly]
    parts = []
    # Two scans with plain time bounds (zone maps prune): hourly buckets stay current for 2h,
    # minute buckets and burn rates for minutes.
    for subset, horizon in ((hourly, "INTERVAL 2 HOUR"), (recent, "INTERVAL 6 MINUTE")):
        if not subset:
            continue
        parts.append(db.query(_dialect(db, f"""
            SELECT metric, grain, service_name, model, model_version, route, arm, value, time
            FROM analysis_metrics
            WHERE time > $now - {horizon} AND time <= $now
              AND list_contains($keys, metric || '|' || grain)
              AND {_VISIBLE} AND time > $now - to_seconds({_STALE_S})
            QUALIFY row_number() OVER (PARTITION BY metric, grain, service_name, model, model_version, route, arm
                                       ORDER BY time DESC, computed_at DESC NULLS LAST) = 1"""),
                              {"keys": subset, "now": now}))
    return pa.concat_tables(parts) if len(parts) > 1 else (parts[0] if parts else pa.table({"metric": []}))


def minute_rows(db: Reader, now: datetime, windows: dict[str, float]) -> pa.Table:
    """Complete 1m buckets of each metric in its trailing window (`windows`: metric -> seconds;
    newest computation per bucket): what windowed conditions aggregate, fetched in one scan per
    evaluation."""
    longest = max(windows.values(), default=0.0)
    pairs = ("SELECT tupleElement(p, 1) AS metric, tupleElement(p, 2) AS over_s "
             "FROM (SELECT arrayJoin(arrayZip($metrics, $overs)) AS p)") if _on_clickhouse(db) else \
        "SELECT unnest($metrics) AS metric, unnest($overs)::DOUBLE AS over_s"
    return db.query(_dialect(db, f"""
        WITH w AS ({pairs})
        SELECT m.metric, service_name, model, model_version, route, arm, time, value
        FROM analysis_metrics m JOIN w ON w.metric = m.metric
        WHERE time <= $now - INTERVAL 1 MINUTE AND time > $now - to_seconds($longest) - INTERVAL 1 MINUTE
          AND time > $now - to_seconds(w.over_s) - INTERVAL 1 MINUTE
          AND grain = '1m' AND list_contains($metrics, m.metric)
        QUALIFY row_number() OVER (PARTITION BY m.metric, time, service_name, model, model_version, route, arm
                                   ORDER BY computed_at DESC NULLS LAST) = 1"""),
                    {"now": now, "longest": longest, "metrics": list(windows),
                     "overs": [float(v) for v in windows.values()]})


def minute_points(db: Reader, now: datetime, windows: dict[str, float]) -> dict[tuple[str, tuple], dict[datetime, Any]]:
    """minute_rows as {(metric, series): {bucket time: value}} (series: the SERIES_LABELS values)."""
    if isinstance(db, AnalysisIndex):
        return db.minute_points(now, windows)
    table = minute_rows(db, now, windows)
    cols = [table.column(c).to_pylist() for c in ("metric", "service_name", "model", "model_version", "route",
                                                  "arm", "time", "value")]
    out: dict[tuple[str, tuple], dict[datetime, Any]] = {}
    for metric, *labels, t, value in zip(*cols):
        out.setdefault((metric, tuple(labels)), {})[t] = value
    return out


def baseline_means(db: Reader, now: datetime, metric: str, grain: str, window_s: float) -> pa.Table:
    """Mean of `metric` per series over the trailing window, excluding the newest visible bucket."""
    if isinstance(db, AnalysisIndex):
        return db.baseline_means(now, metric, grain, window_s)
    return db.query(_dialect(db, f"""
        SELECT service_name, model, model_version, route, arm, avg(value) AS baseline, count(*) AS n
        FROM (SELECT * FROM analysis_metrics
              WHERE time >= $now - to_seconds($window) AND time <= $now AND metric = $metric AND grain = $grain
                AND time <= $now - to_seconds(2 * {_VISIBLE_S})
              QUALIFY row_number() OVER (PARTITION BY time, service_name, model, model_version, route, arm
                                         ORDER BY computed_at DESC NULLS LAST) = 1)
        GROUP BY ALL"""), {"metric": metric, "grain": grain, "now": now, "window": window_s})


def trailing_sums(db: Reader, now: datetime, metrics: Sequence[str], window_s: float, exclude_s: float) -> pa.Table:
    """Per metric and series: the sum of the 1m buckets starting in [now - window_s - exclude_s,
    now - exclude_s] (the history before a test window) and the first bucket's time."""
    if isinstance(db, AnalysisIndex):
        return db.trailing_sums(now, metrics, window_s, exclude_s)
    return db.query(_dialect(db, """
        SELECT metric, service_name, model, model_version, route, arm, sum(value) AS total, min(time) AS first
        FROM (SELECT * FROM analysis_metrics
              WHERE time >= $now - to_seconds($window + $exclude) AND time <= $now - to_seconds($exclude)
                AND grain = '1m' AND list_contains($metrics, metric)
              QUALIFY row_number() OVER (PARTITION BY metric, time, service_name, model, model_version, route, arm
                                         ORDER BY computed_at DESC NULLS LAST) = 1)
        GROUP BY ALL"""), {"now": now, "window": window_s, "exclude": exclude_s, "metrics": list(metrics)})


def traffic_last_seen(db: Reader, now: datetime, had_traffic_s: float) -> pa.Table:
    """Per service (its rollup row): requests in the trailing `had_traffic_s` and the start of the
    newest minute with any, provided the analyzers are alive (a minute bucket or a computation
    within the last 5 minutes), so a stopped analyzer does not look like silent services."""
    if isinstance(db, AnalysisIndex):
        return db.traffic_last_seen(now, had_traffic_s)
    return db.query(_dialect(db, """
        WITH r AS (
          SELECT service_name, time, value FROM analysis_metrics
          WHERE time <= $now - INTERVAL 1 MINUTE AND time > $now - to_seconds($had) - INTERVAL 1 MINUTE
            AND metric = 'requests' AND grain = '1m' AND service_name IS NOT NULL AND model IS NULL
            AND model_version IS NULL AND route IS NULL AND arm IS NULL),
        alive AS (
          SELECT max(time) > $now - INTERVAL 6 MINUTE AS bucketed,
                 max(computed_at) > $now - INTERVAL 5 MINUTE AS computed
          FROM analysis_metrics WHERE time <= $now - INTERVAL 1 MINUTE
            AND time > $now - to_seconds($had) - INTERVAL 1 MINUTE AND metric = 'requests' AND grain = '1m')
        SELECT service_name, sum(value) AS total, max(time) FILTER (WHERE value > 0) AS last_seen
        FROM r, alive
        WHERE coalesce(alive.bucketed, false) OR coalesce(alive.computed, false)
        GROUP BY service_name HAVING sum(value) > 0"""), {"now": now, "had": had_traffic_s})


def analysis_window(db: Reader, start: datetime, end: datetime, metrics: Sequence[str] | None = None) -> pa.Table:
    """Every analyzer row in [start, end) (of `metrics`, when given): what a backtest replays."""
    return db.query("SELECT * FROM analysis_metrics WHERE time >= $start AND time < $end "
                    "AND ($all OR list_contains($metrics, metric))",
                    {"start": start, "end": end, "all": metrics is None, "metrics": list(metrics or [])})


ANALYSIS_METRICS_DDL = """CREATE TABLE IF NOT EXISTS analysis_metrics (
    time TIMESTAMP, grain VARCHAR, metric VARCHAR, service_name VARCHAR, model VARCHAR,
    model_version VARCHAR, route VARCHAR, arm VARCHAR, value DOUBLE, computed_at TIMESTAMP)"""


def memory_copy(rows: pa.Table) -> MemoryDB:
    """An in-memory analysis_metrics holding `rows`, for backtests away from the server's file."""
    con = connect(":memory:")
    _run(con, ANALYSIS_METRICS_DDL)
    if rows.num_rows:
        con.register("_rows", rows)
        # time order lets DuckDB's zone maps skip everything outside each step's window
        _run(con, "INSERT INTO analysis_metrics BY NAME SELECT * FROM _rows ORDER BY time")
        con.unregister("_rows")
    return MemoryDB(con, has_analysis=True)


class MemoryDB:
    def __init__(self, con: duckdb.DuckDBPyConnection, has_analysis: bool = False) -> None:
        self.con = con
        self.has_analysis = has_analysis

    def query(self, sql: str, params: Any = None) -> pa.Table:
        return self.con.sql(sql, params=params or None).to_arrow_table()

    def scalar(self, sql: str, params: Any = None) -> Any:
        table = self.query(sql, params)
        return table.column(0)[0].as_py() if table.num_rows else None


def open_read_only(path: str) -> MemoryDB:
    return MemoryDB(connect(path, read_only=True))


# --- alert state ------------------------------------------------------------------------------

STATE_COLUMNS = ("fingerprint", "rule", "severity", "labels", "annotations", "state", "active_at", "fired_at",
                 "resolved_at", "last_true_at", "last_eval_at", "value", "threshold", "group_key",
                 "resolve_flushed")
GROUP_COLUMNS = ("group_key", "route", "group_labels", "created_at", "next_flush_at", "last_flush_at")
NFLOG_COLUMNS = ("group_key", "receiver", "firing", "resolved", "notified_at")
OUTBOX_COLUMNS = ("id", "seq", "created_at", "receiver", "receiver_type", "group_key", "status", "dedup_key",
                  "payload", "state", "attempts", "next_attempt_at", "delivered_at", "last_status", "last_error")
HISTORY_COLUMNS = ("time", "fingerprint", "rule", "severity", "labels", "from_state", "to_state", "value",
                   "threshold")
NOTIFICATION_COLUMNS = ("time", "outbox_id", "receiver", "receiver_type", "group_key", "status", "attempt",
                        "outcome", "http_status", "error", "duration_ms")
REVIEW_COLUMNS = ("time", "fingerprint", "rule", "severity", "status", "labels", "summary", "description",
                  "value", "threshold", "starts_at", "ends_at", "outbox_id")

_TYPES = {"active_at": pa.timestamp("us"), "fired_at": pa.timestamp("us"), "resolved_at": pa.timestamp("us"),
          "last_true_at": pa.timestamp("us"), "last_eval_at": pa.timestamp("us"), "created_at": pa.timestamp("us"),
          "next_flush_at": pa.timestamp("us"), "last_flush_at": pa.timestamp("us"),
          "notified_at": pa.timestamp("us"), "next_attempt_at": pa.timestamp("us"),
          "delivered_at": pa.timestamp("us"), "time": pa.timestamp("us"), "starts_at": pa.timestamp("us"),
          "ends_at": pa.timestamp("us"), "value": pa.float64(), "threshold": pa.float64(),
          "duration_ms": pa.float64(), "seq": pa.int64(), "attempts": pa.int32(), "attempt": pa.int32(),
          "last_status": pa.int32(), "http_status": pa.int32(), "resolve_flushed": pa.bool_()}


def _arrow(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> pa.Table:
    rows = list(rows)
    return pa.table({c: pa.array([r.get(c) for r in rows], type=_TYPES.get(c, pa.string())) for c in columns})


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> list[tuple]:
    """Execute and drain the result (DuckDB refuses new work on a connection with an open result)."""
    return con.execute(sql, params or []).fetchall()


def _insert(con: Any, table: str, rows: Sequence[dict[str, Any]],
            columns: Sequence[str], replace: bool = False) -> None:
    if not rows:
        return
    if _on_clickhouse(con):
        if table in ch.VERSIONED:
            ch.upsert(con, table, rows)
        else:
            con.insert(table, _arrow(rows, columns))
        return
    con.register("_alert_rows", _arrow(rows, columns))
    try:
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        _run(con, f"{verb} INTO {table} BY NAME SELECT * FROM _alert_rows")
    finally:
        con.unregister("_alert_rows")


def load_states(db: Reader) -> list[dict[str, Any]]:
    return db.query(f"SELECT {', '.join(STATE_COLUMNS)} FROM alert_state").to_pylist()


def load_groups(db: Reader) -> list[dict[str, Any]]:
    return db.query(f"SELECT {', '.join(GROUP_COLUMNS)} FROM alert_groups").to_pylist()


def load_nflog(db: Reader) -> list[dict[str, Any]]:
    return db.query(f"SELECT {', '.join(NFLOG_COLUMNS)} FROM alert_nflog").to_pylist()


def save_tick(con: Any, *, states: Sequence[dict], deleted_states: Sequence[str],
              history: Sequence[dict], groups: Sequence[dict], deleted_groups: Sequence[str],
              nflog: Sequence[dict], outbox: Sequence[dict], kv: dict[str, str] | None = None,
              now: datetime | None = None) -> None:
    """One evaluation tick's changes, in the writer's transaction: decisions and outbox together."""
    if _on_clickhouse(con):
        ch.check_fence(con)     # a former lease holder decides nothing more
        ch.delete(con, "alert_state", [{"fingerprint": fp} for fp in deleted_states])
        ch.delete(con, "alert_groups", [{"group_key": k} for k in deleted_groups])
        if outbox:
            base = con.store.scalar("SELECT coalesce(max(seq), 0) FROM alert_outbox") or 0
            outbox = [{**row, "seq": base + i + 1} for i, row in enumerate(outbox)]
        for table, rows, columns in (("alert_state", states, STATE_COLUMNS), ("alert_history", history, HISTORY_COLUMNS),
                                     ("alert_groups", groups, GROUP_COLUMNS), ("alert_nflog", nflog, NFLOG_COLUMNS),
                                     ("alert_outbox", outbox, OUTBOX_COLUMNS)):
            _insert(con, table, rows, columns)
        ch.upsert(con, "alert_kv", [{"key": k, "value": v, "updated_at": now} for k, v in (kv or {}).items()])
        return
    if deleted_states:
        _run(con, "DELETE FROM alert_state WHERE list_contains($fps, fingerprint)", {"fps": list(deleted_states)})
    _insert(con, "alert_state", states, STATE_COLUMNS, replace=True)
    _insert(con, "alert_history", history, HISTORY_COLUMNS)
    if deleted_groups:
        _run(con, "DELETE FROM alert_groups WHERE list_contains($keys, group_key)", {"keys": list(deleted_groups)})
    _insert(con, "alert_groups", groups, GROUP_COLUMNS, replace=True)
    _insert(con, "alert_nflog", nflog, NFLOG_COLUMNS, replace=True)
    if outbox:
        base = _run(con, "SELECT coalesce(max(seq), 0) FROM alert_outbox")[0][0]
        outbox = [{**row, "seq": base + i + 1} for i, row in enumerate(outbox)]
        _insert(con, "alert_outbox", outbox, OUTBOX_COLUMNS)
    for key, value in (kv or {}).items():
        _run(con, "INSERT OR REPLACE INTO alert_kv VALUES (?, ?, ?)", [key, value, now])


def replace_history(con: Any, since: datetime, until: datetime,
                    history: Sequence[dict], states: Sequence[dict]) -> None:
    """Alert history backfill: the window's transitions replaced, the final states upserted."""
    if _on_clickhouse(con):
        con.execute("DELETE FROM alert_history WHERE time >= {since:DateTime64(6)} AND time < {until:DateTime64(6)}",
                    {"since": since, "until": until})
        _insert(con, "alert_history", history, HISTORY_COLUMNS)
        _insert(con, "alert_state", states, STATE_COLUMNS)
        return
    _run(con, "DELETE FROM alert_history WHERE time >= $since AND time < $until", {"since": since, "until": until})
    _insert(con, "alert_history", history, HISTORY_COLUMNS)
    _insert(con, "alert_state", states, STATE_COLUMNS, replace=True)


def get_kv(db: Reader, key: str) -> str | None:
    t = db.query("SELECT value FROM alert_kv WHERE key = $key", {"key": key})
    return t.column("value")[0].as_py() if t.num_rows else None


def garbage_collect(con: Any, now: datetime) -> None:
    """Forget resolved alerts after a day and notification-log entries after five (history stays)."""
    if _on_clickhouse(con):
        ch.delete(con, "alert_state", ch.current(con, "alert_state", "state = 'resolved' AND resolve_flushed "
                                                 "AND resolved_at < $t", {"t": now - timedelta(days=1)}))
        ch.delete(con, "alert_nflog", ch.current(con, "alert_nflog", "notified_at < $t",
                                                 {"t": now - timedelta(days=5)}))
        if con.store.keeper_map:
            ch.forget_sends(con, now - timedelta(days=5))
        return
    _run(con, "DELETE FROM alert_state WHERE state = 'resolved' AND resolve_flushed AND resolved_at < $t",
                {"t": now - timedelta(days=1)})
    _run(con, "DELETE FROM alert_nflog WHERE notified_at < $t", {"t": now - timedelta(days=5)})


# --- outbox and deliveries ------------------------------------------------------------------

def _keeper(store: Any) -> bool:
    return _on_clickhouse(store) and bool(getattr(store, "keeper_map", False))


def begin_send(store: Any, outbox_id: str, now: datetime) -> str:
    """Several instances (KeeperMap): claim the send of an outbox row ('go', 'sent' or 'unknown',
    store/clickhouse_alerts.begin_send); one instance: always 'go' (at least once, as before)."""
    if not _keeper(store):
        return "go"
    return store.writer.write(fn=lambda con: ch.begin_send(con, outbox_id, now))


def end_send(store: Any, outbox_id: str, state: str, now: datetime) -> None:
    if _keeper(store):
        store.writer.write(fn=lambda con: ch.end_send(con, outbox_id, state, now))

def pending_outbox(db: Reader, limit: int = 500, receiver: str | None = None) -> list[dict[str, Any]]:
    """Pending rows in decision order; per receiver, so a backlog for one never hides another's."""
    return db.query(f"SELECT {', '.join(OUTBOX_COLUMNS)} FROM alert_outbox WHERE state = 'pending' "
                    "AND ($receiver IS NULL OR receiver = $receiver) ORDER BY seq LIMIT $limit",
                    {"limit": limit, "receiver": receiver}).to_pylist()


def record_attempt(con: Any, outbox_id: str, *, state: str, attempts: int,
                   next_attempt_at: datetime | None, delivered_at: datetime | None, last_status: int | None,
                   last_error: str | None, notification: dict[str, Any],
                   review: Sequence[dict[str, Any]] = ()) -> None:
    if _on_clickhouse(con):
        for row in ch.current(con, "alert_outbox", "id = $id", {"id": outbox_id}):
            ch.upsert(con, "alert_outbox", [{**row, "state": state, "attempts": attempts,
                                             "next_attempt_at": next_attempt_at, "delivered_at": delivered_at,
                                             "last_status": last_status, "last_error": last_error}])
    else:
        _run(con, """UPDATE alert_outbox SET state = $state, attempts = $attempts, next_attempt_at = $next,
                   delivered_at = $delivered, last_status = $status, last_error = $error WHERE id = $id""",
             {"state": state, "attempts": attempts, "next": next_attempt_at, "delivered": delivered_at,
              "status": last_status, "error": last_error, "id": outbox_id})
    _insert(con, "alert_notifications", [notification], NOTIFICATION_COLUMNS)
    _insert(con, "alert_review", review, REVIEW_COLUMNS)


def review_since(db: Reader, since: datetime) -> list[dict[str, Any]]:
    return db.query("SELECT * FROM alert_review WHERE time >= $since ORDER BY time", {"since": since}).to_pylist()


# --- silences ---------------------------------------------------------------------------------

def insert_silence(con: Any, row: dict[str, Any]) -> None:
    if _on_clickhouse(con):
        ch.upsert(con, "alert_silences", [{**row, "matchers": json.dumps(row["matchers"]), "created_at": row["now"],
                                           "updated_at": row["now"]}])
        return
    _run(con, """INSERT INTO alert_silences (id, matchers, starts_at, ends_at, created_by, comment, created_at,
                   updated_at) VALUES ($id, $matchers, $starts_at, $ends_at, $created_by, $comment, $now, $now)""",
                {**row, "matchers": json.dumps(row["matchers"])})


def expire_silence(con: Any, silence_id: str, now: datetime) -> bool:
    """End a silence now; returns False when no active or future silence has that id (or prefix)."""
    if _on_clickhouse(con):
        return ch.expire_silence(con, silence_id, now)
    found = _run(con, """SELECT id FROM alert_silences WHERE (id = $id OR starts_with(id, $id))
                           AND ends_at > $now""", {"id": silence_id, "now": now})
    if len(found) != 1:
        return False
    _run(con, """UPDATE alert_silences SET ends_at = $now, starts_at = least(starts_at, $now), updated_at = $now
                   WHERE id = $id""", {"id": found[0][0], "now": now})
    return True


def active_silences(db: Reader, now: datetime) -> list[dict[str, Any]]:
    rows = db.query("SELECT * FROM alert_silences WHERE starts_at <= $now AND ends_at > $now",
                    {"now": now}).to_pylist()
    for r in rows:
        r["matchers"] = json.loads(r["matchers"])
    return rows


# --- named read queries (registered by alerts/register.py) -------------------------------------

ALERTS_SQL = """
    SELECT fingerprint, rule, severity, state, labels, annotations, active_at, fired_at, resolved_at,
           last_eval_at, value, threshold, group_key
    FROM alert_state
    WHERE ($state IS NULL OR state = $state) AND ($severity IS NULL OR severity = $severity)
      AND ($service IS NULL OR json_extract_string(labels, '$.service') = $service)
    ORDER BY CASE state WHEN 'firing' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END, severity, active_at DESC
    LIMIT $limit"""

ALERT_HISTORY_SQL = """
    SELECT time, fingerprint, rule, severity, from_state, to_state, labels, value, threshold
    FROM alert_history
    WHERE time >= $start AND time < $end AND ($rule IS NULL OR rule = $rule)
      AND ($severity IS NULL OR severity = $severity)
      AND ($service IS NULL OR json_extract_string(labels, '$.service') = $service)
    ORDER BY time DESC LIMIT $limit"""

# ClickHouse reads the labels' JSON with its own function ('' for a missing key never equals a service)
_SERVICE_LABEL = ("json_extract_string(labels, '$.service')", "JSONExtractString(labels, 'service')")
ALERTS_SQL_CLICKHOUSE = ALERTS_SQL.replace(*_SERVICE_LABEL)
ALERT_HISTORY_SQL_CLICKHOUSE = ALERT_HISTORY_SQL.replace(*_SERVICE_LABEL)

SILENCES_SQL = """
    SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at, updated_at,
           CASE WHEN ends_at <= $now THEN 'expired' WHEN starts_at > $now THEN 'pending' ELSE 'active' END AS status
    FROM alert_silences
    WHERE $include_expired OR ends_at > $now
    ORDER BY ends_at DESC LIMIT $limit"""

NOTIFICATIONS_SQL = """
    SELECT n.time, n.receiver, n.receiver_type, n.status, n.attempt, n.outcome, n.http_status, n.error,
           n.duration_ms, n.group_key, n.outbox_id, o.state AS outbox_state
    FROM alert_notifications n LEFT JOIN alert_outbox o ON o.id = n.outbox_id
    WHERE n.time >= $start AND n.time < $end AND ($receiver IS NULL OR n.receiver = $receiver)
      AND ($outcome IS NULL OR n.outcome = $outcome)
    ORDER BY n.time DESC LIMIT $limit"""

OUTBOX_SQL = """
    SELECT id, seq, created_at, receiver, receiver_type, status, dedup_key, state, attempts, next_attempt_at,
           delivered_at, last_status, last_error, group_key
    FROM alert_outbox WHERE ($state IS NULL OR state = $state) ORDER BY seq DESC LIMIT $limit"""

REVIEW_SQL = """
    SELECT time, rule, severity, status, labels, summary, description, value, threshold, starts_at, ends_at
    FROM alert_review WHERE time >= $start AND time < $end ORDER BY time DESC LIMIT $limit"""
