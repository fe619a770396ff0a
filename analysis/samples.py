"""Grouped samples for the hourly analyzers: many groups (route x hour, version x hour, ...) of
sampled values in flat arrays, so statistics run per group in vectorised passes.

Read through store.analytics.sample_groups: numeric columns come back finite and sorted within
each group, categorical ones as integer codes into a per-column list of categories.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Column:
    kind: str                        # num | cat
    values: np.ndarray               # num: float64 sorted within each group; cat: int codes
    sizes: np.ndarray                # non-missing values per group
    # cat: code -> category (object array); empty for a numeric column
    categories: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)

    def group(self, i: int) -> np.ndarray:
        """Values of group i (categories as their names)."""
        lo = int(self.sizes[:i].sum())
        part = self.values[lo:lo + int(self.sizes[i])]
        return self.categories[part] if self.kind == "cat" else part

    def slice(self, lo: int, hi: int) -> Column:
        """Groups [lo, hi)."""
        a, b = int(self.sizes[:lo].sum()), int(self.sizes[:hi].sum())
        return Column(self.kind, self.values[a:b], self.sizes[lo:hi], self.categories)


@dataclass(frozen=True)
class GroupedSample:
    keys: list[tuple]                # per group, the key values (in the query's key order)
    rows: np.ndarray                 # sampled calls per group
    columns: dict[str, Column]

    @classmethod
    def from_tables(cls, groups: pa.Table, values: pa.Table, keys: tuple[str, ...],
                    kinds: dict[str, str]) -> GroupedSample:
        n = groups.num_rows
        key_values = list(zip(*(groups.column(k).to_pylist() for k in keys))) if n else []
        gid = values.column("gid").to_numpy(zero_copy_only=False).astype(np.int64) if values.num_rows else \
            np.zeros(0, np.int64)
        columns = {}
        for name, kind in kinds.items():
            col = values.column(name)
            valid = pc.is_valid(col).to_numpy(zero_copy_only=False) if values.num_rows else np.zeros(0, bool)
            if kind == "num":
                v = col.to_numpy(zero_copy_only=False).astype(float)
                valid &= np.isfinite(np.where(valid, v, 0.0))
                v, g = v[valid], gid[valid]
                sizes = np.bincount(g, minlength=n)
                starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
                for s, m in zip(starts, sizes):      # rows come ordered by group: sort each group
                    if m > 1:
                        v[s:s + m].sort()
                columns[name] = Column("num", v, sizes)
            else:
                enc = pc.dictionary_encode(col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col)
                codes = enc.indices.to_numpy(zero_copy_only=False)
                codes = np.where(valid, np.nan_to_num(codes.astype(float), nan=0), 0).astype(np.int64)[valid]
                sizes = np.bincount(gid[valid], minlength=n)
                columns[name] = Column("cat", codes, sizes, np.array(enc.dictionary.to_pylist(), dtype=object))
        return cls(key_values, np.bincount(gid, minlength=n), columns)


class ReferenceCache:
    """The last few reference samples an analyzer read, by (period, what was sampled).

    A window's reference period ends at the start of its day (or is pinned), so the scheduled
    5-minute runs of a day compare against the same period: reading it once instead of every run
    saves a scan of `baseline_days` of spans. A period that ended less than `settle` ago is not
    cached (late spans may still land in it); a backfill walks through days and simply misses.
    """

    def __init__(self, size: int = 2, settle: timedelta = timedelta(hours=1)) -> None:
        self.size, self.settle = size, settle
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, period: tuple[datetime, datetime], key: Hashable, now: datetime, load: Callable[[], Any]) -> Any:
        full_key = (period, key)
        if full_key in self._items:
            self._items.move_to_end(full_key)
            return self._items[full_key]
        value = load()
        if period[1] <= now - self.settle:
            self._items[full_key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value
