"""Shadow mode: the share of shadow calls whose output agrees with the primary call's output
(output hashes when the shim records them, else exact / normalised text, or a user comparator)."""
from __future__ import annotations

import importlib
import re
from collections import defaultdict
from collections.abc import Callable

from analysis.base import Result, Window, minute_and_hour_ranges
from analysis.settings import AnalysisSettings
from core.grains import floor_time
from store import analytics
from store.base import Store

_SPACE = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]")


def normalize(text: str) -> str:
    return _SPACE.sub(" ", _PUNCT.sub("", text.casefold())).strip()


def comparator(spec: str) -> Callable[[str, str], bool]:
    if spec == "exact":
        return lambda a, b: a == b
    if spec == "normalized":
        return lambda a, b: normalize(a) == normalize(b)
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


class ShadowAnalyzer:
    name = "shadow"
    source = "spans"
    owns = ("shadow_agreement_rate", "shadow_pairs")

    def __init__(self, store: Store, settings: AnalysisSettings | None = None) -> None:
        self.store = store
        self.same = comparator((settings or AnalysisSettings()).shadow_comparator)

    def replaces(self, window: Window) -> list:
        return minute_and_hour_ranges(window)

    def run(self, window: Window) -> Result:
        m_start, m_end = window.aligned("1m")
        counts: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        hours = window.aligned("1h")
        pairs = analytics.shadow_pairs(self.store, *hours).to_pylist() \
            if analytics.has_shadow_calls(self.store, *hours) else []
        for p in pairs:
            if p["shadow_hash"] and p["primary_hash"]:
                agree = p["shadow_hash"] == p["primary_hash"]
            elif p["shadow_output"] is not None and p["primary_output"] is not None:
                agree = bool(self.same(p["primary_output"], p["shadow_output"]))
            else:
                continue
            labels = (p["service_name"], p["model"], p["model_version"], p["route"])
            grains = [("1h", floor_time(p["start_time"], "1h"))]
            if m_start <= p["start_time"] < m_end:
                grains.append(("1m", floor_time(p["start_time"], "1m")))
            for grain, t in grains:
                for key in ((grain, t, *labels), (grain, t, labels[0], None, None, None)):
                    counts[key][0] += 1
                    counts[key][1] += agree
        rows = []
        for (grain, t, service, model, version, route), (n, agree) in counts.items():
            base = {"time": t, "grain": grain, "service_name": service, "model": model, "model_version": version,
                    "route": route, "arm": "shadow", "computed_at": window.computed_at}
            rows += [{**base, "metric": "shadow_pairs", "value": float(n)},
                     {**base, "metric": "shadow_agreement_rate", "value": agree / n}]
        return Result(analytics.metrics_table(rows))
