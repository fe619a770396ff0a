"""Settings of the analyzers: late-data grace, baselines, drift columns, canary tolerances, SLOs.

Defaults suit most services. Override them in a TOML file named by `AIWATCH_ANALYSIS_CONFIG`
(else `<data_dir>/analysis.toml` when present); unknown keys are rejected with their name.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiwatch.config import ConfigError


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
    def parse(cls, spec: str) -> "DriftColumn":
        name, _, kind = spec.rpartition(":") if spec.endswith((":num", ":cat")) else (spec, "", "num")
        return cls(name, kind)


DEFAULT_SLOS = (
    SLO("availability", "availability", 0.995),
    SLO("latency", "latency", 0.99, threshold_ms=5000.0),
)

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
    canary_alpha: float = 0.01
    canary_latency_tolerance: float = 0.10    # relative worsening of median latency allowed
    canary_cost_tolerance: float = 0.10       # relative worsening of mean cost per request
    canary_error_tolerance: float = 0.01      # absolute worsening of error rate
    canary_quality_tolerance: float = 0.02    # absolute drop of mean quality / confidence
    canary_override_tolerance: float = 0.02
    shadow_comparator: str = "normalized"     # exact | normalized | module:function(a, b) -> bool
    burn_windows: tuple[str, ...] = ("5m", "30m", "1h", "6h", "1d", "3d")
    slos: tuple[SLO, ...] = DEFAULT_SLOS

    @property
    def drift_column_specs(self) -> list[DriftColumn]:
        return [DriftColumn.parse(c) for c in self.drift_columns]

    @classmethod
    def load(cls, data_dir: str | Path | None = None, env: dict[str, str] | None = None) -> "AnalysisSettings":
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
        return cls.from_dict(data.get("analysis", data))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AnalysisSettings":
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise ConfigError(f"analysis: unknown key(s) {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key == "slos":
                values[key] = tuple(SLO(**s) for s in value)
            elif key in ("drift_columns", "burn_windows"):
                values[key] = tuple(value)
            else:
                default = known[key].default
                try:
                    values[key] = type(default)(value)
                except (TypeError, ValueError):
                    raise ConfigError(f"analysis.{key}: bad value {value!r}") from None
        return cls(**values)
