"""The ClickHouse backend on the real engine (chdb, in-process): the `store` setting, idempotent
migrations, the Collector's tables read as aiwatch's spans through the one attribute map, aiwatch's
own OTLP ingest written in the Collector's row shape, and retention."""
from __future__ import annotations

import json
import threading
from datetime import timedelta

import pyarrow as pa
import pytest

from aiwatch.config import ConfigError, Settings
from collectors.content import build_policy
from collectors.traces import convert_traces
from core import semconv as sc
from core.clock import utcnow
from store.base import Store as StoreProtocol
from store.clickhouse import StoreSettingError, parse_store
from store.clickhouse_schema import SCHEMA_VERSION
from tests.backends import opened
from tests.otlp_builders import span_request

MAP = pa.map_(pa.string(), pa.string())


def test_the_store_setting_parses_every_form_and_refuses_the_rest():
    assert parse_store("duckdb").kind == "duckdb"
    t = parse_store("clickhouse://alice:s3cr%40t@ch.internal:9000/telemetry")
    assert (t.kind, t.user, t.password, t.host, t.port, t.database) == ("clickhouse", "alice", "s3cr@t",
                                                                        "ch.internal", 9000, "telemetry")
    assert "s3cr" not in t.describe() and "s3cr" not in repr(t)
    assert parse_store("clickhouse://h").database == "default" and parse_store("clickhouse://h").port == 8123
    assert parse_store("chdb:///var/lib/aiwatch?database=obs").path == "/var/lib/aiwatch"
    assert parse_store("chdb:///var/lib/aiwatch").database == "default"
    for bad in ("mysql://h/db", "chdb://relative/path", "clickhouse:///db", "clickhouse://h/a;DROP TABLE x",
                "chdb:///p?database=x`y", "chdb:///p?password=x", "clickhouse://h:99999/db"):
        with pytest.raises(StoreSettingError):
            parse_store(bad)


def test_settings_check_the_store_and_table_names():
    with pytest.raises(ConfigError, match="clickhouse_materialize"):
        Settings.load(env={}, store="duckdb", clickhouse_materialize=True)
    assert Settings.load(env={"AIWATCH_STORE": "chdb:///tmp/x?database=a"}).store == "chdb:///tmp/x?database=a"
    with pytest.raises(ConfigError, match="store"):
        Settings.load(env={"AIWATCH_STORE": "postgres://h/db"})
    with pytest.raises(ConfigError, match="traces_table"):
        Settings.load(env={"AIWATCH_TRACES_TABLE": "otel_traces; DROP TABLE x"})


def test_migrations_are_idempotent_and_create_the_collectors_schema(tmp_path):
    for _ in range(2):   # a second start (or a second instance) finds everything in place
        for store in opened("chdb", tmp_path, retention_days=30):
            assert isinstance(store, StoreProtocol) and store.dialect == "clickhouse"
            assert store.migrate() == SCHEMA_VERSION == 3
            cols = {r["name"]: r["type"] for r in store.query(
                "SELECT name, type FROM system.columns WHERE database = 'aiwatch_test' AND table = 'otel_traces'"
            ).to_pylist()}
            assert cols["SpanAttributes"] == "Map(LowCardinality(String), String)"
            assert cols["Duration"] == "UInt64" and cols["Timestamp"] == "DateTime64(9)"
            assert cols["Events.Attributes"] == "Array(Map(LowCardinality(String), String))"
            engine = store.scalar("SELECT engine_full FROM system.tables WHERE database = 'aiwatch_test' "
                                  "AND name = 'otel_traces'")
            assert "PARTITION BY toDate(Timestamp)" in engine and "TTL toDateTime(Timestamp) + toIntervalDay(30)" in engine
            assert store.scalar("SELECT engine FROM system.tables WHERE database = 'aiwatch_test' "
                                "AND name = 'traffic_metrics'") == "ReplacingMergeTree"


# Recent: the tables expire rows past retention_days (30) by TTL, at insert too.
T = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)


def _collector_row(span_id: str, attrs: dict[str, str], status: str = "Ok", duration_ns: int = 250_000_000,
                   events: tuple = ()) -> dict:
    return {"Timestamp": T, "TraceId": "ab" * 16, "SpanId": span_id, "ParentSpanId": "", "TraceState": "",
            "SpanName": "chat", "SpanKind": "Client", "ServiceName": "checkout",
            "ResourceAttributes": [("service.name", "checkout"), ("service.version", "1.4")], "ScopeName": "s",
            "ScopeVersion": "", "SpanAttributes": list(attrs.items()), "Duration": duration_ns,
            "StatusCode": status, "StatusMessage": "", "Events.Timestamp": [T for _ in events],
            "Events.Name": [e[0] for e in events], "Events.Attributes": [list(e[1].items()) for e in events],
            "Links.TraceId": [], "Links.SpanId": [], "Links.TraceState": [], "Links.Attributes": []}


COLLECTOR_SCHEMA = pa.schema([
    ("Timestamp", pa.timestamp("ns")), ("TraceId", pa.string()), ("SpanId", pa.string()),
    ("ParentSpanId", pa.string()), ("TraceState", pa.string()), ("SpanName", pa.string()), ("SpanKind", pa.string()),
    ("ServiceName", pa.string()), ("ResourceAttributes", MAP), ("ScopeName", pa.string()),
    ("ScopeVersion", pa.string()), ("SpanAttributes", MAP), ("Duration", pa.uint64()), ("StatusCode", pa.string()),
    ("StatusMessage", pa.string()), ("Events.Timestamp", pa.list_(pa.timestamp("ns"))),
    ("Events.Name", pa.list_(pa.string())), ("Events.Attributes", pa.list_(MAP)),
    ("Links.TraceId", pa.list_(pa.string())), ("Links.SpanId", pa.list_(pa.string())),
    ("Links.TraceState", pa.list_(pa.string())), ("Links.Attributes", pa.list_(MAP))])


@pytest.mark.parametrize("materialize", [False, True])
def test_rows_the_collector_wrote_read_as_spans_with_every_vocabulary(tmp_path, materialize):
    """With clickhouse_materialize the rows are written before the setting is turned on: parts
    without the materialized columns compute them on read, with the same answers."""
    rows = [
        # current GenAI conventions
        _collector_row("0000000000000001", {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                                            "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": "120",
                                            "gen_ai.usage.output_tokens": "30", "aiwatch.confidence": "0.8",
                                            "gen_ai.response.finish_reasons": '["stop","length"]', "custom": "x"}),
        # OpenLLMetry's deprecated names, a failure with an exception event
        _collector_row("0000000000000002", {"gen_ai.system": "openai", "llm.request.type": "chat",
                                            "gen_ai.request.model": "gpt-4o", "gen_ai.usage.prompt_tokens": "7"},
                       status="Error", events=(("exception", {"exception.type": "RateLimitError"}),)),
        # OpenInference: kind names the operation, llm.* the model and tokens
        _collector_row("0000000000000003", {"openinference.span.kind": "LLM", "llm.model_name": "claude-3",
                                            "llm.token_count.prompt": "11", "aiwatch.confidence": "7.5"}),
        # not a model call; a retry attempt under a model call is not counted twice
        _collector_row("0000000000000004", {"http.route": "/x"}),
        _collector_row("0000000000000005", {"gen_ai.request.model": "gpt-4o", "aiwatch.attempt": "2"}),
    ]
    for store in opened("chdb", tmp_path):
        store.insert("spans", pa.Table.from_pylist(rows, schema=COLLECTOR_SCHEMA))
    for store in opened("chdb", tmp_path, clickhouse_materialize=materialize):
        got = {r["span_id"][-1]: r for r in store.query("SELECT * FROM spans ORDER BY span_id").to_pylist()}
        if materialize:   # the view reads the added columns
            assert "aiwatch_request_model" in store.scalar("SELECT create_table_query FROM system.tables "
                                                           "WHERE database = currentDatabase() AND name = 'spans'")
    assert got["1"]["is_llm"] and got["1"]["operation"] == "chat" and got["1"]["provider"] == "openai"
    assert (got["1"]["request_model"], got["1"]["input_tokens"], got["1"]["output_tokens"]) == ("gpt-4o-mini", 120, 30)
    assert got["1"]["finish_reasons"] == "stop,length" and got["1"]["confidence"] == 0.8
    assert got["1"]["duration_ms"] == 250.0 and got["1"]["status_code"] == "ok" and got["1"]["kind"] == "client"
    assert got["1"]["service_version"] == "1.4" and got["1"]["end_time"] == T + timedelta(milliseconds=250)
    assert '"custom":"x"' in got["1"]["attributes"] and "gen_ai.request.model" not in got["1"]["attributes"]
    assert (got["2"]["provider"], got["2"]["operation"], got["2"]["input_tokens"]) == ("openai", "chat", 7)
    assert got["2"]["status_code"] == "error" and got["2"]["error_type"] == "RateLimitError"
    assert got["3"]["is_llm"] and got["3"]["operation"] == "chat" and got["3"]["request_model"] == "claude-3"
    assert got["3"]["input_tokens"] == 11 and got["3"]["confidence"] is None   # out of [0, 1]: NULL, as at ingest
    assert not got["4"]["is_llm"] and not got["5"]["is_llm"]


COMPARED = ("trace_id", "span_id", "parent_span_id", "name", "kind", "start_time", "end_time", "duration_ms",
            "status_code", "service_name", "service_version", "deployment_environment", "is_llm", "operation",
            "provider", "request_model", "response_model", "input_tokens", "output_tokens", "cache_read_tokens",
            "finish_reasons", "error_type", "http_status", "request_id", "model_version", "route", "arm", "confidence",
            "quality_score", "format_ok", "fallback_level", "retry_count", "cost_usd", "user_id", "tenant")


@pytest.mark.parametrize("materialize", [False, True])
def test_aiwatch_ingest_lands_in_the_collectors_table_and_reads_back_as_on_duckdb(tmp_path, materialize):
    t0 = int(T.timestamp() * 1e9)
    req = span_request([
        {"span_id": bytes([0, 0, 0, 0, 0, 0, 0, i + 1]), "trace_id": bytes(15) + bytes([i + 1]), "start_ns": t0 + i * 10**9,
         "duration_ms": 100 + i * 37.5, "error": i == 2,
         "attributes": {"gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                        "gen_ai.usage.input_tokens": 100 + i, "gen_ai.usage.output_tokens": 20,
                        "gen_ai.response.finish_reasons": ["stop"], "aiwatch.route": "chat", "aiwatch.arm": "canary",
                        "aiwatch.confidence": 0.25 * i, "aiwatch.format_ok": i != 1, "aiwatch.retry_count": i,
                        "aiwatch.cost_usd": 0.001 * i, "http.response.status_code": 500 if i == 2 else 200,
                        "user.id": f"u{i}", "aiwatch.fallback_level": "primary", "tenant.note": "kept"}}
        for i in range(4)], service="checkout", resource={"service.version": "2.0", "deployment.environment.name": "prod",
                                                         "host.name": "h1"})
    converted = convert_traces(req, build_policy("drop", 1000, 1000))
    cols = ", ".join(COMPARED)
    results = {}
    for backend in ("duckdb", "chdb"):
        for store in opened(backend, tmp_path / backend, **({"clickhouse_materialize": True}
                                                            if materialize and backend == "chdb" else {})):
            store.append(converted.tables)
            results[backend] = store.query(f"SELECT {cols} FROM spans ORDER BY span_id").to_pylist()
            if backend == "chdb":
                raw = store.query("SELECT SpanKind, StatusCode, Duration, ResourceAttributes['host.name'] AS host "
                                  "FROM otel_traces ORDER BY SpanId").to_pylist()
    assert len(results["duckdb"]) == 4 and results["chdb"] == results["duckdb"]
    assert raw[2] == {"SpanKind": "Client", "StatusCode": "Error", "Duration": 175_000_000, "host": "h1"}


def test_retention_deletes_aiwatch_rows_past_the_cutoff(tmp_path):
    from store.schema import arrow_schema

    for store in opened("chdb", tmp_path, retention_days=30):
        rows = pa.Table.from_pylist([{"time": T - timedelta(days=d), "service_name": "s", "action": "accepted"}
                                     for d in (1, 5, 9)], schema=arrow_schema("feedback"))
        store.append({"feedback": rows})
        assert store.delete_older_than(T - timedelta(days=3))["feedback"] == 2
        assert store.scalar("SELECT count() FROM feedback") == 1
        assert store.size_bytes() > 0


def test_the_writer_groups_appends_and_one_bad_request_fails_alone(tmp_path):
    """Appends queued together go in as one insert per table (ClickHouse wants few, large parts);
    a request that cannot be inserted fails on its own and the others are committed."""
    from store.schema import arrow_schema

    def feedback(n: int, start: int) -> pa.Table:
        return pa.Table.from_pylist([{"time": T - timedelta(seconds=start + i), "service_name": "s",
                                      "action": "accepted"} for i in range(n)], schema=arrow_schema("feedback"))

    bad = pa.table({"time": pa.array([T], pa.timestamp("us")), "no_such_column": ["x"]})
    for store in opened("chdb", tmp_path):
        w = store.writer
        # A gate, not a sleep, holds the writer while the appends queue up: a sleep's end can come
        # before a loaded machine has queued all of them.
        gate, gate_again = threading.Event(), threading.Event()
        w.submit(fn=lambda con, g=gate: g.wait(60))
        commits = w.stats.commits
        futures = [w.submit({"feedback": feedback(10, 100 * i)}) for i in range(20)]
        gate.set()
        for f in futures:
            f.result(60)
        assert w.stats.commits - commits <= 2    # the blocker and one grouped insert, not 20
        w.submit(fn=lambda con, g=gate_again: g.wait(60))
        good = [w.submit({"feedback": feedback(5, 5000)}), w.submit({"feedback": bad}),
                w.submit({"feedback": feedback(5, 6000)})]
        gate_again.set()
        good[0].result(60), good[2].result(60)
        with pytest.raises(Exception, match="no_such_column"):
            good[1].result(60)
        assert store.scalar("SELECT count() FROM feedback") == 210 and w.pending_rows == 0


def test_bound_values_round_trip_whatever_they_hold(tmp_path):
    """Values are bound, never spliced: quotes, backslashes, NULLs inside arrays and times come back
    as they went in (a NULL threshold in an array failed to parse before)."""
    hostile = ["it's", "back\\slash", "'); DROP TABLE feedback; --", None, "{x:String}"]
    for store in opened("chdb", tmp_path):
        got = store.query("SELECT $s AS s, $xs AS xs, $fs AS fs, $t AS t, $ts AS ts",
                          {"s": hostile[2], "xs": hostile, "fs": [1.5, None], "t": T, "ts": [T, None]}).to_pylist()[0]
        assert got == {"s": hostile[2], "xs": hostile, "fs": [1.5, None], "t": T, "ts": [T, None]}
        assert store.scalar("SELECT count() FROM system.tables WHERE name = 'feedback'") == 1


def test_alert_records_expire_with_the_reports_and_an_older_database_gets_the_ttl_once(tmp_path):
    from store import alerting

    def engine_full(store) -> str:
        return store.scalar("SELECT engine_full FROM system.tables WHERE database = currentDatabase() "
                            "AND name = 'alert_history'")

    for store in opened("chdb", tmp_path, analysis_retention_days=0):   # as made before alert tables had a TTL
        assert " TTL " not in engine_full(store)
    for _ in range(2):   # the upgrade alters once; a second start finds the TTL and changes nothing
        for store in opened("chdb", tmp_path, analysis_retention_days=30):
            assert engine_full(store).count(" TTL ") == 1
    now = utcnow()

    def record(at):
        return {"time": at, "fingerprint": f"f{at:%j}", "rule": "R", "severity": "P1", "labels": "{}",
                "from_state": "pending", "to_state": "firing", "value": 1.0, "threshold": 0.5}

    for store in opened("chdb", tmp_path, analysis_retention_days=30):
        store.writer.write(fn=lambda con: alerting.save_tick(
            con, states=[], deleted_states=[], history=[record(now - timedelta(days=d)) for d in (60, 20, 1)],
            groups=[], deleted_groups=[], nflog=[], outbox=[], now=now))
        store.transport.command("OPTIMIZE TABLE alert_history FINAL")   # a merge applies the TTL
        assert store.scalar("SELECT count() FROM alert_history") == 2   # the 60-day-old record expired
        assert store.delete_older_than(None, now - timedelta(days=10))["alert_history"] == 1   # a shortened one
        assert store.scalar("SELECT count() FROM alert_history") == 1


def _collector_logs(rows: list[dict]) -> pa.Table:
    """Log records as the Collector's ClickHouse exporter writes them (the columns these tests use)."""
    schema = pa.schema([("Timestamp", pa.timestamp("ns")), ("ServiceName", pa.string()), ("TraceId", pa.string()),
                        ("SpanId", pa.string()), ("Body", pa.string()), ("LogAttributes", MAP)])
    return pa.Table.from_pylist([{"SpanId": "", **row} for row in rows], schema=schema)


def _both_ways(tmp_path, table: str, rows: pa.Table, logs: pa.Table):
    """Each backend holding the same records: aiwatch's own `table` rows on DuckDB, the Collector's
    log rows on chdb (as its exporter wrote them)."""
    for backend in ("duckdb", "chdb"):
        for store in opened(backend, tmp_path / backend):
            if backend == "duckdb":
                store.append({table: rows})
            else:
                store.insert("logs", logs)
            yield backend, store


def test_review_verdicts_the_collector_stored_as_log_events_read_as_feedback_and_analyzed(tmp_path):
    """aiwatch.feedback log events in the Collector's otel_logs read as the feedback aiwatch's own
    endpoint makes of the same events (and events ingest rejects are left out); the override
    analyzer gives the same rows from them as from DuckDB's feedback."""
    from analysis import runner
    from analysis.base import Window
    from analysis.traffic import OverrideAnalyzer
    from collectors.logs import convert_logs
    from tests.otlp_builders import log_request

    events = [{"event.name": "aiwatch.feedback", "aiwatch.request.id": f"r{i}",
               "aiwatch.feedback.action": ("accepted", "Modified ", "rejected")[i % 3], "aiwatch.route": "chat",
               "gen_ai.request.model": "gpt-4o", "aiwatch.model.version": "v2", "aiwatch.feedback.reviewer": "ann",
               "ticket": f"T-{i}"} for i in range(30)]
    fb = convert_logs(log_request(events, service="checkout"), build_policy("drop", 1000, 1000)).tables["feedback"]
    times = fb.column("time").to_pylist()
    start = min(times).replace(second=0, microsecond=0)
    collector = [{"Timestamp": t, "ServiceName": "checkout", "TraceId": "", "Body": "",
                  "LogAttributes": [(k, v if isinstance(v, str) else str(v)) for k, v in e.items()]}
                 for t, e in zip(times, events)]
    collector += [   # ingest rejects these, and other log records are not feedback
        {"Timestamp": times[0], "ServiceName": "checkout", "TraceId": "", "Body": "",
         "LogAttributes": [("event.name", "aiwatch.feedback"), ("aiwatch.request.id", "x"),
                           ("aiwatch.feedback.action", "maybe")]},
        {"Timestamp": times[0], "ServiceName": "checkout", "TraceId": "", "Body": "",
         "LogAttributes": [("event.name", "aiwatch.feedback"), ("aiwatch.feedback.action", "accepted")]},
        {"Timestamp": times[0], "ServiceName": "checkout", "TraceId": "", "Body": "hello", "LogAttributes": []}]
    cols = "time, service_name, request_id, trace_id, action, reviewer, reason, route, model, model_version"
    read, analyzed = {}, {}
    for backend, store in _both_ways(tmp_path, "feedback", fb, _collector_logs(collector)):
        read[backend] = store.query(f"SELECT {cols} FROM feedback ORDER BY request_id").to_pylist()
        runner.analyze(store, OverrideAnalyzer(store), Window(start, start + timedelta(minutes=2), start))
        analyzed[backend] = sorted(store.query("SELECT * EXCEPT (computed_at) FROM analysis_metrics"
                                               if backend == "chdb" else
                                               "SELECT * EXCLUDE (computed_at) FROM analysis_metrics").to_pylist(),
                                   key=repr)
        if backend == "chdb":
            extra = store.scalar("SELECT attributes FROM feedback WHERE request_id = 'r1'")
    assert len(read["duckdb"]) == 30 and read["chdb"] == read["duckdb"]
    assert analyzed["chdb"] == analyzed["duckdb"] and analyzed["chdb"]
    assert extra == '{"ticket":"T-1"}'


def test_a_schema_1_database_keeps_its_feedback_rows_under_the_new_layout(tmp_path):
    from store.schema import arrow_schema

    rows = pa.Table.from_pylist([{"time": T, "service_name": "s", "request_id": "r1", "action": "accepted"}],
                                schema=arrow_schema("feedback"))
    for store in opened("chdb", tmp_path):
        store.append({"feedback": rows})
        # schema 1: aiwatch's feedback rows in a table named `feedback`
        store.transport.command("DROP VIEW feedback")
        store.transport.command("RENAME TABLE feedback_rows TO feedback")
        store.append({"audit_events": pa.Table.from_pylist([{"time": T, "request_id": "a1"}],
                                                           schema=arrow_schema("audit_events"))})
        store.transport.command("DROP VIEW audit_events")   # schema 2: audit rows in `audit_events`
        store.transport.command("RENAME TABLE audit_rows TO audit_events")
    for _ in range(2):   # renamed once; the second start finds the new layout
        for store in opened("chdb", tmp_path):
            assert store.scalar("SELECT engine FROM system.tables WHERE database = currentDatabase() "
                                "AND name = 'feedback'") == "View"
            assert store.query("SELECT request_id, action FROM feedback").to_pylist() == [
                {"request_id": "r1", "action": "accepted"}]
            assert store.query("SELECT request_id FROM audit_events").to_pylist() == [{"request_id": "a1"}]


def test_aiwatch_ingested_log_records_land_in_the_collectors_logs_table_and_read_back_as_on_duckdb(tmp_path):
    from collectors.logs import convert_logs
    from tests.otlp_builders import log_request

    records = [{"event.name": "app.retry", "attempt": 2, "ok": True}, {"note": "it's \\ \"quoted\""}, {}]
    converted = convert_logs(log_request(records, service="checkout"), build_policy("drop", 1000, 1000))
    cols = "time, service_name, severity, body, trace_id, span_id, event_name"
    read = {}
    for backend in ("duckdb", "chdb"):
        for store in opened(backend, tmp_path / backend):
            store.append(converted.tables)
            read[backend] = store.query(f"SELECT {cols} FROM logs ORDER BY time, event_name").to_pylist()
            if backend == "chdb":
                raw = store.query("SELECT LogAttributes AS a, SeverityNumber AS n FROM otel_logs "
                                  "ORDER BY Timestamp").to_pylist()
    assert len(read["duckdb"]) == 3 and read["chdb"] == read["duckdb"]
    assert [dict(r["a"]) for r in raw] == [{"event.name": "app.retry", "attempt": "2", "ok": "true"},
                                           {"note": "it's \\ \"quoted\""}, {}]


def test_audit_records_the_collector_stored_as_log_events_read_as_audit_events(tmp_path):
    """aiwatch.audit log events in the Collector's otel_logs (fields in attributes or a JSON body)
    read as the audit_events aiwatch's own endpoint makes of the same events; an event ingest
    rejects (latency not a number) and other log records are left out."""
    from collectors.logs import convert_logs
    from tests.otlp_builders import log_request

    events = [{"event.name": "aiwatch.audit", "aiwatch.request.id": f"r{i}", "aiwatch.user.id": f"u{i % 4}",
               "gen_ai.request.model": "gpt-4o", "aiwatch.model.version": "v2", "aiwatch.route": "chat",
               "aiwatch.latency_ms": str(12.5 * i), "aiwatch.decision_path": "rules>llm",
               sc.AUDIT_INPUT: f"question {i}", sc.AUDIT_OUTPUT: f"answer {i}", "ticket": f"T-{i}"}
              for i in range(20)]
    events.append({"event.name": "aiwatch.audit", "aiwatch.request.id": "bare"})   # no optional fields
    events.append(events[0] | {"aiwatch.request.id": "body"})   # the Collector has this one's fields in a JSON body
    audit = convert_logs(log_request(events, service="checkout"),
                         build_policy("full", 1000, 1000)).tables["audit_events"]
    times = audit.column("time").to_pylist()
    collector = [{"Timestamp": t, "ServiceName": "checkout", "TraceId": "", "SpanId": "", "Body": "",
                  "LogAttributes": list(e.items())} for t, e in zip(times[:-1], events[:-1])]
    collector += [
        {"Timestamp": times[-1], "ServiceName": "checkout", "TraceId": "", "SpanId": "",
         "Body": json.dumps({k: v for k, v in events[-1].items() if k != "event.name"}),
         "LogAttributes": [("event.name", "aiwatch.audit")]},
        {"Timestamp": times[0], "ServiceName": "checkout", "TraceId": "", "SpanId": "", "Body": "",   # rejected
         "LogAttributes": [("event.name", "aiwatch.audit"), ("aiwatch.latency_ms", "slow")]},
        {"Timestamp": times[0], "ServiceName": "checkout", "TraceId": "", "SpanId": "", "Body": "hello",
         "LogAttributes": []}]
    cols = ("time, service_name, request_id, trace_id, span_id, user_id, model, model_version, route, latency_ms, "
            "decision_path, input_text, output_text, attributes")
    read = {}
    for backend, store in _both_ways(tmp_path, "audit_events", audit, _collector_logs(collector)):
        rows = store.query(f"SELECT {cols} FROM audit_events ORDER BY request_id").to_pylist()
        for row in rows:   # the same fields; each engine writes its own JSON spacing
            row["attributes"] = row["attributes"] and json.loads(row["attributes"])
        read[backend] = rows
        if backend == "chdb":
            source = store.scalar("SELECT DISTINCT source FROM audit_events")
    assert len(read["duckdb"]) == 22 and read["chdb"] == read["duckdb"]
    assert read["chdb"][-1]["attributes"] == {"ticket": "T-9"} and read["chdb"][0]["latency_ms"] is None
    assert source == "collector"


def test_the_lease_connection_to_a_hung_server_fails_within_its_deadline():
    """A ClickHouse server that accepts and never answers (its Keeper hung, say): the lease's own
    connection gives up after its deadline (a quarter of the ttl, at least 2 s), not the 300 s of
    an analyzer's query, so a renewal fails in time and held() runs out as designed."""
    import socket
    import time

    from store.clickhouse import HttpTransport

    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    threading.Thread(target=lambda: [held.append(listener.accept()[0]) for _ in range(8)], daemon=True).start()
    target = parse_store(f"clickhouse://u:p@127.0.0.1:{listener.getsockname()[1]}/default")
    began = time.monotonic()
    try:
        with pytest.raises(Exception):  # noqa: B017 - clickhouse-connect's own error type for a timeout
            HttpTransport(target, query_timeout_s=2.0)
        assert time.monotonic() - began < 30
    finally:
        for conn in held:
            conn.close()
        listener.close()
