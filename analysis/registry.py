"""Every analyzer, in run order, with its cadence: one explicit registry object, `ANALYZERS`.

"minute" analyzers run every minute; "hourly" ones (statistical tests over hour buckets) every five
minutes, refreshing the current hour.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from analysis.settings import AnalysisSettings

if TYPE_CHECKING:
    from analysis.base import Analyzer
    from store.base import Store

CADENCE_SECONDS = {"minute": 60, "hourly": 300}


@dataclass(frozen=True)
class AnalyzerSpec:
    name: str
    # "module:Class". Imported when first built: the statistical analyzers pull in scipy, pandas and
    # polars (seconds of import), which a server that only ingests and answers reads never needs.
    target: str
    cadence: str          # a key of CADENCE_SECONDS

    @property
    def cls(self) -> Callable[[Store, AnalysisSettings], Analyzer]:
        module, _, name = self.target.partition(":")
        return cast("Callable[[Store, AnalysisSettings], Analyzer]",
                    getattr(importlib.import_module(module), name))


class AnalyzerRegistry:
    """Analyzers by name, in run order. Iterating yields the names (like a dict's keys)."""

    def __init__(self, specs: Iterable[AnalyzerSpec]) -> None:
        self._specs: dict[str, AnalyzerSpec] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise ValueError(f"analyzer {spec.name!r} is registered twice")
            if spec.cadence not in CADENCE_SECONDS:
                raise ValueError(f"analyzer {spec.name!r}: cadence {spec.cadence!r} is not one of "
                                 f"{', '.join(CADENCE_SECONDS)}")
            self._specs[spec.name] = spec

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __len__(self) -> int:
        return len(self._specs)

    def __getitem__(self, name: str) -> AnalyzerSpec:
        return self._specs[name]

    def specs(self) -> list[AnalyzerSpec]:
        return list(self._specs.values())

    def named(self, cadence: str) -> list[str]:
        """The analyzers that run at `cadence`, in run order."""
        return [s.name for s in self._specs.values() if s.cadence == cadence]

    def build(self, store: Store, settings: AnalysisSettings | None = None, names: list[str] | None = None,
              cadence: str | None = None) -> list[Analyzer]:
        settings = settings or AnalysisSettings()
        unknown = set(names or ()) - set(self._specs)
        if unknown:
            raise ValueError(f"unknown analyzer(s) {', '.join(sorted(unknown))}; known: {', '.join(self._specs)}")
        return [s.cls(store, settings) for s in self._specs.values()
                if (names is None or s.name in names) and (cadence is None or s.cadence == cadence)]


ANALYZERS = AnalyzerRegistry([
    AnalyzerSpec("traffic", "analysis.traffic:TrafficAnalyzer", "minute"),
    AnalyzerSpec("resources", "analysis.traffic:ResourceAnalyzer", "minute"),
    AnalyzerSpec("overrides", "analysis.traffic:OverrideAnalyzer", "minute"),
    AnalyzerSpec("slo", "analysis.slo:SLOAnalyzer", "minute"),
    AnalyzerSpec("route_health", "analysis.route_health:RouteHealthAnalyzer", "minute"),
    AnalyzerSpec("route_shift", "analysis.route_shift:RouteShiftAnalyzer", "minute"),
    AnalyzerSpec("shadow", "analysis.shadow:ShadowAnalyzer", "minute"),
    AnalyzerSpec("confidence", "analysis.confidence:ConfidenceAnalyzer", "hourly"),
    AnalyzerSpec("drift", "analysis.drift:DriftAnalyzer", "hourly"),
    AnalyzerSpec("canary", "analysis.canary:CanaryAnalyzer", "hourly"),
])
build = ANALYZERS.build   # the shipped analyzers, built for a store (most callers want these)
