"""Runs analyzers over windows: incremental from a per-analyzer watermark, or a backfill.

Each run replaces the analyzer's rows for its window and moves its watermark in the same writer
transaction, so a crash never leaves half a window and a rerun gives the same rows. Spans that
arrive late (received after the last run, started within `late_window_s` before the watermark)
pull the next window's start back so their buckets are folded again.

A window whose computation fails on its data (an overflow, a bad value no check foresaw) is split
in halves down to single minutes (hours for the hourly analyzers); one that still fails is
quarantined: recorded as an `analysis_reports` row (kind `quarantine`, with the error) and skipped,
so the watermark moves on and one bad row never holds the analyzer back for good. Failures of the machine (disk, memory,
the writer) are not the data's fault: they quarantine nothing and the next tick retries. Every
failing or quarantining run is counted in `AnalyzerHealth` (read by /metrics and /readyz) and
written as an `analyzer_failures` row, which the built-in rule AiwatchAnalyzerFailing pages on.
"""
from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb

from analysis.base import Analyzer, Window
from analysis.registry import ANALYZERS
from analysis.settings import AnalysisSettings
from core.clock import utcnow
from core.grains import GRAIN_SECONDS, floor_time
from store import analytics
from store.base import Store
from store.writer import Overloaded, WriterBroken, WriterClosed

log = logging.getLogger(__name__)


# Failures of the machine, not of the data: retried next tick, never quarantined.
ENVIRONMENT_ERRORS = (OSError, MemoryError, Overloaded, WriterClosed, WriterBroken, duckdb.IOException,
                      duckdb.OutOfMemoryException, duckdb.FatalException, duckdb.InternalException,
                      duckdb.InterruptException, duckdb.ConnectionException, duckdb.TransactionException)


@dataclass
class AnalyzerHealth:
    """Analyzer failures since start: counts for /metrics; `failing` (name -> error class) for the
    analyzers whose last run failed or quarantined a window, for /readyz."""

    failures: Counter = field(default_factory=Counter)        # runs that raised
    quarantined: Counter = field(default_factory=Counter)     # minutes skipped
    failing: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, name: str, error: BaseException | None, quarantined: int = 0) -> None:
        with self._lock:
            if error is not None:
                self.failures[name] += 1
            self.quarantined[name] += quarantined
            if error is not None or quarantined:
                self.failing[name] = type(error).__name__ if error is not None else "quarantined"
            else:
                self.failing.pop(name, None)


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
    def loads(cls, text: str | None) -> Watermark | None:
        if not text:
            return None
        data = json.loads(text)
        received = data.get("received")
        return cls(datetime.fromisoformat(data["until"]), datetime.fromisoformat(received) if received else None)


def load_watermark(store: Store, analyzer: Analyzer) -> Watermark | None:
    return Watermark.loads(analytics.job_state(store, state_key(analyzer)))


def analyze(store: Store, analyzer: Analyzer, window: Window, watermark: Watermark | None = None,
            wait: bool = True) -> Any:
    """Compute one window and replace its rows (and the watermark, when given) in one transaction.
    Returns the rows written, or with wait=False the writer's future for them."""
    return write(store, analyzer, window, analyzer.run(window), watermark, wait)


def write(store: Store, analyzer: Analyzer, window: Window, result: Any, watermark: Watermark | None = None,
          wait: bool = True) -> Any:
    """Replace the window's rows with `result` (and move the watermark) in one writer transaction."""
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


def run_incremental(store: Store, analyzer: Analyzer, settings: AnalysisSettings, now: datetime | None = None,
                    received: Any = _UNSET, pending: list | None = None,
                    quarantined: list[Window] | None = None) -> list[Window]:
    """Analyze complete minutes since the analyzer's watermark (plus late data); returns the windows run.

    `received`: the spans' max(received_at), when the caller read it once for several analyzers.
    `pending`: when given, the last window's write is queued, not awaited, and its future appended
    (a tick queues every analyzer's write, so they commit together).
    `quarantined`: when given, the minutes skipped because they failed are appended.
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
        before = mark.received if mark else None
        mark_after = Watermark(hi, received if last else before)
        try:
            result = analyzer.run(window)
        except ENVIRONMENT_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - the data made it fail: find the minutes that do
            log.warning("analyzer %s failed on %s..%s (%s: %s); retrying minute by minute",
                        analyzer.name, lo, hi, type(exc).__name__, exc)
            skipped = _settle(store, analyzer, window, before, mark_after, exc)
            if quarantined is not None:
                quarantined.extend(skipped)
        else:   # a failed write is never the data's fault: it propagates, and the next tick retries
            if last and pending is not None:
                pending.append(write(store, analyzer, window, result, mark_after, wait=False))
            else:
                write(store, analyzer, window, result, mark_after)
        windows.append(window)
    return windows


def _settle(store: Store, analyzer: Analyzer, window: Window, received_before: datetime | None,
            mark_after: Watermark | None, error: Exception) -> list[Window]:
    """Run a window that failed half by half; a single minute that fails is quarantined (recorded,
    skipped, the watermark moved past it). Returns the quarantined windows, oldest first.
    `mark_after` None (a backfill behind the watermark): no watermark moves.

    The hourly analyzers compute whole hours whatever the window, so for them the unit is the hour
    (60 one-minute runs of a failing hour would fail alike). A failing minute is tried once more
    narrow, so a bad row elsewhere in its hour does not quarantine it: only the hour buckets it
    would have refreshed are left stale."""
    grain = "1h" if analyzer.name in ANALYZERS and ANALYZERS[analyzer.name].cadence == "hourly" else "1m"
    if floor_time(window.start, grain) >= floor_time(window.end - timedelta(microseconds=1), grain):
        if grain == "1m" and not window.narrow:   # first, without wider refreshes (see Window.narrow)
            narrow = Window(window.start, window.end, window.computed_at, narrow=True)
            try:
                result = analyzer.run(narrow)
            except ENVIRONMENT_ERRORS:
                raise
            except Exception as exc:  # noqa: BLE001 - the window's own data fails: quarantine it
                error = exc
            else:
                write(store, analyzer, narrow, result, mark_after)
                return []
        text = f"{type(error).__name__}: {error}"[:2000]
        log.error("analyzer %s: quarantined %s..%s: %s", analyzer.name, window.start, window.end, text)
        store.writer.write(fn=lambda con: analytics.quarantine_window(
            con, analyzer.name, window.start, window.end, text, window.computed_at,
            state_key(analyzer) if mark_after else None, mark_after.dumps() if mark_after else None))
        return [window]
    mid = floor_time(window.start + (window.end - window.start) / 2, grain)
    mid = mid if mid > window.start else floor_time(window.start, grain) + timedelta(seconds=GRAIN_SECONDS[grain])
    skipped: list[Window] = []
    for lo, hi in ((window.start, mid), (mid, window.end)):
        half = Window(lo, hi, window.computed_at)
        mark = mark_after if hi == window.end or mark_after is None else Watermark(hi, received_before)
        try:
            result = analyzer.run(half)
        except ENVIRONMENT_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - keep splitting
            skipped += _settle(store, analyzer, half, received_before, mark, exc)
        else:
            write(store, analyzer, half, result, mark)
    return skipped


def run_all_incremental(store: Store, analyzers: Iterable[Analyzer], settings: AnalysisSettings,
                        now: datetime | None = None, health: AnalyzerHealth | None = None) -> dict[str, int]:
    """One scheduled tick: every analyzer catches up; one failing analyzer does not stop the others.

    The analyzers' last writes are queued together and awaited at the end, so a tick pays for one
    commit (and one wait of the writer's batching delay) rather than one per analyzer. No analyzer
    reads another's output, so nothing depends on the order of those commits.
    Returns windows run per analyzer (-1: failed; the next tick retries from the same watermark).
    """
    now = now or utcnow()
    done: dict[str, int] = {}
    errors: dict[str, BaseException] = {}
    skipped: dict[str, list[Window]] = {}
    waiting: list[tuple[str, Any]] = []
    try:
        received = analytics.max_received_at(store)
    except Exception as exc:  # noqa: BLE001 - the store cannot be read: every analyzer fails this tick
        received, errors = _UNSET, {a.name: exc for a in analyzers}
    for analyzer in analyzers:
        if analyzer.name in errors:
            continue
        pending: list = []
        skipped[analyzer.name] = []
        try:
            done[analyzer.name] = len(run_incremental(store, analyzer, settings, now, received, pending,
                                                      skipped[analyzer.name]))
            waiting += [(analyzer.name, f) for f in pending]
        except Exception as exc:  # noqa: BLE001 - logged; the next tick retries from the same watermark
            log.exception("analyzer %s failed", analyzer.name)
            errors[analyzer.name] = exc
    for name, future in waiting:
        try:
            future.result(600)
        except Exception as exc:  # noqa: BLE001 - its rows and watermark were rolled back together
            log.exception("analyzer %s failed to write", name)
            errors[name] = exc
    for name in errors:
        done[name] = -1
    counts = {name: int(name in errors) + len(skipped.get(name, ())) for name in {*errors, *skipped}}
    if health is not None:
        for name in counts:
            health.record(name, errors.get(name), len(skipped.get(name, ())))
    failed = {name: n for name, n in counts.items() if n}
    if failed:
        try:   # the rows the built-in alert reads; a broken writer is /readyz's to report
            store.writer.write(fn=lambda con: analytics.record_analyzer_failures(con, floor_time(now, "1m"), failed,
                                                                               now), timeout=30)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not record analyzer failures: %s", exc)
    return done


def backfill(store: Store, analyzers: list[Analyzer], since: datetime, until: datetime, chunk: timedelta,
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
            window = Window(lo, hi, now)
            try:
                result = analyzer.run(window)
            except ENVIRONMENT_ERRORS:
                raise
            except Exception as exc:  # noqa: BLE001 - quarantine what fails, as the scheduled runs do
                log.warning("analyzer %s failed on %s..%s (%s); retrying in parts", analyzer.name, lo, hi, exc)
                _settle(store, analyzer, window, mark.received if mark else None, new_mark, exc)
            else:
                rows += write(store, analyzer, window, result, new_mark)
            if new_mark:
                mark = new_mark
            if progress:
                progress(1)
        return rows

    if workers <= 1 or len(analyzers) <= 1:
        return sum(one(a) for a in analyzers)
    with ThreadPoolExecutor(min(workers, len(analyzers)), thread_name_prefix="analyze") as pool:
        return sum(pool.map(one, analyzers))
