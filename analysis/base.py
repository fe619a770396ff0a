"""The analyzers' shape: a time `Window` in, a `Result` (tall metric rows + optional reports) out.

Every analyzer reads through store/analytics.py and never writes; the runner (analysis/runner.py)
replaces its rows for the window in one writer call, so reruns are idempotent.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterator, Protocol

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

GRAIN_SECONDS: dict[str, int] = {
    "1m": 60, "5m": 300, "30m": 1800, "1h": 3600, "6h": 21_600, "1d": 86_400, "3d": 259_200,
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def floor_time(t: datetime, grain: str) -> datetime:
    step = GRAIN_SECONDS[grain]
    epoch = datetime(1970, 1, 1)
    return epoch + timedelta(seconds=int((t - epoch).total_seconds() // step) * step)


def ceil_time(t: datetime, grain: str) -> datetime:
    floored = floor_time(t, grain)
    return floored if floored == t else floored + timedelta(seconds=GRAIN_SECONDS[grain])


@dataclass(frozen=True)
class Window:
    """Data time [start, end) to (re)compute, in naive UTC; `computed_at` stamps the output rows."""

    start: datetime
    end: datetime
    computed_at: datetime

    def aligned(self, grain: str) -> tuple[datetime, datetime]:
        """The buckets of `grain` that the window touches, as [first bucket start, last bucket end)."""
        return floor_time(self.start, grain), ceil_time(self.end, grain)

    def buckets(self, grain: str) -> list[datetime]:
        start, end = self.aligned(grain)
        step = timedelta(seconds=GRAIN_SECONDS[grain])
        out = []
        while start < end:
            out.append(start)
            start += step
        return out


@dataclass
class Result:
    metrics: pa.Table                  # analysis_metrics rows (store.analytics.METRICS_SCHEMA)
    reports: pa.Table | None = None    # analysis_reports rows (store.analytics.REPORTS_SCHEMA)


class Analyzer(Protocol):
    """One analysis. `owns` lists the metric names it writes (a trailing ':' is a prefix)."""

    name: str
    source: str                        # spans | feedback | resource_metrics: how late data is found
    owns: tuple[str, ...]

    def replaces(self, window: Window) -> list[tuple[str, datetime, datetime]]:
        """(grain, start, end) ranges whose owned rows this run replaces."""
        ...

    def run(self, window: Window) -> Result: ...


def minute_and_hour_ranges(window: Window) -> list[tuple[str, datetime, datetime]]:
    return [("1m", *window.aligned("1m")), ("1h", *window.aligned("1h"))]


def key_runs(df: pl.DataFrame, keys: list[str]) -> Iterator[tuple[tuple, pl.DataFrame]]:
    """(key values, rows) per distinct key: the frame sorted by the keys (stable), then sliced."""
    if df.height == 0:
        return
    code = np.zeros(df.height, np.int64)
    for k in keys:   # integer codes per key: sorting them is much cheaper than sorting strings
        enc = pc.dictionary_encode(df[k].to_arrow())
        idx = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64) + 1
        code = code * (len(enc.dictionary) + 1) + idx
    order = np.argsort(code, kind="stable")
    if not np.all(order[1:] > order[:-1]):
        df = df[order]
    change = np.zeros(df.height, bool)
    change[0] = True
    for k in keys:
        col = df[k]
        change[1:] |= (col[1:] != col[:-1]).fill_null(True).to_numpy() | \
            (col[1:].is_null() != col[:-1].is_null()).to_numpy()
    starts = np.flatnonzero(change).tolist() + [df.height]
    for lo, hi in zip(starts[:-1], starts[1:]):
        part = df.slice(lo, hi - lo)
        yield tuple(part[k][0] for k in keys), part


def hour_index(hours: pl.Series, buckets: list[datetime]) -> np.ndarray:
    """Index of each row's hour in `buckets` (sorted hour starts that contain every row's hour)."""
    t = hours.cast(pl.Datetime("us")).to_numpy().astype("datetime64[us]")
    return np.searchsorted(np.array(buckets, dtype="datetime64[us]"), t)
