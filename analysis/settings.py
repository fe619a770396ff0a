"""The analyzers' settings are the [analysis] section of the one settings model (aiwatch/config.py);
this module keeps their names where the analyzers import them, and the drift column spec."""
from __future__ import annotations

from dataclasses import dataclass

from aiwatch.config import DEFAULT_DRIFT_COLUMNS, DEFAULT_SLOS, SLO, AnalysisSettings, ConfigError  # noqa: F401
from store.analytics import drift_column_sql

# what budgets are measured against before the SLO analyzer has recorded the objective in force
DEFAULT_AVAILABILITY_OBJECTIVE = next(s.objective for s in DEFAULT_SLOS if s.kind == "availability")


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
