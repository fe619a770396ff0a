"""aiwatch's metrics about itself, exposed at /metrics in the Prometheus text format."""
from __future__ import annotations

import threading
from collections import defaultdict
from typing import Callable, Iterable


class SelfMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self._help: dict[str, tuple[str, str]] = {}
        self._gauges: dict[str, Callable[[], float]] = {}
        self._families: dict[str, Callable[[], Iterable[tuple[dict[str, str], float]]]] = {}

    def describe(self, name: str, kind: str, help: str) -> None:
        self._help[name] = (kind, help)

    def inc(self, name: str, value: float = 1, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._counters[key] += value

    def gauge(self, name: str, help: str, read: Callable[[], float], kind: str = "gauge") -> None:
        """A value read at scrape time (kind "counter" for monotonic ones kept elsewhere)."""
        self._help[name] = (kind, help)
        self._gauges[name] = read

    def family(self, name: str, help: str, read: Callable[[], Iterable[tuple[dict[str, str], float]]],
               kind: str = "counter") -> None:
        """Labelled values read at scrape time from counts kept elsewhere: (labels, value) pairs."""
        self._help[name] = (kind, help)
        self._families[name] = read

    def value(self, name: str, **labels: str) -> float:
        return self._counters.get((name, tuple(sorted(labels.items()))), 0.0)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            counters = dict(self._counters)
        by_name: dict[str, list[str]] = defaultdict(list)
        for (name, labels), value in sorted(counters.items()):
            label_text = ",".join(f'{k}="{v}"' for k, v in labels)
            by_name[name].append(f"{name}{{{label_text}}} {value:g}" if label_text else f"{name} {value:g}")
        for name, read in self._gauges.items():
            try:
                by_name[name].append(f"{name} {read():g}")
            except Exception:  # noqa: BLE001 - a failing gauge must not break the scrape
                continue
        for name, read_family in self._families.items():
            try:
                for labels, value in sorted(read_family(), key=lambda lv: sorted(lv[0].items())):
                    label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
                    by_name[name].append(f"{name}{{{label_text}}} {value:g}")
            except Exception:  # noqa: BLE001 - a failing reader must not break the scrape
                continue
        for name in sorted(by_name):
            kind, help_text = self._help.get(name, ("untyped", ""))
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *by_name[name]]
        return "\n".join(lines) + "\n"
