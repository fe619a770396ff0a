"""aiwatch's metrics about itself, exposed at /metrics through prometheus-client.

One registry per server (no global state): counters and histograms the server updates, plus
values read at scrape time from state kept elsewhere (the writer's statistics, the analyzers'
health). prometheus-client writes the exposition, escaping label values and HELP text.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

if TYPE_CHECKING:
    from store.base import TableWriter
    from store.writer import Buckets

log = logging.getLogger(__name__)
disable_created_metrics()   # no `*_created` series next to every counter: nothing here reads them

Reader = Callable[[], Iterable[tuple[dict[str, str], float]]]


class SelfMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._counters: dict[str, Counter] = {}
        self._histograms: dict[str, Histogram] = {}
        self._read = _ReadAtScrape()
        self.registry.register(self._read)

    # --- updated by the server ---
    def counter(self, name: str, help: str, labels: tuple[str, ...] = ()) -> None:
        self._counters[name] = Counter(name, help, labels, registry=self.registry)

    def histogram(self, name: str, help: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()) -> None:
        self._histograms[name] = Histogram(name, help, labels, buckets=buckets, registry=self.registry)

    def inc(self, name: str, value: float = 1, **labels: str) -> None:
        counter = self._counters[name]
        (counter.labels(**labels) if labels else counter).inc(value)

    def observe(self, name: str, value: float, **labels: str) -> None:
        hist = self._histograms[name]
        (hist.labels(**labels) if labels else hist).observe(value)

    # --- read at scrape time from state kept elsewhere ---
    def gauge(self, name: str, help: str, read: Callable[[], float]) -> None:
        self._read.add(name, help, "gauge", lambda: [({}, read())])

    def family(self, name: str, help: str, read: Reader, kind: str = "counter") -> None:
        """Labelled values: (labels, value) pairs; kind "counter" for monotonic counts."""
        self._read.add(name, help, kind, read)

    def value(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def render(self) -> bytes:
        return generate_latest(self.registry)


class WriterCollector:
    """The single writer's statistics, read at scrape time (the writer thread keeps them)."""

    def __init__(self, writer: Callable[[], TableWriter]) -> None:
        self._writer = writer

    def collect(self) -> Iterable[Metric]:
        w = self._writer()
        s = w.stats
        yield GaugeMetricFamily("aiwatch_queue_rows", "Rows waiting for the writer.", value=w.pending_rows)
        yield GaugeMetricFamily("aiwatch_writer_broken", "1 while the database refuses writes (disk full, I/O "
                                "errors), else 0.", value=float(w.broken is not None))
        yield CounterMetricFamily("aiwatch_writer_commits_total", "Group commits done by the writer.", value=s.commits)
        yield CounterMetricFamily("aiwatch_writer_rows_total", "Rows committed by the writer.", value=s.rows_committed)
        yield CounterMetricFamily("aiwatch_writer_failed_requests_total", "Write requests that failed (a bad "
                                  "request, or the database refused writes).", value=s.failed_requests)
        yield _histogram("aiwatch_writer_commit_seconds", "Duration of a group commit.", s.commit_seconds)
        yield _histogram("aiwatch_writer_batch_rows", "Rows in a group commit.", s.batch_rows)


def _histogram(name: str, help: str, b: Buckets) -> HistogramMetricFamily:
    bounds = (*b.bounds, float("inf"))
    return HistogramMetricFamily(name, help, sum_value=b.total, buckets=[
        (floatToGoString(le), float(n)) for le, n in zip(bounds, b.cumulative())])


class _ReadAtScrape:
    """A custom collector: each entry is read when scraped; one failing reader skips only its metric."""

    def __init__(self) -> None:
        self._entries: list[tuple[str, str, str, Callable]] = []

    def add(self, name: str, help: str, kind: str, read: Callable) -> None:
        self._entries.append((name, help, kind, read))

    def collect(self) -> Iterable[Metric]:
        for name, help, kind, read in self._entries:
            try:
                yield _family(name, help, kind, read())
            except Exception:  # noqa: BLE001 - a failing reader must not break the scrape
                log.debug("metric %s: reader failed", name, exc_info=True)


def _family(name: str, help: str, kind: str, data: Iterable[tuple[dict[str, str], float]]) -> Metric:
    rows = list(data)
    labels = sorted(rows[0][0]) if rows else []
    fam = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(name, help, labels=labels)
    for label_values, value in rows:
        fam.add_metric([str(label_values[k]) for k in labels], float(value))
    return fam
