"""Shared helpers for alert tests: a fake clock, analyzer rows written straight into the store, a scripted
tick loop that records when each notification was decided."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from alerts.engine import AlertEngine
from alerts.rules import AlertsConfig, parse_config

T0 = datetime(2026, 3, 2, 12, 0, 0)
MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)


class FakeClock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


def write_metrics(store: Any, rows: list[dict[str, Any]]) -> None:
    """Analyzer rows as the analyzers store them (read back through the analysis_metrics view)."""
    cols = {"time": pa.timestamp("us"), "grain": pa.string(), "metric": pa.string(), "service_name": pa.string(),
            "model": pa.string(), "model_version": pa.string(), "route": pa.string(), "arm": pa.string(),
            "value": pa.float64(), "computed_at": pa.timestamp("us")}
    table = pa.table({c: pa.array([r.get(c) for r in rows], type=t) for c, t in cols.items()})
    store.writer.write(tables={"analysis_metric_rows": table})


def series(metric: str, start: datetime, minutes: int, value: float | Callable[[int], float], *,
           service: str = "checkout", grain: str = "1m", model: str = "gpt-4o", route: str = "/answer",
           arm: str | None = None, step: timedelta = MIN) -> list[dict[str, Any]]:
    """One row per step from `start`: value(i) for the i-th bucket."""
    out = []
    for i in range(minutes):
        t = start + i * step
        out.append({"time": t, "grain": grain, "metric": metric, "service_name": service, "model": model,
                    "model_version": "v1", "route": route, "arm": arm,
                    "value": value(i) if callable(value) else value, "computed_at": t + step})
    return out


BASE_CONFIG: dict[str, Any] = {
    "defaults": {"group_by": ["alertname", "service"], "group_wait": "30s", "group_interval": "5m",
                 "repeat_interval": "4h"},
    "receivers": {"ops": {"type": "review"}},
    "routes": [{"match": {}, "receivers": ["ops"]}],
    "inhibit_rules": [{"source": {"severity": "P1"}, "target": {"severity": "P2"}, "equal": ["service"]}],
    "rules": [
        {"name": "HighErrorRate", "severity": "P1", "for": "2m",
         "condition": {"metric": "error_rate", "op": ">", "threshold": 0.05}},
        {"name": "QualityLow", "severity": "P2", "for": "1m",
         "condition": {"metric": "quality_mean", "op": "<", "threshold": 0.5}},
    ],
}


def make_config(**overrides: Any) -> AlertsConfig:
    data = {**BASE_CONFIG, **overrides}
    return parse_config(data, "test-rules.yaml", env={})


@dataclass
class Script:
    """Tick the engine on a fake clock and remember when each notification was decided."""

    engine: AlertEngine
    clock: FakeClock
    notes: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)
    transitions: list[dict[str, Any]] = field(default_factory=list)

    def run_until(self, until: datetime, step: timedelta = 10 * SEC) -> None:
        while self.clock.now <= until:
            result = self.engine.tick()
            self.notes.extend((result.now, n) for n in result.notifications)
            self.transitions.extend(result.transitions)
            self.clock.advance(step)

    def quiet_until(self, until: datetime) -> None:
        """Tick once a minute up to `until` (a whole number of minutes on): for the stretch before a
        condition's first bad bucket is visible, where the 10 s cadence repeats the same evaluation."""
        self.run_until(until - SEC, step=MIN)

    def notified(self, status: str | None = None, alertname: str | None = None) -> list[tuple[datetime, dict]]:
        out = []
        for t, n in self.notes:
            m = n["message"]
            if status and m["status"] != status:
                continue
            if alertname and not any(a["labels"]["alertname"] == alertname for a in m["alerts"]):
                continue
            out.append((t, m))
        return out


def expect_between(times: list[datetime], lo: datetime, hi: datetime) -> None:
    assert times, f"expected a notification in [{lo}, {hi}], got none"
    assert lo <= times[0] <= hi, f"notification at {times[0]}, expected in [{lo}, {hi}]"


