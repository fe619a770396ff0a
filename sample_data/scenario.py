"""The sample world: services, routes, models, and the incidents injected into it.

A scenario file (YAML) lists incidents with their kind, target and start/end in minutes from the
start of the generated period, so the same scenario can be laid on any date. Tests use the
incidents as ground truth for detection.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

INCIDENT_KINDS = ("latency_spike", "error_burst", "total_outage", "cost_spike", "confidence_drop",
                  "input_drift", "override_rise", "format_drop")
# The severity each kind should raise (what the shipped rules page, post or put on the review).
EXPECTED_SEVERITY = {"latency_spike": "P1", "error_burst": "P1", "total_outage": "P1", "cost_spike": "P2",
                     "confidence_drop": "P2", "format_drop": "P2", "input_drift": "P3", "override_rise": "P3"}

DEFAULT_SCENARIO = Path(__file__).with_name("scenario.yaml")


@dataclass(frozen=True)
class Model:
    name: str
    provider: str
    version: str
    input_per_1k: float      # USD per 1k input tokens
    output_per_1k: float     # USD per 1k output tokens
    latency_median_ms: float
    arm: str = "baseline"
    traffic_share: float = 1.0
    snapshot: str = ""           # the name the provider answers with (gpt-4o-mini-2024-07-18); "" = name
    latency_sigma: float = 0.35  # lognormal sigma: p99 = median x exp(2.33 sigma)


@dataclass(frozen=True)
class Route:
    name: str
    models: tuple[Model, ...]
    weight: float            # share of the service's traffic
    prompt_tokens_median: int
    output_tokens_median: int
    override_rate: float = 0.06  # share of reviewed answers a human modifies or rejects


@dataclass(frozen=True)
class Service:
    name: str
    version: str
    routes: tuple[Route, ...]
    requests_per_minute: float
    background_errors: float = 0.004   # share of calls failing outside incidents (429, 500, timeouts)


@dataclass(frozen=True)
class Incident:
    kind: str
    start_min: int
    end_min: int
    service: str
    route: str | None = None
    magnitude: float = 1.0
    description: str = ""
    model: str | None = None     # confine to one model (of the route, or of the service)
    tokens: str = "input"        # cost_spike: which tokens grow (input | output)

    def window(self, period_start: datetime) -> tuple[datetime, datetime]:
        return (period_start + timedelta(minutes=self.start_min), period_start + timedelta(minutes=self.end_min))

    def covers(self, minute: int, service: str, route: str) -> bool:
        return (self.start_min <= minute < self.end_min and service == self.service
                and (self.route is None or self.route == route))

    def targets(self, service: str, route: str, model: str) -> bool:
        return (service == self.service and (self.route is None or self.route == route)
                and (self.model is None or self.model == model))


@dataclass(frozen=True)
class Scenario:
    name: str
    days: float
    services: tuple[Service, ...]
    incidents: tuple[Incident, ...] = field(default_factory=tuple)
    clean_minutes: int = 0       # the first minutes hold no incident (the control period)


def _model(d: dict[str, Any]) -> Model:
    return Model(**d)


def load_scenario(path: str | Path = DEFAULT_SCENARIO) -> Scenario:
    data = yaml.safe_load(Path(path).read_text())
    return scenario_from_dict(data, str(path))


def scenario_from_dict(data: dict[str, Any], path: str = "<scenario>") -> Scenario:
    services = tuple(
        Service(s["name"], s["version"], tuple(
            Route(r["name"], tuple(_model(m) for m in r["models"]), r["weight"], r["prompt_tokens_median"],
                  r["output_tokens_median"], r.get("override_rate", 0.06)) for r in s["routes"]),
                s["requests_per_minute"], s.get("background_errors", 0.004))
        for s in data["services"])
    incidents = tuple(Incident(**i) for i in data.get("incidents", []))
    for inc in incidents:
        if inc.kind not in INCIDENT_KINDS:
            raise ValueError(f"{path}: incident kind {inc.kind!r} is not one of {', '.join(INCIDENT_KINDS)}")
        if inc.service not in {s.name for s in services}:
            raise ValueError(f"{path}: incident service {inc.service!r} is not in the scenario")
        if inc.tokens not in ("input", "output"):
            raise ValueError(f"{path}: incident tokens {inc.tokens!r} is not input or output")
    return Scenario(data["name"], float(data["days"]), services, incidents, int(data.get("clean_minutes", 0)))
