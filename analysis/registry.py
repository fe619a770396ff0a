"""Every analyzer, in run order, with its cadence: the one place they are registered."""
from __future__ import annotations

from analysis.base import Analyzer
from analysis.canary import CanaryAnalyzer
from analysis.confidence import ConfidenceAnalyzer
from analysis.drift import DriftAnalyzer
from analysis.route_health import RouteHealthAnalyzer
from analysis.settings import AnalysisSettings
from analysis.shadow import ShadowAnalyzer
from analysis.slo import SLOAnalyzer
from analysis.traffic import OverrideAnalyzer, ResourceAnalyzer, TrafficAnalyzer
from store.base import Store

# name -> (class, cadence). "minute" analyzers run every minute; "hourly" ones (statistical tests
# over hour buckets) every five minutes, refreshing the current hour.
ANALYZERS: dict[str, tuple[type, str]] = {
    "traffic": (TrafficAnalyzer, "minute"),
    "resources": (ResourceAnalyzer, "minute"),
    "overrides": (OverrideAnalyzer, "minute"),
    "slo": (SLOAnalyzer, "minute"),
    "route_health": (RouteHealthAnalyzer, "minute"),
    "shadow": (ShadowAnalyzer, "minute"),
    "confidence": (ConfidenceAnalyzer, "hourly"),
    "drift": (DriftAnalyzer, "hourly"),
    "canary": (CanaryAnalyzer, "hourly"),
}
CADENCE_SECONDS = {"minute": 60, "hourly": 300}


def build(store: Store, settings: AnalysisSettings | None = None, names: list[str] | None = None,
          cadence: str | None = None) -> list[Analyzer]:
    settings = settings or AnalysisSettings()
    unknown = set(names or ()) - set(ANALYZERS)
    if unknown:
        raise ValueError(f"unknown analyzer(s) {', '.join(sorted(unknown))}; known: {', '.join(ANALYZERS)}")
    return [cls(store, settings) for name, (cls, cad) in ANALYZERS.items()
            if (names is None or name in names) and (cadence is None or cad == cadence)]
