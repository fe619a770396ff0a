"""One typed settings object for the whole server.

Each setting resolves as: explicit argument -> `AIWATCH_<NAME>` environment variable -> TOML file
-> default. A bad value anywhere stops start-up with a message that names the key.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

if TYPE_CHECKING:
    from collectors.content import ContentPolicy, RedactionConfig
    from core.pricing import PriceTable

ENV_PREFIX = "AIWATCH_"


class ConfigError(ValueError):
    """A setting has a value aiwatch cannot use; the message names the key."""


def _setting(default: Any, help: str, **checks: Any) -> Any:
    return field(default=default, metadata={"help": help, **checks})


@dataclass(frozen=True)
class Settings:
    # Server
    host: str = _setting("127.0.0.1", "Address the server binds to.")
    port: int = _setting(4318, "Port for OTLP/HTTP ingest and the read API (4318 is OTLP's).", min=0, max=65535)
    data_dir: str = _setting("./aiwatch-data", "Folder for the DuckDB file and generated reports.")
    store: str = _setting(
        "duckdb", "Where telemetry and analyses live: duckdb (the data dir's file), "
        "clickhouse://user:password@host:8123/DATABASE (a ClickHouse server, reading the OpenTelemetry Collector's "
        "tables) or chdb:///absolute/path?database=DATABASE (the same engine in-process).")
    traces_table: str = _setting("otel_traces", "ClickHouse backend: the Collector's traces table.")
    logs_table: str = _setting("otel_logs", "ClickHouse backend: the Collector's logs table.")
    clickhouse_cluster: str = _setting("", "ClickHouse backend: run migrations ON CLUSTER this cluster, on replicated "
                                       "engines (empty: one server).")
    ingest_token: str = _setting("", "Bearer token required on /v1/traces, /v1/logs, /v1/metrics (empty: no auth).")
    api_token: str = _setting("", "Bearer token required on the read API (empty: no auth).")
    metrics_token: str = _setting(
        "", "Bearer token a Prometheus scraper gives for /metrics, so it need not hold api_token; /metrics takes "
        "either token, and is open only when both are empty. /healthz and /readyz are always open.")
    # Writer and back-pressure
    writer_max_rows: int = _setting(50_000, "Writer flushes a group commit at this many rows.", min=1)
    writer_max_delay_ms: int = _setting(5, "Longest wait for more rows before a group commit (ms).", min=0)
    queue_max_rows: int = _setting(400_000, "Rows waiting for the writer before ingest answers 503.", min=1)
    max_body_bytes: int = _setting(16 * 1024 * 1024, "Largest accepted request body (after gzip inflation): 413 above.", min=1024)
    ingest_workers: int = _setting(-1, "Processes that decode and map OTLP payloads (-1: one per core; 0: in the server process).", min=-1)
    max_concurrent_requests: int = _setting(
        256, "Requests in progress at once (idle connections do not count); beyond it answers 503 with Retry-After "
        "(/healthz, /readyz and /metrics are not limited).", min=1)
    header_timeout_s: float = _setting(10.0, "A connection that has not sent a request's headers within this many "
                                       "seconds is closed.", min=0.1)
    body_timeout_s: float = _setting(30.0, "A request whose body has not arrived within this many seconds of its "
                                     "headers is answered 408 and closed.", min=0.1)
    keep_alive_s: float = _setting(5.0, "An idle keep-alive connection is closed after this many seconds.", min=0.1)
    max_response_bytes: int = _setting(
        64 * 1024 * 1024, "Largest read-API answer: rows past it are left out, and the answer says so "
        "(X-Truncated: true, and \"truncated\": true in JSON); narrow the window or lower limit.", min=65536)
    max_concurrent_queries: int = _setting(
        4, "Read-API queries computed at once (each may hold a large result while it is encoded); others wait up "
        "to 30 s, then get 503 with Retry-After.", min=1)
    retry_after_s: int = _setting(2, "Retry-After seconds sent with 429/503 when overloaded.", min=1)
    # Content handling
    content_mode: str = _setting("redact", "Message content at ingest: keep, redact or drop.", choices=("keep", "redact", "drop"))
    max_content_chars: int = _setting(16_384, "Message content kept per span and direction (rest truncated).", min=0)
    max_attribute_chars: int = _setting(4_096, "Longest attribute value stored; longer ones truncated with a marker.", min=64)
    max_span_attribute_bytes: int = _setting(
        64 * 1024, "Attribute JSON stored per span, and per distinct resource (resource attributes are stored once "
        "per resource); whole attributes past it are left out and counted in aiwatch.attributes.dropped, with a "
        "partial_success warning.", min=1024)
    max_request_attribute_bytes: int = _setting(
        8 * 1024 * 1024, "Attribute JSON one OTLP request may store in all; spans past it keep their columns but "
        "no attributes (counted, with a warning).", min=1024)
    # Redaction
    redact_strings: bool = _setting(
        True, "Also redact every other stored string at ingest: attributes, span names, status messages, log "
        "bodies, resource attributes, feedback reasons.")
    redact_replacement: str = _setting(
        "mask", "What replaces a finding: mask ([REDACTED:email]) or hash ([email:<salted sha256>], joinable).",
        choices=("mask", "hash"))
    redact_salt: str = _setting("", "Salt of hash replacements (set one: unsalted hashes of phone numbers can be brute-forced).")
    redact_keep_keys: str = _setting("", "Comma-separated attribute keys stored as sent, never redacted.")
    redact_drop_keys: str = _setting("", "Comma-separated attribute keys dropped at ingest, never stored.")
    redact_patterns: str = _setting(
        "", "Extra redaction kinds, one `kind=regex` per line (or separated by ;;); they win over the built-in rules.")
    # Audit files
    audit_paths: str = _setting("", "Comma-separated globs of JSONL audit files to tail (empty: none).")
    audit_poll_s: float = _setting(1.0, "How often the audit tailer polls its files.", min=0.05)
    # Retention and scheduling
    retention_days: int = _setting(30, "Rows older than this are deleted by the retention job (0 keeps all).", min=0)
    analysis_retention_days: int = _setting(
        400, "Analyzer rows by the hour or day, and reports, are kept this long (0 keeps all); minute rows follow "
        "retention_days.", min=0)
    scheduler_enabled: bool = _setting(True, "Run scheduled jobs (analyzers, alerts, retention) in the server.")
    # Prices
    prices_file: str = _setting(
        "", "TOML file of per-model price overrides in USD per million tokens ([models.NAME] input, output, "
        "cached_input, reasoning; a name also matches snapshot names it begins), on top of genai-prices, for calls "
        "that carry no cost of their own: cost queries, analyzers and the weekly review (README, Prices).")
    # Dashboard
    dashboard_port: int = _setting(8501, "Port of the Streamlit dashboard.", min=0, max=65535)
    server_url: str = _setting("http://127.0.0.1:4318", "Server URL that the dashboard and CLI read from.")
    dashboard_password: str = _setting(
        "", "Shared secret to sign in to the dashboard (small teams; OIDC: [auth] in .streamlit/secrets.toml). "
        "Required when a token is set and OIDC is not configured.")

    @property
    def db_path(self) -> Path:
        return Path(self.data_dir) / "aiwatch.duckdb"

    @classmethod
    def load(cls, path: str | Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from a TOML file (optional), `AIWATCH_*` variables and explicit overrides."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        path = path or env.get(ENV_PREFIX + "CONFIG")
        if path:
            try:
                data = tomllib.loads(Path(path).read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"config file {path}: {exc}") from exc
            data = data.get("aiwatch", data)
            unknown = set(data) - {f.name for f in fields(cls)}
            if unknown:
                raise ConfigError(f"config file {path}: unknown key(s) {', '.join(sorted(unknown))}")
            values.update(data)
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        hints = get_type_hints(cls)
        return cls(**{name: _coerce(name, hints[name], value) for name, value in values.items()
                      if name in hints})

    def __post_init__(self) -> None:
        for f in fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if "min" in meta and value < meta["min"]:
                raise ConfigError(f"{f.name}: {value!r} is below the minimum {meta['min']}")
            if "max" in meta and value > meta["max"]:
                raise ConfigError(f"{f.name}: {value!r} is above the maximum {meta['max']}")
            if "choices" in meta and value not in meta["choices"]:
                raise ConfigError(f"{f.name}: {value!r} is not one of {', '.join(meta['choices'])}")
        self.redaction_patterns()
        self.price_table()   # a bad prices file stops start-up naming the key
        from store.clickhouse import StoreSettingError, identifier, parse_store

        try:
            parse_store(self.store)
            for name in ("traces_table", "logs_table", "clickhouse_cluster"):
                if name != "clickhouse_cluster" or getattr(self, name):
                    identifier(getattr(self, name), name)
        except StoreSettingError as exc:
            raise ConfigError(str(exc)) from None

    def redaction_patterns(self) -> dict[str, str]:
        """`redact_patterns` as {kind: regex}; a ConfigError names a bad line."""
        import re

        patterns: dict[str, str] = {}
        for line in self.redact_patterns.replace(";;", "\n").splitlines():
            if not line.strip():
                continue
            kind, sep, regex = line.strip().partition("=")
            if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", kind.strip()) or not regex:
                raise ConfigError(f"redact_patterns: {line.strip()!r} is not kind=regex")
            try:
                re.compile(regex)
            except re.error as exc:
                raise ConfigError(f"redact_patterns: {kind.strip()}: {exc}") from None
            patterns[kind.strip()] = regex
        return patterns

    def redaction(self) -> RedactionConfig:
        """The redaction settings as the collectors take them."""
        from collectors.content import RedactionConfig

        def keys(text: str) -> frozenset[str]:
            return frozenset(k.strip() for k in text.split(",") if k.strip())

        return RedactionConfig(self.redact_strings, self.redact_replacement, self.redact_salt,
                               keys(self.redact_keep_keys), keys(self.redact_drop_keys),
                               tuple(self.redaction_patterns().items()))

    def price_table(self) -> PriceTable | None:
        """The overrides of `prices_file` over genai-prices (None: genai-prices alone)."""
        if not self.prices_file:
            return None
        from core.pricing import PriceTable

        try:
            return PriceTable.from_toml(self.prices_file)
        except ValueError as exc:
            raise ConfigError(f"prices_file: {exc}") from None

    def content_policy(self) -> ContentPolicy:
        from collectors.content import build_policy

        return build_policy(self.content_mode, self.max_content_chars, self.max_attribute_chars, self.redaction())

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _coerce(name: str, typ: Any, value: Any) -> Any:
    key = f"{name} ({ENV_PREFIX}{name.upper()})"
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if typ is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError("expected an integer")
            return int(value)
        if typ is float:
            if isinstance(value, bool):
                raise ValueError("expected a number")
            return float(value)
        if typ is str:
            if not isinstance(value, (str, int, float)):
                raise ValueError("expected a string")
            return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key}: bad value {value!r}: {exc}") from None
    return value


def settings_table() -> list[tuple[str, str, Any, str]]:
    """(name, environment variable, default, help) for every setting: the README lists them all."""
    return [(f.name, ENV_PREFIX + f.name.upper(), f.default, f.metadata["help"]) for f in fields(Settings)]
