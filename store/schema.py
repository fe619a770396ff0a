"""The store's tables, as a list of forward migrations.

Each migration runs once, in order, inside a transaction; `schema_version` records the ones
applied. Never edit a shipped migration: append a new one. Columns are documented in README.md.
Timestamps are UTC `TIMESTAMP` (microseconds).
"""
from __future__ import annotations

import pyarrow as pa

SPAN_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("trace_id", pa.string()),          # 32 hex chars
    ("span_id", pa.string()),           # 16 hex chars
    ("parent_span_id", pa.string()),    # null for a root span
    ("name", pa.string()),
    ("kind", pa.string()),              # internal | server | client | producer | consumer | unspecified
    ("start_time", pa.timestamp("us")),
    ("end_time", pa.timestamp("us")),
    ("duration_ms", pa.float64()),
    ("status_code", pa.string()),       # unset | ok | error
    ("status_message", pa.string()),
    ("service_name", pa.string()),
    ("service_version", pa.string()),
    ("deployment_environment", pa.string()),
    ("scope_name", pa.string()),
    ("is_llm", pa.bool_()),             # carries GenAI / OpenInference LLM attributes
    ("operation", pa.string()),         # gen_ai.operation.name (chat, embeddings, ...)
    ("provider", pa.string()),          # gen_ai.provider.name (or gen_ai.system / llm.provider)
    ("request_model", pa.string()),
    ("response_model", pa.string()),
    ("input_tokens", pa.int64()),
    ("output_tokens", pa.int64()),
    ("cache_read_tokens", pa.int64()),
    ("reasoning_tokens", pa.int64()),
    ("finish_reasons", pa.string()),    # comma-separated
    ("response_id", pa.string()),
    ("error_type", pa.string()),        # error.type; set on failed calls
    ("http_status", pa.int32()),        # http.response.status_code when known
    ("request_id", pa.string()),        # aiwatch.request.id
    ("model_version", pa.string()),
    ("route", pa.string()),
    ("arm", pa.string()),               # baseline | canary | shadow
    ("confidence", pa.float64()),
    ("quality_score", pa.float64()),
    ("format_ok", pa.bool_()),
    ("fallback_level", pa.string()),    # primary | fallback | rule_based | human
    ("retry_count", pa.int32()),
    ("breaker_state", pa.string()),
    ("cost_usd", pa.float64()),
    ("injection_score", pa.float64()),
    ("user_id", pa.string()),
    ("tenant", pa.string()),
    ("attributes", pa.string()),        # every other attribute, JSON object
    ("received_at", pa.timestamp("us")),
    ("resource_id", pa.string()),       # resources.resource_id: the span's resource attributes, stored once
]

# One row per distinct set of resource attributes (other than service.name, service.version and
# deployment.environment, which are span columns): spans point here instead of each carrying a copy.
RESOURCE_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("resource_id", pa.string()),       # blake2b-128 of the attributes' canonical JSON, hex
    ("attributes", pa.string()),        # JSON object
    ("first_seen", pa.timestamp("us")),
]

# Plausible ranges of the numeric span columns, inclusive. A value outside is not stored in its
# column (NULL; the raw attribute stays in `attributes`), and the analyzers read anything outside as
# NULL too, so no hostile or broken value (confidence 1e5, a 292-year span) can overflow their sums.
SPAN_RANGES: dict[str, tuple[float, float]] = {
    "confidence": (0.0, 1.0),               # aiwatch.* scores are documented as [0, 1]
    "quality_score": (0.0, 1.0),
    "injection_score": (0.0, 1.0),
    "input_tokens": (0, 1_000_000_000),     # per call; today's largest contexts are ~10M tokens
    "output_tokens": (0, 1_000_000_000),
    "cache_read_tokens": (0, 1_000_000_000),
    "reasoning_tokens": (0, 1_000_000_000),
    "cost_usd": (0.0, 1_000_000.0),         # per call
    "retry_count": (0, 1_000),
    "duration_ms": (0.0, 31 * 24 * 3600 * 1000.0),  # a month
}

SPAN_CONTENT_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("trace_id", pa.string()),
    ("span_id", pa.string()),
    ("start_time", pa.timestamp("us")),
    ("input_text", pa.string()),        # redacted per content_mode, size-capped
    ("output_text", pa.string()),
    ("truncated", pa.bool_()),
]

AUDIT_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("time", pa.timestamp("us")),
    ("service_name", pa.string()),
    ("request_id", pa.string()),
    ("trace_id", pa.string()),
    ("span_id", pa.string()),
    ("user_id", pa.string()),
    ("model", pa.string()),
    ("model_version", pa.string()),
    ("route", pa.string()),
    ("latency_ms", pa.float64()),
    ("decision_path", pa.string()),
    ("input_text", pa.string()),        # redacted again at ingest
    ("output_text", pa.string()),
    ("source", pa.string()),            # otlp | file:<path>
    ("attributes", pa.string()),
]

FEEDBACK_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("time", pa.timestamp("us")),
    ("service_name", pa.string()),
    ("request_id", pa.string()),
    ("trace_id", pa.string()),
    ("action", pa.string()),            # accepted | modified | rejected
    ("reviewer", pa.string()),
    ("reason", pa.string()),
    ("route", pa.string()),
    ("model", pa.string()),
    ("model_version", pa.string()),
    ("source", pa.string()),
    ("attributes", pa.string()),
]

LOG_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("time", pa.timestamp("us")),
    ("service_name", pa.string()),
    ("severity", pa.string()),
    ("body", pa.string()),
    ("trace_id", pa.string()),
    ("span_id", pa.string()),
    ("event_name", pa.string()),
    ("attributes", pa.string()),
]

METRIC_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("time", pa.timestamp("us")),
    ("service_name", pa.string()),
    ("name", pa.string()),              # e.g. system.cpu.utilization, gpu.utilization, queue.depth
    ("kind", pa.string()),              # gauge | sum | histogram (histograms: value = sum / count)
    ("value", pa.float64()),
    ("unit", pa.string()),
    ("attributes", pa.string()),
]

TABLES: dict[str, list[tuple[str, pa.DataType]]] = {
    "spans": SPAN_COLUMNS,
    "span_content": SPAN_CONTENT_COLUMNS,
    "audit_events": AUDIT_COLUMNS,
    "feedback": FEEDBACK_COLUMNS,
    "logs": LOG_COLUMNS,
    "resource_metrics": METRIC_COLUMNS,
    "resources": RESOURCE_COLUMNS,
}

# Tables whose rows are keyed: the writer inserts a row only when its key is not stored yet.
KEYED_TABLES: dict[str, str] = {"resources": "resource_id"}


def arrow_schema(table: str) -> pa.Schema:
    return pa.schema(TABLES[table])


_DUCK_TYPES = {
    pa.string(): "VARCHAR", pa.timestamp("us"): "TIMESTAMP", pa.float64(): "DOUBLE",
    pa.int64(): "BIGINT", pa.int32(): "INTEGER", pa.bool_(): "BOOLEAN",
}


def _create(table: str) -> str:
    cols = ",\n  ".join(f"{name} {_DUCK_TYPES[typ]}" for name, typ in TABLES[table])
    return f"CREATE TABLE {table} (\n  {cols}\n)"


# Forward migrations: (version, description, statements). Append only.
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "telemetry tables", [_create(t) for t in TABLES] + [
        # A tailed file's progress is committed with the rows read from it: no line twice.
        """CREATE TABLE tail_offsets (
             path VARCHAR, inode BIGINT, device BIGINT, offset_bytes BIGINT, updated_at TIMESTAMP,
             PRIMARY KEY (device, inode))""",
        # Generic key-value state for scheduled jobs (watermarks and the like).
        "CREATE TABLE job_state (job VARCHAR PRIMARY KEY, state VARCHAR, updated_at TIMESTAMP)",
    ]),
    # One row: the id of the writer's last committed batch, updated inside every transaction, so a
    # COMMIT that raised can be checked (landed or not). No key: an update costs next to nothing.
    (2, "writer ledger", [
        "CREATE TABLE writer_ledger (batch VARCHAR)",
        "INSERT INTO writer_ledger VALUES (NULL)",
    ]),
    # Resource attributes stored once per resource, not copied into every span. IF NOT EXISTS:
    # migration 1 is generated from TABLES, so a new database already has both.
    (3, "resources stored once", [
        f"{_create('resources').replace('CREATE TABLE', 'CREATE TABLE IF NOT EXISTS', 1)}",
        "ALTER TABLE spans ADD COLUMN IF NOT EXISTS resource_id VARCHAR",
    ]),
]

def _all_migrations() -> list[tuple[int, str, list[str]]]:
    # Each stage owns a version range (core 1-99, analysis 100-199, alerts 200-299), so stages
    # add tables without editing each other's lists.
    from store import schema_alerts, schema_analysis

    merged = sorted(MIGRATIONS + schema_analysis.MIGRATIONS + schema_alerts.MIGRATIONS, key=lambda m: m[0])
    versions = [m[0] for m in merged]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return merged


ALL_MIGRATIONS = _all_migrations()
SCHEMA_VERSION = ALL_MIGRATIONS[-1][0]
