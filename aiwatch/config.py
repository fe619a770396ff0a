"""One validated settings model for the whole of aiwatch: server, analysis, alerts and dashboard.

Each setting resolves as: command-line flag -> `AIWATCH_*` environment variable -> TOML file ->
default (pydantic-settings sources, in that order). Top-level settings are `AIWATCH_<NAME>` and sit at
the top of the file or under `[aiwatch]`; a section's are `AIWATCH_<SECTION>_<NAME>` under
`[<section>]` (`[analysis]`, `[alerts]`). Every wrong type, out-of-range value and unknown key stops
start-up with a `ConfigError` naming where the value came from, the section and the key, e.g.
`aiwatch.toml: [analysis.slos[0]] unknown key 'latncy_ms'`. Bools are never read as numbers.
"""
from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from core.durations import parse_duration
from core.grains import GRAIN_SECONDS  # the grains the SLO analyzer can compute

if TYPE_CHECKING:
    from analysis.settings import DriftColumn
    from collectors.content import ContentPolicy, RedactionConfig
    from core.pricing import PriceTable

ENV_PREFIX = "AIWATCH_"


class ConfigError(ValueError):
    """A setting has a value aiwatch cannot use; the message names the file, section and key."""


def _whole_float(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# Scalars are strict (a TOML `true` is no number, a "5" no integer); an integral float is an int.
Int = Annotated[int, BeforeValidator(_whole_float), Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- analysis ----------------------------------------------------------------------------------

class SLO(Section):
    """One objective. `service` / `route` of "*" or "" mean: one SLO per service (route ignored)."""

    name: Str
    kind: Literal["availability", "latency"]
    objective: Float = Field(gt=0, lt=1)
    service: Str = "*"
    route: Str = ""
    threshold_ms: Float = Field(0.0, ge=0, validate_default=True)   # latency: good when faster than this

    def __init__(self, *args: Any, **data: Any) -> None:
        """Also positionally: SLO("availability", "availability", 0.99)."""
        data.update(zip(("name", "kind", "objective", "service", "route", "threshold_ms"), args))
        super().__init__(**data)

    @field_validator("threshold_ms")
    @classmethod
    def _latency_needs_threshold(cls, value: float, info: ValidationInfo) -> float:
        if info.data.get("kind") == "latency" and value <= 0:
            raise ValueError("a latency SLO needs a positive threshold")
        return value


# Availability per service only: a latency threshold differs per route (a long-output route's
# normal p99 is 10-30 s), so routes without a configured latency SLO are judged against their own
# learned p99 (analysis/route_health.py).
DEFAULT_SLOS = (SLO("availability", "availability", 0.99),)
# A column drifts when Evidently's default test says so and the hour differs from the reference at
# p < this (analysis/stats.py says why). A dataset verdict needs half the columns; even when two of
# them move together (input tokens and prompt characters), chance alone drifts a route-hour at about
# this rate: one in four days over 10 routes judged every hour.
DEFAULT_DRIFT_ALPHA = 0.001
DEFAULT_DRIFT_COLUMNS = (
    "input_tokens:num", "output_tokens:num", "prompt_chars:num",
    "attr:aiwatch.input.language:cat", "attr:aiwatch.input.topic:cat",
)


class AnalysisSettings(Section):
    """[analysis]: late-data grace, baselines, drift columns, canary tolerances, SLOs."""

    late_window_s: Int = Field(3600, ge=0, description=(
        "Spans that arrive after a run and start up to this many seconds before its watermark are folded into "
        "their (already analyzed) minutes again."))
    grace_s: Int = Field(120, ge=0, description=(
        "Feedback and resource metrics: each run recomputes this many seconds before its watermark."))
    initial_lookback_s: Int = Field(86_400, ge=0, description=(
        "A first incremental run starts at most this far back (older data: `aiwatch analyze`)."))
    max_window_s: Int = Field(6 * 3600, ge=60, description=(
        "An incremental run catches up in windows of at most this many seconds."))
    baseline_days: Float = Field(7.0, gt=0, description=(
        "Trailing reference for confidence and drift: the days before the window's day."))
    reference_start: Str = Field("", description="Pin the reference period instead (ISO 8601; with `reference_end`).")
    reference_end: Str = Field("", description="End of the pinned reference period.")
    sample_cap: Int = Field(50_000, ge=1, description=(
        "Most calls per group and side (hash-sampled, repeatable) for drift, confidence and canary tests."))
    drift_columns: tuple[Str, ...] = Field(DEFAULT_DRIFT_COLUMNS, description=(
        "Input columns watched for drift: span columns, `prompt_chars`, or `attr:<key>`; suffix `:num` or `:cat`."))
    drift_share: Float = Field(0.5, gt=0, le=1, description=(
        "Share of drifted columns at which a route's dataset counts as drifted (Evidently's)."))
    drift_alpha: Float = Field(DEFAULT_DRIFT_ALPHA, gt=0, lt=1, description=(
        "A column counts as drifted when Evidently's default test says so and a two-sample test (KS, or "
        "chi-square for categories) puts the hour's difference from the reference at p below this."))
    drift_min_rows: Int = Field(100, ge=1, description="Calls a route needs in an hour before its drift is judged.")
    confidence_psi_alert: Float = Field(0.2, gt=0, description=(
        "PSI of an hour's confidence against the reference that counts as a shift."))
    confidence_ks_alpha: Float = Field(0.001, gt=0, lt=1, description=(
        "KS p-value under which an hour's confidence counts as shifted ..."))
    confidence_ks_min_stat: Float = Field(0.1, ge=0, le=1, description=(
        "... when the KS statistic is also at least this."))
    canary_min_samples: Int = Field(50, ge=1, description=(
        "Calls each arm needs in an hour; fewer gives an inconclusive verdict."))
    canary_baseline_ratio: Float = Field(5.0, gt=0, description=(
        "Baseline calls compared per canary call (hash-sampled, at least 1,000 or all): the smaller arm bounds "
        "the tests' power, so a bigger baseline adds little."))
    canary_alpha: Float = Field(0.01, gt=0, lt=1, description="Significance level of each canary test (one-sided).")
    canary_latency_tolerance: Float = Field(0.10, ge=0, description=(
        "Relative worsening of the canary's median latency that is tolerated."))
    canary_cost_tolerance: Float = Field(0.10, ge=0, description=(
        "Relative worsening of mean cost per request that is tolerated."))
    canary_error_tolerance: Float = Field(0.01, ge=0, description=(
        "Absolute worsening of the error rate that is tolerated."))
    canary_quality_tolerance: Float = Field(0.02, ge=0, description=(
        "Absolute drop of mean quality or confidence that is tolerated."))
    canary_override_tolerance: Float = Field(0.02, ge=0, description=(
        "Absolute rise of the human override rate that is tolerated."))
    shadow_comparator: Str = Field("normalized", description=(
        "How shadow and primary outputs are compared: `exact`, `normalized`, or `module:function(a, b) -> bool`."))
    # 2h: the default 1d/2h slow-burn rule
    burn_windows: tuple[Str, ...] = Field(("5m", "30m", "1h", "2h", "6h", "1d", "3d"), description=(
        "Windows over which error-budget burn rates are computed (the metric's grain)."))
    route_baseline_hours: Int = Field(24, ge=1, description=(
        "Per route and model, the normal failure rate and the learned slow-call threshold (median of the hourly "
        "p99s) come from this many trailing hours."))
    backfill: Str = Field("", description=(
        "e.g. `3d`: a store whose analyzers never ran gets that much history analyzed by the server, a day per step "
        "with progress logged, before the scheduled analyzers and the alert replay start (the demo sets it, so its "
        "URL does not wait for `aiwatch analyze`; empty: none)."))
    slos: tuple[SLO, ...] = Field(DEFAULT_SLOS, description=(
        "Objectives, as `[[analysis.slos]]` tables: `name`, `kind` (availability or latency), `objective`, "
        "`service` (`*`: each), `route`, `threshold_ms` (latency)."))

    @field_validator("drift_columns")
    @classmethod
    def _known_columns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from analysis.settings import DriftColumn

        for spec in value:
            DriftColumn.parse(spec)     # ValueError names what is wrong with the spec
        return value

    @field_validator("burn_windows")
    @classmethod
    def _computable_windows(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or any(g not in GRAIN_SECONDS for g in value):
            raise ValueError(f"{list(value)!r} is not a non-empty list of {', '.join(GRAIN_SECONDS)}")
        return value

    @field_validator("backfill")
    @classmethod
    def _backfill_window(cls, value: str) -> str:
        if value.strip():
            parse_duration(value.strip(), numbers=False)
        return value.strip()

    @field_validator("reference_start", "reference_end")
    @classmethod
    def _iso_time(cls, value: str) -> str:
        from datetime import datetime

        if value:
            datetime.fromisoformat(value)   # ValueError: "Invalid isoformat string: ..."
        return value

    @property
    def drift_column_specs(self) -> list[DriftColumn]:
        from analysis.settings import DriftColumn

        return [DriftColumn.parse(c) for c in self.drift_columns]

    @classmethod
    def load(cls, data_dir: str | Path | None = None, env: Mapping[str, str] | None = None) -> AnalysisSettings:
        """The [analysis] section as `Settings.load` resolves it (for a given data_dir)."""
        return Settings.load(env=env, data_dir=None if data_dir is None else str(data_dir)).analysis

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnalysisSettings:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_explain(exc, [], root="analysis")) from None


# --- alerts ------------------------------------------------------------------------------------

class AlertsSettings(Section):
    """[alerts]: the rules file and the alerting jobs' cadence (rules-file format: alerts/README.md)."""

    rules: Str = Field("", description="Rules file (empty: the shipped `alerts/default_rules.yaml`).")
    enabled: Bool = Field(True, description="Evaluate and deliver alerts in the server.")
    eval_interval_s: Float = Field(15.0, gt=0, description="Seconds between rule evaluations.")
    deliver_interval_s: Float = Field(2.0, gt=0, description="Seconds between outbox delivery passes.")
    replay: Str = Field("", description=(
        "e.g. `3d`: before the first live evaluation of a store without alert history, replay the rules over "
        "that much stored analyzer output into the history, logging progress (the demo sets it; empty: none)."))

    @field_validator("rules")
    @classmethod
    def _rules_file(cls, value: str) -> str:
        """The rules file is checked here, so every command and the server's start-up stop on a bad one."""
        if value:
            from alerts.rules import RulesError, load_config

            try:
                load_config(value)
            except RulesError as exc:   # each problem names the file, the rule and the key
                raise ValueError("\n  " + "\n  ".join(exc.problems)) from None
        return value

    @field_validator("replay")
    @classmethod
    def _duration(cls, value: str) -> str:
        if value.strip():
            parse_duration(value.strip())
        return value.strip()


# --- the whole --------------------------------------------------------------------------------

SECTIONS: dict[str, type[Section]] = {"analysis": AnalysisSettings, "alerts": AlertsSettings}


class Settings(BaseSettings):
    """Top-level settings (server, storage, redaction, dashboard) and the stages' sections."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    # Server
    host: Str = Field("127.0.0.1", description="Address the server binds to.")
    port: Int = Field(4318, ge=0, le=65535, description="Port for OTLP/HTTP ingest and the read API (4318 is OTLP's).")
    data_dir: Str = Field("./aiwatch-data", description="Folder for the DuckDB file and generated reports.")
    store: Str = Field("duckdb", description=(
        "Where telemetry and analyses live: duckdb (the data dir's file), clickhouse://user:password@host:8123/DATABASE "
        "(a ClickHouse server, reading the OpenTelemetry Collector's tables) or chdb:///absolute/path?database=DATABASE "
        "(the same engine in-process)."))
    traces_table: Str = Field("otel_traces", description="ClickHouse backend: the Collector's traces table.")
    logs_table: Str = Field("otel_logs", description="ClickHouse backend: the Collector's logs table.")
    clickhouse_cluster: Str = Field("", description=(
        "ClickHouse backend: run migrations ON CLUSTER this cluster, on replicated engines (empty: one server)."))
    clickhouse_materialize: Bool = Field(False, description=(
        "ClickHouse backend: add MATERIALIZED columns for the mapped span attributes to the traces table, so reads "
        "skip per-row Map lookups (older parts compute them on read until merged or MATERIALIZE COLUMN)."))
    keeper: Str = Field("", description=(
        "chdb with `lease`: the Keeper or ZooKeeper ensemble, host:port[,host:port...] (a server uses its own)."))
    lease: Bool = Field(False, description=(
        "Several instances on one ClickHouse: run the scheduled jobs (analyzers, alerts, retention) only while this "
        "instance holds the lease, a KeeperMap row in Keeper; the notification log moves to Keeper too, so a new "
        "holder never pages again. Needs a server with Keeper and keeper_map_path_prefix configured, or chdb with "
        "`keeper`."))
    lease_ttl_s: Float = Field(30.0, ge=2, le=60, description=(
        "A holder not heard from for this many seconds is replaced: another instance holds the lease 0.75-1.5x "
        "this after the holder dies (at most 60: within two minutes)."))
    instance_id: Str = Field("", description=(
        "This instance's name in /readyz and /metrics (letters, digits, '.', '_', '-'; empty: aiwatch-<random>)."))
    ingest_token: Str = Field("", description=(
        "Bearer token required on /v1/traces, /v1/logs, /v1/metrics (empty: no auth)."))
    api_token: Str = Field("", description="Bearer token required on the read API (empty: no auth).")
    metrics_token: Str = Field("", description=(
        "Bearer token a Prometheus scraper gives for /metrics, so it need not hold api_token; /metrics takes "
        "either token, and is open only when both are empty. /healthz and /readyz are always open."))
    # Writer and back-pressure
    writer_max_rows: Int = Field(50_000, ge=1, description="Writer flushes a group commit at this many rows.")
    writer_max_delay_ms: Int = Field(5, ge=0, description="Longest wait for more rows before a group commit (ms).")
    queue_max_rows: Int = Field(400_000, ge=1, description="Rows waiting for the writer before ingest answers 503.")
    max_body_bytes: Int = Field(16 * 1024 * 1024, ge=1024, description=(
        "Largest accepted request body (after gzip inflation): 413 above."))
    ingest_workers: Int = Field(-1, ge=-1, description=(
        "Processes that decode and map OTLP payloads (-1: one per core; 0: in the server process)."))
    max_concurrent_requests: Int = Field(256, ge=1, description=(
        "Requests in progress at once (idle connections do not count); beyond it answers 503 with Retry-After "
        "(/healthz, /readyz and /metrics are not limited)."))
    header_timeout_s: Float = Field(10.0, ge=0.1, description=(
        "A connection that has not sent a request's headers within this many seconds is closed."))
    body_timeout_s: Float = Field(30.0, ge=0.1, description=(
        "A request whose body has not arrived within this many seconds of its headers is answered 408 and closed."))
    keep_alive_s: Float = Field(5.0, ge=0.1, description="An idle keep-alive connection is closed after this many seconds.")
    max_response_bytes: Int = Field(64 * 1024 * 1024, ge=65536, description=(
        "Largest read-API answer: rows past it are left out, and the answer says so (X-Truncated: true, and "
        "\"truncated\": true in JSON); narrow the window or lower limit."))
    max_concurrent_queries: Int = Field(4, ge=1, description=(
        "Read-API queries computed at once (each may hold a large result while it is encoded); others wait up to "
        "30 s, then get 503 with Retry-After."))
    retry_after_s: Int = Field(2, ge=1, description="Retry-After seconds sent with 429/503 when overloaded.")
    # Content handling
    content_mode: Literal["keep", "redact", "drop"] = Field("redact", description=(
        "Message content at ingest: keep, redact or drop."))
    max_content_chars: Int = Field(16_384, ge=0, description=(
        "Message content kept per span and direction (rest truncated)."))
    max_attribute_chars: Int = Field(4_096, ge=64, description=(
        "Longest attribute value stored; longer ones truncated with a marker."))
    max_span_attribute_bytes: Int = Field(64 * 1024, ge=1024, description=(
        "Attribute JSON stored per span, and per distinct resource (resource attributes are stored once per "
        "resource); whole attributes past it are left out and counted in aiwatch.attributes.dropped, with a "
        "partial_success warning."))
    max_request_attribute_bytes: Int = Field(8 * 1024 * 1024, ge=1024, description=(
        "Attribute JSON one OTLP request may store in all; spans past it keep their columns but no attributes "
        "(counted, with a warning)."))
    # Redaction
    redact_strings: Bool = Field(True, description=(
        "Also redact every other stored string at ingest: attributes, span names, status messages, log bodies, "
        "resource attributes, feedback reasons."))
    redact_replacement: Literal["mask", "hash"] = Field("mask", description=(
        "What replaces a finding: mask ([REDACTED:email]) or hash ([email:<salted sha256>], joinable)."))
    redact_salt: Str = Field("", description=(
        "Salt of hash replacements (set one: unsalted hashes of phone numbers can be brute-forced)."))
    redact_keep_keys: Str = Field("", description="Comma-separated attribute keys stored as sent, never redacted.")
    redact_drop_keys: Str = Field("", description="Comma-separated attribute keys dropped at ingest, never stored.")
    redact_patterns: Str = Field("", description=(
        "Extra redaction kinds, one `kind=regex` per line (or separated by ;;); they win over the built-in rules."))
    # Audit files
    audit_paths: Str = Field("", description="Comma-separated globs of JSONL audit files to tail (empty: none).")
    audit_poll_s: Float = Field(1.0, ge=0.05, description="How often the audit tailer polls its files.")
    # Retention and scheduling
    retention_days: Int = Field(30, ge=0, description=(
        "Rows older than this are deleted by the retention job (0 keeps all)."))
    analysis_retention_days: Int = Field(400, ge=0, description=(
        "Analyzer rows by the hour or day, and reports, are kept this long (0 keeps all); minute rows follow "
        "retention_days."))
    scheduler_enabled: Bool = Field(True, description="Run scheduled jobs (analyzers, alerts, retention) in the server.")
    weekly_export_weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = Field("mon", description=(
        "Day the server writes last week's review (every export format, under <data_dir>/reports), at "
        "weekly_export_hour (UTC); a missing one is also written at start-up."))
    weekly_export_hour: Int = Field(6, ge=0, le=23, description="Hour (UTC) of the weekly review export.")
    # Prices
    prices_file: Str = Field("", description=(
        "TOML file of per-model price overrides in USD per million tokens (see Prices below), on top of genai-prices, "
        "for calls that carry no cost of their own: cost queries, analyzers and the weekly review."))
    # Dashboard
    dashboard_port: Int = Field(8501, ge=0, le=65535, description="Port of the Streamlit dashboard.")
    server_url: Str = Field("http://127.0.0.1:4318", description="Server URL that the dashboard and CLI read from.")
    dashboard_password: Str = Field("", description=(
        "Shared secret to sign in to the dashboard (small teams; OIDC: [auth] in .streamlit/secrets.toml). "
        "Required when a token is set and OIDC is not configured."))
    # Sections
    analysis: AnalysisSettings = AnalysisSettings()
    alerts: AlertsSettings = AlertsSettings()

    def __init__(self, **values: Any) -> None:
        """A bad value given in code is a ConfigError too (Settings.load names the file or variable)."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            request = _REQUEST.get()
            raise ConfigError(_explain(exc, request.sources if request else [])) from None

    @field_validator("redact_patterns")
    @classmethod
    def _patterns(cls, value: str) -> str:
        _parse_patterns(value)
        return value

    @field_validator("store")
    @classmethod
    def _store_target(cls, value: str) -> str:
        from store.clickhouse import parse_store

        parse_store(value)      # StoreSettingError (a ValueError) says why, never echoing a password
        return value

    @field_validator("keeper")
    @classmethod
    def _keeper_nodes(cls, value: str) -> str:
        from store.clickhouse import parse_keeper

        if value:
            parse_keeper(value)
        return value

    @field_validator("instance_id")
    @classmethod
    def _instance_name(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", value):
            raise ValueError("use 1-64 letters, digits, '.', '_' or '-'")
        return value

    @field_validator("clickhouse_materialize")
    @classmethod
    def _materialize_backend(cls, value: bool, info: ValidationInfo) -> bool:
        if value and "store" in info.data:
            from store.clickhouse import parse_store

            if parse_store(info.data["store"]).kind == "duckdb":
                raise ValueError("needs the ClickHouse backend (store = clickhouse://... or chdb:///...)")
        return value

    @field_validator("lease")
    @classmethod
    def _lease_backend(cls, value: bool, info: ValidationInfo) -> bool:
        if value and "store" in info.data:      # (a bad store is reported on its own)
            from store.clickhouse import parse_store

            kind = parse_store(info.data["store"]).kind
            if kind == "duckdb":
                raise ValueError("needs the ClickHouse backend (store = clickhouse://... or chdb:///...)")
            if kind == "chdb" and not info.data.get("keeper"):
                raise ValueError("chdb needs `keeper` (host:port of Keeper or ZooKeeper)")
        return value

    @field_validator("traces_table", "logs_table", "clickhouse_cluster")
    @classmethod
    def _identifier(cls, value: str, info: ValidationInfo) -> str:
        from store.clickhouse import identifier

        if value or info.field_name != "clickhouse_cluster":
            identifier(value, str(info.field_name))
        return value

    @field_validator("prices_file")
    @classmethod
    def _prices(cls, value: str) -> str:
        from core.pricing import PriceTable

        if value:
            PriceTable.from_toml(value)     # ValueError names the file and the key
        return value

    @property
    def db_path(self) -> Path:
        return Path(self.data_dir) / "aiwatch.duckdb"

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        """`Settings(...)` in code is defaults + the given values; `Settings.load` adds env and files."""
        request = _REQUEST.get()
        return (init_settings,) if request is None else request.sources

    @classmethod
    def load(cls, path: str | Path | None = None, env: Mapping[str, str] | None = None,
             **flags: Any) -> Settings:
        """Flags (the non-None `flags`) -> `AIWATCH_*` variables -> the TOML file (`path`, else
        $AIWATCH_CONFIG) and the analysis file ($AIWATCH_ANALYSIS_CONFIG, else <data_dir>/analysis.toml)
        -> defaults."""
        env = os.environ if env is None else env
        flags = {k: v for k, v in flags.items() if v is not None}
        unknown = set(flags) - set(cls.model_fields)
        if unknown:
            raise TypeError(f"Settings.load: unknown setting(s) {', '.join(sorted(unknown))}")
        main = FileSource(cls, path or env.get(ENV_PREFIX + "CONFIG") or None)
        request = _Request((_FlagSource(cls, flags), EnvSource(cls, env),
                            AnalysisFileSource(cls, env.get(ENV_PREFIX + "ANALYSIS_CONFIG") or None, main),
                            main))
        token = _REQUEST.set(request)
        try:
            return cls(**flags)
        except ValidationError as exc:
            raise ConfigError(_explain(exc, request.sources)) from None
        finally:
            _REQUEST.reset(token)

    def replace(self, **changes: Any) -> Settings:
        try:
            return type(self).model_validate({**self.model_dump(), **changes})
        except ValidationError as exc:
            raise ConfigError(_explain(exc, [])) from None

    def redaction_patterns(self) -> dict[str, str]:
        """`redact_patterns` as {kind: regex}."""
        return _parse_patterns(self.redact_patterns)

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
            raise ConfigError(f"[aiwatch] prices_file: {exc}") from None

    def content_policy(self) -> ContentPolicy:
        from collectors.content import build_policy

        return build_policy(self.content_mode, self.max_content_chars, self.max_attribute_chars, self.redaction())


def _parse_patterns(text: str) -> dict[str, str]:
    patterns: dict[str, str] = {}
    for line in text.replace(";;", "\n").splitlines():
        if not line.strip():
            continue
        kind, sep, regex = line.strip().partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", kind.strip()) or not regex:
            raise ValueError(f"{line.strip()!r} is not kind=regex")
        try:
            re.compile(regex)
        except re.error as exc:
            raise ValueError(f"{kind.strip()}: {exc}") from None
        patterns[kind.strip()] = regex
    return patterns


# --- sources -----------------------------------------------------------------------------------

@dataclass
class _Request:
    sources: tuple[_Source, ...]


_REQUEST: ContextVar[_Request | None] = ContextVar("aiwatch_settings_load", default=None)


class _Source(PydanticBaseSettingsSource):
    """A layer of values; `origin(loc)` says where a value at `loc` came from, for error messages."""

    data: dict[str, Any]

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False   # unused: __call__ returns the whole layer

    def __call__(self) -> dict[str, Any]:
        return self.data

    def origin(self, loc: tuple) -> str | None:
        return None


class _FlagSource(_Source):
    def __init__(self, settings_cls: type[BaseSettings], flags: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self.data = dict(flags)

    def origin(self, loc: tuple) -> str | None:
        return f"--{loc[0].replace('_', '-')}" if _owns(self.data, loc) else None


def env_names() -> dict[tuple[str, ...], str]:
    """(section..., key) -> its environment variable, for every setting."""
    names: dict[tuple[str, ...], str] = {}
    for name in Settings.model_fields:
        if name in SECTIONS:
            for sub in SECTIONS[name].model_fields:
                names[(name, sub)] = f"{ENV_PREFIX}{name.upper()}_{sub.upper()}"
        else:
            names[(name,)] = ENV_PREFIX + name.upper()
    return names


class EnvSource(_Source):
    """`AIWATCH_<NAME>` / `AIWATCH_<SECTION>_<NAME>`; scalars parsed from text, lists and tables as JSON."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        import json

        super().__init__(settings_cls)
        self.data, self.vars = {}, {}
        for path, var in env_names().items():
            raw = env.get(var)
            if raw is None:
                continue
            model = SECTIONS[path[0]] if len(path) == 2 else Settings
            annotation = model.model_fields[path[-1]].annotation
            value: Any = raw
            try:
                if annotation is not None and _is_scalar(annotation):
                    value = TypeAdapter(annotation).validate_strings(raw)   # type only: ranges are the model's
                else:
                    value = json.loads(raw)
            except (ValidationError, ValueError):
                pass            # left as text: the model rejects it with the key's name
            node = self.data
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
            self.vars[path] = var

    def origin(self, loc: tuple) -> str | None:
        for path, var in self.vars.items():
            if tuple(loc[:len(path)]) == path:
                return f"environment {var}"
        return None


def _is_scalar(annotation: Any) -> bool:
    from typing import get_args, get_origin

    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation in (int, float, bool, str) or get_origin(annotation) is Literal


def _read_toml(path: str) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


class FileSource(_Source):
    """The settings file: top-level keys or [aiwatch] for top-level settings, [analysis], [alerts]."""

    def __init__(self, settings_cls: type[BaseSettings], path: str | Path | None) -> None:
        super().__init__(settings_cls)
        self.path = str(path) if path else None
        self.data = {}
        if self.path:
            raw = _read_toml(self.path)
            top = raw.pop("aiwatch", {})
            if not isinstance(top, dict):
                raise ConfigError(f"{self.path}: [aiwatch] must be a table")
            both = set(top) & set(raw)
            if both:
                raise ConfigError(f"{self.path}: [aiwatch] {', '.join(sorted(both))} set both in [aiwatch] and "
                                  "at the top")
            self.data = {**raw, **top}

    def origin(self, loc: tuple) -> str | None:
        return self.path if self.path and _owns(self.data, loc) else None


class AnalysisFileSource(_Source):
    """The analysis file: $AIWATCH_ANALYSIS_CONFIG, else <data_dir>/analysis.toml when it exists; its
    keys at the top or under [analysis]. It overrides [analysis] keys of the settings file."""

    def __init__(self, settings_cls: type[BaseSettings], path: str | None, main: FileSource) -> None:
        super().__init__(settings_cls)
        self.explicit, self.main, self.data = path, main, {}
        self.path: str | None = None

    def __call__(self) -> dict[str, Any]:
        path = self.explicit
        if not path:   # data_dir as the layers above this one and the settings file give it
            data_dir = self.current_state.get("data_dir") or self.main.data.get("data_dir") or \
                Settings.model_fields["data_dir"].default
            candidate = Path(str(data_dir)) / "analysis.toml"
            path = str(candidate) if candidate.is_file() else None
        if path:
            raw = _read_toml(path)
            self.path, self.data = path, {"analysis": raw.get("analysis", raw)}
        return self.data

    def origin(self, loc: tuple) -> str | None:
        return self.path if self.path and _owns(self.data, loc) else None


def _owns(data: Any, loc: tuple) -> bool:
    """Whether `data` set the value at `loc`: tables merge across layers, anything else is replaced whole."""
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return False
        if not isinstance(data, dict):
            return True
    return True


# --- error messages ---------------------------------------------------------------------------

_TYPES = {"int_type": "expected an integer", "int_from_float": "expected an integer", "float_type": "expected a number",
          "bool_type": "expected true or false", "string_type": "expected a string",
          "tuple_type": "expected a list", "list_type": "expected a list", "model_type": "expected a table",
          "dict_type": "expected a table", "model_attributes_type": "expected a table"}


_SECRETS = {"ingest_token", "api_token", "metrics_token", "redact_salt", "dashboard_password", "store"}


def _explain(exc: ValidationError, sources: Any, root: str = "") -> str:
    """One line per problem: `<where>: [<section>] <key>: <what is wrong>`."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = ((root,) if root else ()) + tuple(err["loc"])
        where = next((o for s in sources if (o := s.origin(loc))), None)
        section, key = _section_and_key(loc)
        kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
        if kind == "extra_forbidden":
            known = _known_keys(loc[:-1])
            close = difflib.get_close_matches(str(key), known, n=1)
            problem = f"unknown key '{key}'" + (f" (did you mean '{close[0]}'?)" if close else "")
        elif kind == "missing":
            problem = f"missing key '{key}'"
        else:
            if key in _SECRETS:
                value = "(hidden)"
            if kind in _TYPES:
                what = f"bad value {value!r}: {_TYPES[kind]}"
            elif kind == "greater_than_equal":
                what = f"{value!r} is below the minimum {ctx['ge']}"
            elif kind == "greater_than":
                what = f"{value!r} must be above {ctx['gt']}"
            elif kind == "less_than_equal":
                what = f"{value!r} is above the maximum {ctx['le']}"
            elif kind == "less_than":
                what = f"{value!r} must be below {ctx['lt']}"
            elif kind == "literal_error":
                choices = re.findall(r"'([^']*)'", str(ctx.get("expected")))
                what = f"{value!r} is not one of {', '.join(choices)}"
            elif kind == "value_error":
                what = str(ctx.get("error", err["msg"]))
            else:
                what = f"bad value {value!r}: {err['msg']}"
            problem = f"{key}: {what}" if key else what
        lines.append(f"{where + ': ' if where else ''}[{section}] {problem}")
    return "\n".join(lines)


def _section_and_key(loc: tuple) -> tuple[str, str]:
    """('analysis', 'slos', 0, 'kind') -> ('analysis.slos[0]', 'kind'); ('port',) -> ('aiwatch', 'port')."""
    last = max((i for i, p in enumerate(loc) if isinstance(p, str)), default=-1)
    key = "".join([str(loc[last]) if last >= 0 else ""] + [f"[{p}]" for p in loc[last + 1:]])
    head = loc[:last]
    if not head and key in SECTIONS:       # the section itself, e.g. `analysis = 5`
        return key, ""
    if not head or head[0] not in SECTIONS:
        head = ("aiwatch", *head)
    return "".join(f".{p}" if isinstance(p, str) else f"[{p}]" for p in head).lstrip("."), key


def _known_keys(loc: tuple) -> list[str]:
    model: Any = Settings
    for part in loc:
        if isinstance(part, int):
            continue
        f = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if f is None:
            return []
        model = SECTIONS.get(part) or (SLO if part == "slos" else None)
    return list(model.model_fields) if model else []


# --- documentation ----------------------------------------------------------------------------

def toml_value(value: Any) -> str:
    """A default as it would be written in the TOML file."""
    if isinstance(value, SLO):
        kept = {k: v for k, v in value.model_dump().items()
                if k in ("name", "kind", "objective") or v != SLO.model_fields[k].default}
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in kept.items()) + "}"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def settings_table() -> list[tuple[str, str, Any, str]]:
    """(name, environment variable, default, help) of every top-level setting: the README lists them all."""
    return [(name, ENV_PREFIX + name.upper(), f.default, f.description or "")
            for name, f in Settings.model_fields.items() if name not in SECTIONS]


def section_table(section: str) -> list[tuple[str, str, str, str]]:
    """(key, environment variable, default as TOML, help) of every setting of a [section]."""
    return [(name, f"{ENV_PREFIX}{section.upper()}_{name.upper()}", toml_value(f.default), f.description or "")
            for name, f in SECTIONS[section].model_fields.items()]


def markdown_table(section: str | None = None) -> str:
    """The README's table of the top-level settings or of one section's."""
    if section is None:
        rows = [f"| `{n}` | `{e}` | `{d!r}` | {h} |" for n, e, d, h in settings_table()]
        head = "| setting | environment variable | default | meaning |"
    else:
        rows = [f"| `{n}` | `{e}` | `{d}` | {h} |" for n, e, d, h in section_table(section)]
        head = "| key | environment variable | default | meaning |"
    return "\n".join([head, "|---|---|---|---|", *rows])


if __name__ == "__main__":   # python -m aiwatch.config: the README's tables
    for name in (None, *SECTIONS):
        print(f"\n{name or 'top level'}:\n{markdown_table(name)}")
