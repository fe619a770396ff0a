"""Runs analyzers over windows: incremental from a per-analyzer watermark, or a backfill.

Each run replaces the analyzer's rows for its window and moves its watermark in the same writer
transaction, so a crash never leaves half a window and a rerun gives the same rows. Spans that
arrive late (received after the last run, started within `late_window_s` before the watermark)
pull the next window's start back so their buckets are folded again.
"""
from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from analysis.base import Analyzer, Window, floor_time, utcnow
from analysis.settings import AnalysisSettings
from store import analytics

log = logging.getLogger(__name__)


def state_key(analyzer: Analyzer) -> str:
    return f"analysis.{analyzer.name}"


@dataclass(frozen=True)
class Watermark:
    until: datetime                    # data before this has been analyzed
    received: datetime | None = None   # spans received up to here were seen by that run

    def dumps(self) -> str:
        return json.dumps({"until": self.until.isoformat(),
                           "received": self.received.isoformat() if self.received else None})

    @classmethod
    def loads(cls, text: str | None) -> "Watermark | None":
        if not text:
            return None
        data = json.loads(text)
        received = data.get("received")
        return cls(datetime.fromisoformat(data["until"]), datetime.fromisoformat(received) if received else None)


def load_watermark(store: Any, analyzer: Analyzer) -> Watermark | None:
    return Watermark.loads(analytics.job_state(store, state_key(analyzer)))


def analyze(store: Any, analyzer: Analyzer, window: Window, watermark: Watermark | None = None,
            wait: bool = True) -> Any:
    """Compute one window and replace its rows (and the watermark, when given) in one transaction.
    Returns the rows written, or with wait=False the writer's future for them."""
    result = analyzer.run(window)
    ranges = analyzer.replaces(window)
    job = state_key(analyzer) if watermark else None
    state = watermark.dumps() if watermark else None
    future = store.writer.submit(fn=lambda con: analytics.replace_outputs(
        con, analyzer.name, analyzer.owns, ranges, result.metrics, result.reports, job, state, result.traffic))
    return future.result(600) if wait else future


def _chunks(start: datetime, end: datetime, size: timedelta) -> list[tuple[datetime, datetime]]:
    out = []
    while start < end:
        out.append((start, min(start + size, end)))
        start = out[-1][1]
    return out


_UNSET: Any = object()


def run_incremental(store: Any, analyzer: Analyzer, settings: AnalysisSettings, now: datetime | None = None,
                    received: Any = _UNSET, pending: list | None = None) -> list[Window]:
    """Analyze complete minutes since the analyzer's watermark (plus late data); returns the windows run.

    `received`: the spans' max(received_at), when the caller read it once for several analyzers.
    `pending`: when given, the last window's write is queued, not awaited, and its future appended
    (a tick queues every analyzer's write, so they commit together).
    """
    now = now or utcnow()
    end = floor_time(now, "1m")
    mark = load_watermark(store, analyzer)
    if analyzer.source != "spans":
        received = None
    elif received is _UNSET:
        received = analytics.max_received_at(store)
    if mark is None:
        first = analytics.first_time(store, analyzer.source, end - timedelta(seconds=settings.initial_lookback_s), end)
        if first is None:
            return []
        start = floor_time(first, "1m")
    elif analyzer.source == "spans":
        start = mark.until
        if mark.received is not None:
            late = analytics.late_span_start(store, mark.received, start - timedelta(seconds=settings.late_window_s),
                                             start)
            if late is not None:
                start = floor_time(late, "1m")
    else:
        start = mark.until - timedelta(seconds=settings.grace_s)
    if start >= end:
        return []
    windows = []
    pieces = _chunks(start, end, timedelta(seconds=settings.max_window_s))
    for i, (lo, hi) in enumerate(pieces):
        window = Window(lo, hi, now)
        last = i == len(pieces) - 1
        mark_after = Watermark(hi, received if last else (mark.received if mark else None))
        if last and pending is not None:
            pending.append(analyze(store, analyzer, window, mark_after, wait=False))
        else:
            analyze(store, analyzer, window, mark_after)
        windows.append(window)
    return windows


def run_all_incremental(store: Any, analyzers: Iterable[Analyzer], settings: AnalysisSettings,
                        now: datetime | None = None) -> dict[str, int]:
    """One scheduled tick: every analyzer catches up; one failing analyzer does not stop the others.

    The analyzers' last writes are queued together and awaited at the end, so a tick pays for one
    commit (and one wait of the writer's batching delay) rather than one per analyzer. No analyzer
    reads another's output, so nothing depends on the order of those commits.
    """
    done: dict[str, int] = {}
    received = analytics.max_received_at(store)
    waiting: list[tuple[str, Any]] = []
    for analyzer in analyzers:
        pending: list = []
        try:
            done[analyzer.name] = len(run_incremental(store, analyzer, settings, now, received, pending))
            waiting += [(analyzer.name, f) for f in pending]
        except Exception:  # noqa: BLE001 - logged; the next tick retries from the same watermark
            log.exception("analyzer %s failed", analyzer.name)
            done[analyzer.name] = -1
    for name, future in waiting:
        try:
            future.result(600)
        except Exception:  # noqa: BLE001 - its rows and watermark were rolled back together
            log.exception("analyzer %s failed to write", name)
            done[name] = -1
    return done


def backfill(store: Any, analyzers: list[Analyzer], since: datetime, until: datetime, chunk: timedelta,
             progress: Callable[[int], None] | None = None, now: datetime | None = None, workers: int = 1) -> int:
    """Recompute [since, until) chunk by chunk. A watermark only moves forward, and only when the
    chunk starts at or before it (no gap is skipped); an analyzer without one gets one.

    `workers` > 1 runs that many analyzers at once (each walks its chunks in order). They are
    independent (none reads another's output) and their queries and numpy work release the GIL,
    so on two cores the Python-bound statistical analyzers overlap the SQL-bound ones."""
    now = now or utcnow()
    since, until = floor_time(since, "1m"), floor_time(until, "1m")

    def one(analyzer: Analyzer) -> int:
        rows = 0
        mark = load_watermark(store, analyzer)
        for lo, hi in _chunks(since, until, chunk):
            advance = mark is None or lo <= mark.until < hi
            new_mark = Watermark(hi, mark.received if mark else None) if advance else None
            rows += analyze(store, analyzer, Window(lo, hi, now), new_mark)
            if new_mark:
                mark = new_mark
            if progress:
                progress(1)
        return rows

    if workers <= 1 or len(analyzers) <= 1:
        return sum(one(a) for a in analyzers)
    with ThreadPoolExecutor(min(workers, len(analyzers)), thread_name_prefix="analyze") as pool:
        return sum(pool.map(one, analyzers))
