"""Settings of the analyzers: late-data grace, baselines, drift columns, canary tolerances, SLOs.

Defaults suit most services. Override them in a TOML file named by `AIWATCH_ANALYSIS_CONFIG`
(else `<data_dir>/analysis.toml` when present); unknown keys are rejected with their name.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiwatch.config import ConfigError
from core.grains import GRAIN_SECONDS
from store.analytics import drift_column_sql


@dataclass(frozen=True)
class SLO:
    """One objective. `service` / `route` of "*" or "" mean: one SLO per service (route ignored)."""

    name: str
    kind: str                      # availability | latency
    objective: float               # e.g. 0.995 of requests good
    service: str = "*"
    route: str = ""
    threshold_ms: float = 0.0      # latency SLOs: a request is good when faster than this

    def __post_init__(self) -> None:
        if self.kind not in ("availability", "latency"):
            raise ConfigError(f"slos.{self.name}.kind: {self.kind!r} is not availability or latency")
        if not 0 < self.objective < 1:
            raise ConfigError(f"slos.{self.name}.objective: {self.objective!r} must be between 0 and 1")
        if self.kind == "latency" and self.threshold_ms <= 0:
            raise ConfigError(f"slos.{self.name}.threshold_ms: a latency SLO needs a positive threshold")


@dataclass(frozen=True)
class DriftColumn:
    """An input column watched for drift: a span column or a span attribute (`attr:<key>`)."""

    name: str
    kind: str = "num"              # num | cat

    @classmethod
    def parse(cls, spec: str) -> DriftColumn:
        """ValueError for anything but a known span column, `prompt_chars` or `attr:<key>` with a plain key."""
        name, _, kind = spec.rpartition(":") if spec.endswith((":num", ":cat")) else (spec, "", "num")
        drift_column_sql(name)
        return cls(name, kind)


# Availability per service only: a latency threshold differs per route (a long-output route's
# normal p99 is 10-30 s), so routes without a configured latency SLO are judged against their own
# learned p99 (analysis/route_health.py).
DEFAULT_SLOS = (
    SLO("availability", "availability", 0.99),
)
# what budgets are measured against before the SLO analyzer has recorded the objective in force
DEFAULT_AVAILABILITY_OBJECTIVE = next(s.objective for s in DEFAULT_SLOS if s.kind == "availability")

DEFAULT_DRIFT_COLUMNS = (
    "input_tokens:num", "output_tokens:num", "prompt_chars:num",
    "attr:aiwatch.input.language:cat", "attr:aiwatch.input.topic:cat",
)


@dataclass(frozen=True)
class AnalysisSettings:
    late_window_s: int = 3600          # spans received up to this late are re-folded automatically
    grace_s: int = 120                 # feedback / resource metrics: recompute this much before the watermark
    initial_lookback_s: int = 86_400   # a first incremental run starts at most this far back
    max_window_s: int = 6 * 3600       # an incremental run catches up in chunks of at most this
    baseline_days: float = 7.0         # trailing reference for confidence and drift
    reference_start: str = ""          # pin the reference period instead (ISO 8601 start and end)
    reference_end: str = ""
    sample_cap: int = 50_000           # rows per side for drift / confidence tests
    drift_columns: tuple[str, ...] = DEFAULT_DRIFT_COLUMNS
    drift_share: float = 0.5           # Evidently's dataset drift share
    drift_min_rows: int = 200          # current rows per route before drift is judged (small samples are noisy)
    confidence_psi_alert: float = 0.2
    confidence_ks_alpha: float = 0.001
    confidence_ks_min_stat: float = 0.1
    canary_min_samples: int = 50
    canary_baseline_ratio: float = 5.0        # baseline calls compared per canary call (at least 1,000)
    canary_alpha: float = 0.01
    canary_latency_tolerance: float = 0.10    # relative worsening of median latency allowed
    canary_cost_tolerance: float = 0.10       # relative worsening of mean cost per request
    canary_error_tolerance: float = 0.01      # absolute worsening of error rate
    canary_quality_tolerance: float = 0.02    # absolute drop of mean quality / confidence
    canary_override_tolerance: float = 0.02
    shadow_comparator: str = "normalized"     # exact | normalized | module:function(a, b) -> bool
    burn_windows: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")   # 2h: the default 1d/2h slow-burn rule
    route_baseline_hours: int = 24     # a route's normal failure rate and p99: its trailing hours
    slos: tuple[SLO, ...] = DEFAULT_SLOS

    @classmethod
    def table(cls) -> list[tuple[str, str, str]]:
        """(key, default as TOML, meaning) of every setting: the README's "Analysis settings" table."""
        return [(f.name, toml_value(f.default), SETTINGS_HELP[f.name]) for f in dataclasses.fields(cls)]

    @property
    def drift_column_specs(self) -> list[DriftColumn]:
        return [DriftColumn.parse(c) for c in self.drift_columns]

    @classmethod
    def load(cls, data_dir: str | Path | None = None, env: Mapping[str, str] | None = None) -> AnalysisSettings:
        env = os.environ if env is None else env
        path = env.get("AIWATCH_ANALYSIS_CONFIG")
        if not path and data_dir and (Path(data_dir) / "analysis.toml").exists():
            path = str(Path(data_dir) / "analysis.toml")
        if not path:
            return cls()
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"analysis config {path}: {exc}") from exc
        try:
            return cls.from_dict(data.get("analysis", data))
        except ConfigError as exc:
            raise ConfigError(f"analysis config {path}: {exc}") from None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnalysisSettings:
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise ConfigError(f"analysis: unknown key(s) {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key == "slos":
                if not isinstance(value, list):
                    raise ConfigError("analysis.slos: a list of [[slos]] tables")
                values[key] = tuple(_slo(i, s) for i, s in enumerate(value))
            elif key == "drift_columns":
                if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
                    raise ConfigError("analysis.drift_columns: a list of strings like \"attr:tier:cat\"")
                for spec in value:
                    try:
                        DriftColumn.parse(spec)
                    except ValueError as exc:
                        raise ConfigError(f"analysis.drift_columns: {exc}") from None
                values[key] = tuple(value)
            elif key == "burn_windows":
                if not isinstance(value, list) or not value or not all(g in GRAIN_SECONDS for g in value):
                    raise ConfigError(f"analysis.burn_windows: {value!r} is not a non-empty list of "
                                      f"{', '.join(GRAIN_SECONDS)}")
                values[key] = tuple(value)
            else:
                values[key] = _scalar(f"analysis.{key}", known[key].default, value)
        return cls(**values)


def _scalar(key: str, default: Any, value: Any) -> Any:
    """`value` as the default's type; a bool is no number (TOML `true` must not read as 1)."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool) or isinstance(value, float) and value.is_integer()
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(f"{key}: bad value {value!r}: expected {type(default).__name__}")
    return type(default)(value)


def _slo(i: int, raw: Any) -> SLO:
    """One [[slos]] table; unknown keys and wrong types are ConfigErrors naming the key."""
    where = f"analysis.slos[{i}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a table with name, kind, objective, ...")
    known = {f.name: f for f in dataclasses.fields(SLO)}
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"{where} ({raw.get('name', '?')}): unknown key(s) {', '.join(sorted(unknown))}")
    missing = [k for k in ("name", "kind", "objective") if k not in raw]
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(missing)}")
    types = {"name": "", "kind": "", "objective": 0.0, "service": "", "route": "", "threshold_ms": 0.0}
    return SLO(**{k: _scalar(f"{where}.{k}", types[k], v) for k, v in raw.items()})


# What each setting means (README "### Analysis settings" lists them all; a test keeps it so).
SETTINGS_HELP: dict[str, str] = {
    "late_window_s": "Spans that arrive after a run and start up to this many seconds before its watermark "
                     "are folded into their (already analyzed) minutes again.",
    "grace_s": "Feedback and resource metrics: each run recomputes this many seconds before its watermark.",
    "initial_lookback_s": "A first incremental run starts at most this far back (older data: `aiwatch analyze`).",
    "max_window_s": "An incremental run catches up in windows of at most this many seconds.",
    "baseline_days": "Trailing reference for confidence and drift: the days before the window's day.",
    "reference_start": "Pin the reference period instead (ISO 8601; with `reference_end`).",
    "reference_end": "End of the pinned reference period.",
    "sample_cap": "Most calls per group and side (hash-sampled, repeatable) for drift, confidence and canary tests.",
    "drift_columns": "Input columns watched for drift: span columns, `prompt_chars`, or `attr:<key>`; suffix "
                     "`:num` or `:cat`.",
    "drift_share": "Share of drifted columns at which a route's dataset counts as drifted (Evidently's).",
    "drift_min_rows": "Calls a route needs in an hour before its drift is judged.",
    "confidence_psi_alert": "PSI of an hour's confidence against the reference that counts as a shift.",
    "confidence_ks_alpha": "KS p-value under which an hour's confidence counts as shifted ...",
    "confidence_ks_min_stat": "... when the KS statistic is also at least this.",
    "canary_min_samples": "Calls each arm needs in an hour; fewer gives an inconclusive verdict.",
    "canary_baseline_ratio": "Baseline calls compared per canary call (hash-sampled, at least 1,000 or all): "
                             "the smaller arm bounds the tests' power, so a bigger baseline adds little.",
    "canary_alpha": "Significance level of each canary test (one-sided).",
    "canary_latency_tolerance": "Relative worsening of the canary's median latency that is tolerated.",
    "canary_cost_tolerance": "Relative worsening of mean cost per request that is tolerated.",
    "canary_error_tolerance": "Absolute worsening of the error rate that is tolerated.",
    "canary_quality_tolerance": "Absolute drop of mean quality or confidence that is tolerated.",
    "canary_override_tolerance": "Absolute rise of the human override rate that is tolerated.",
    "shadow_comparator": "How shadow and primary outputs are compared: `exact`, `normalized`, or "
                         "`module:function(a, b) -> bool`.",
    "burn_windows": "Windows over which error-budget burn rates are computed (the metric's grain).",
    "route_baseline_hours": "Per route and model, the normal failure rate and the learned slow-call threshold "
                            "(median of the hourly p99s) come from this many trailing hours.",
    "slos": "Objectives, as `[[slos]]` tables: `name`, `kind` (availability or latency), `objective`, "
            "`service` (`*`: each), `route`, `threshold_ms` (latency).",
}


def toml_value(value: Any) -> str:
    """A default as it would be written in analysis.toml."""
    if isinstance(value, SLO):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(SLO)}
        defaults = {f.name: f.default for f in dataclasses.fields(SLO)}
        kept = {k: v for k, v in fields.items() if k in ("name", "kind", "objective") or v != defaults[k]}
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in kept.items()) + "}"
    if isinstance(value, tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
