"""analysis_metrics held in memory, indexed by series and time, answering the alert reads of
store/alerting.py without SQL: what a backtest replays minute by minute.

A DuckDB query costs milliseconds of planning whatever it reads; a replay asks five of them every
simulated minute, so a day took minutes. Here each read is a bisect per series. The answers follow
the SQL in store/alerting.py row for row (same visibility and staleness rules, newest computation
per bucket); tests/alerts/test_replay_index.py checks both against each other and a backtest's
firings against live evaluation over the store.
"""
from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

SERIES = ("service_name", "model", "model_version", "route", "arm")
MINUTE = timedelta(minutes=1)
_FIRST = datetime.min   # sorts a NULL computed_at first (DuckDB: DESC NULLS LAST)

Series = tuple[Any, ...]
Row = tuple[datetime, datetime | None, float | None]    # time, computed_at, value


def _visible_s(metric: str, grain: str) -> int:
    return 60 if metric.startswith("burn_rate") else 3600 if grain == "1h" else 60


def _stale_s(metric: str, grain: str) -> int:
    return 300 if metric.startswith("burn_rate") else 7200 if grain == "1h" else 300


class Rows(list):
    """A list of row dicts read like the pyarrow tables the SQL path returns."""

    def to_pylist(self) -> list[dict[str, Any]]:
        return self

    def column(self, name: str) -> Rows:
        return Rows(r[name] for r in self)


class AnalysisIndex:
    has_analysis = True

    def __init__(self, rows: pa.Table) -> None:
        cols = {c: rows.column(c).to_pylist() for c in ("metric", "grain", *SERIES, "time", "computed_at", "value")}
        index: dict[tuple[str, str], dict[Series, list[Row]]] = {}
        for i, (metric, grain, t) in enumerate(zip(cols["metric"], cols["grain"], cols["time"])):
            if t is None:
                continue
            series = tuple(cols[c][i] for c in SERIES)
            index.setdefault((metric, grain), {}).setdefault(series, []).append((t, cols["computed_at"][i], cols["value"][i]))
        self._rows: dict[tuple[str, str], dict[Series, tuple[list[datetime], list[Row]]]] = {}
        for key, per in index.items():
            self._rows[key] = {}
            for series, points in per.items():
                points.sort(key=lambda r: (r[0], r[1] or _FIRST))
                self._rows[key][series] = ([r[0] for r in points], points)

    def _range(self, key: tuple[str, str], lo: datetime, hi: datetime, lo_open: bool
               ) -> Iterable[tuple[Series, list[Row]]]:
        """Per series, its rows with lo < time <= hi (lo <= time with not lo_open), time order."""
        for series, (times, points) in self._rows.get(key, {}).items():
            a = bisect_right(times, lo) if lo_open else bisect_left(times, lo)
            b = bisect_right(times, hi)
            if a < b:
                yield series, points[a:b]

    @staticmethod
    def _newest(points: list[Row]) -> dict[datetime, float | None]:
        """One value per bucket: the newest computation's (rows sorted by computed_at, NULL first)."""
        return {t: v for t, _, v in points}

    def latest_values(self, now: datetime, keys: Sequence[str]) -> Rows:
        out = Rows()
        for k in keys:
            metric, grain = k.rsplit("|", 1)
            hourly = grain == "1h" and not metric.startswith("burn_rate")
            horizon = min(7200 if hourly else 360, _stale_s(metric, grain))
            visible = timedelta(seconds=_visible_s(metric, grain))
            for series, points in self._range((metric, grain), now - timedelta(seconds=horizon), now, True):
                for t, computed, value in reversed(points):
                    if t + visible <= now or (computed is not None and computed <= now):
                        out.append({"metric": metric, "grain": grain, **dict(zip(SERIES, series)),
                                    "value": value, "time": t})
                        break
        return out

    def minute_points(self, now: datetime, windows: dict[str, float]) -> dict[tuple[str, Series], dict[datetime, Any]]:
        out = {}
        for metric, over_s in windows.items():
            for series, points in self._range((metric, "1m"), now - timedelta(seconds=over_s) - MINUTE,
                                              now - MINUTE, True):
                out[(metric, series)] = self._newest(points)
        return out

    def baseline_means(self, now: datetime, metric: str, grain: str, window_s: float) -> Rows:
        hi = min(now, now - timedelta(seconds=2 * _visible_s(metric, grain)))
        out = Rows()
        for series, points in self._range((metric, grain), now - timedelta(seconds=window_s), hi, False):
            values = self._newest(points)
            known = [v for v in values.values() if v is not None]
            out.append({**dict(zip(SERIES, series)), "baseline": math.fsum(known) / len(known) if known else None,
                        "n": len(values)})
        return out

    def trailing_sums(self, now: datetime, metrics: Sequence[str], window_s: float, exclude_s: float) -> Rows:
        out = Rows()
        lo, hi = now - timedelta(seconds=window_s + exclude_s), now - timedelta(seconds=exclude_s)
        for metric in metrics:
            for series, points in self._range((metric, "1m"), lo, hi, False):
                values = self._newest(points)
                known = [v for v in values.values() if v is not None]
                out.append({"metric": metric, **dict(zip(SERIES, series)), "total": math.fsum(known) if known else None,
                            "first": min(values)})
        return out

    def traffic_last_seen(self, now: datetime, had_traffic_s: float) -> Rows:
        # Like the SQL: every stored row counts (no newest-computation filter), liveness from any series.
        lo, hi = now - timedelta(seconds=had_traffic_s) - MINUTE, now - MINUTE
        ranges = list(self._range(("requests", "1m"), lo, hi, True))
        alive = any(points[-1][0] > now - timedelta(minutes=6) for _, points in ranges) or any(
            c is not None and c > now - timedelta(minutes=5) for _, points in ranges for _, c, _ in points)
        out = Rows()
        if not alive:
            return out
        for series, points in ranges:
            if series[0] is None or any(x is not None for x in series[1:]):
                continue
            known = [(t, v) for t, _, v in points if v is not None]
            total = sum(v for _, v in known)
            if known and total > 0:
                out.append({"service_name": series[0], "total": total,
                            "last_seen": max((t for t, v in known if v > 0), default=None)})
        return out
