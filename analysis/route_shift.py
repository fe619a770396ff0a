"""Per route and model: where each call's confidence and output tokens fall among the route's own
trailing calls, summed per minute, for the alert rules' rank test (alerts/conditions.py, `rank`).

Each successful call gets its percentile among the successful calls of the route and model in the
trailing `route_baseline_hours` before its hour (the reference): for confidence the lower tail,
u = (#reference <= x + 1) / (m + 1); for output tokens the upper tail, u = (#reference >= x + 1) /
(m + 1). Under "nothing changed" a call is exchangeable with its reference, so u is (super-)uniform
and the sum of u over n calls is at least an Irwin-Hall(n) variable: the rule's p-value is its lower
tail, the Mann-Whitney test of the window against the reference as the reference grows. A few calls
far in the tail are evidence (5 calls at the reference's 5th percentile: p ~ 8e-6) where a mean over
few calls is not, and no distribution shape is assumed. A route is scored once MIN_REFERENCE calls
are behind its reference (a percentile among a few dozen calls is mostly the reference's own noise).

A shift that goes on must not become its own reference: once its calls fill the trailing day,
they rank as usual and the alert stops inside the incident, and when it ends the route's usual
calls rank as rare and alert again (a 4-hour language shift: the mix rule stopped 1.5 hours in,
then fired after it ended). So an hour whose own calls ranked as shifted on a score (mean
percentile <= SHIFT_MEAN and p < SHIFT_P, the drift rules' bar, from the scores already written)
is left out of later hours' references, for as long as 500 calls are left without it; a shift that
fills the reference is the route's new normal. `*_reference_held_hours` says how many hours are out.

A route served by two models or more (a fallback, an A/B split) also gets rows with no model: each
minute's sums over its models, each call still ranked against its own model's reference (a sum of
super-uniform scores of independent calls is as valid as one model's). An incident on the whole
route is then judged on every call it touched, not half of them per model; the rows are written
for the hours in which at least two of the route's models are scored.

Input drift is scored the same way, so it is judged on the calls since it began rather than on a
closed clock hour: input tokens in both tails, and the mix of the categorical drift columns
(`drift_columns` ending `:cat`, e.g. language and topic, taken together). A call's mix score is a
conformal p-value of how typical its combination is: with k reference calls sharing it, u = (#ref
calls whose combination has at most k + 1 calls + 1) / (m + 1), which is super-uniform under
exchangeability like the percentiles above. An unseen combination scores (#ref calls in
combinations seen once + 1) / (m + 1): near 0 on a route whose inputs come in a few common
languages and topics, so inputs moving to new or rarer ones sum low; near 1 for a column of
mostly unique values (an id configured as `:cat`), which therefore cannot page. A shift among
equally common combinations is left to the hourly Evidently report (analysis/drift.py).

Cost (the span's own, else tokens x price) and input tokens are also scored at half their value
(SPIKE_FACTOR), so their rank tests ask whether the calls cost, or send, over twice what the
route's calls do: CostSpike's question, with evidence a few calls can give. A call the size of the
usual then scores near 1, not 0.5, so calls from before an onset weigh heavily in a window: the
rules on these scores use short windows.

The scheduled tick analyzes the last minute or so, but a reference is a day of calls: reading and
sorting it every minute cost ~1.8 s a tick at 1.5M calls a day. The sorted references of the newest
hour are kept between runs, so a tick inside that hour reads only its own minutes. A window that
reaches into another hour (a backfill, late data, the hour rolling over) reads and sorts afresh.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analysis.base import Result, Window
from analysis.rank_test import irwin_hall_lower
from analysis.settings import AnalysisSettings
from store import analytics
from store.base import Store
from store.prices import resolve_prices

MIN_REFERENCE = 500
# An hour whose calls ranked this far in a tail (mean percentile, and p of the sum) is left out of
# later hours' references, so a shift that goes on is judged against the calls from before it
SHIFT_MEAN, SHIFT_P = 0.3, 1e-6
_EMPTY = np.empty(0)
MIX = "mix"     # the joined categorical drift columns of a call
# Cost and input tokens are also ranked at 1/SPIKE_FACTOR of themselves: if the calls cost (or send)
# at most SPIKE_FACTOR times what they did, x / SPIKE_FACTOR is no larger than a reference call,
# its upper-tail percentile stays super-uniform, and the rank test asks "more than doubled?"
SPIKE_FACTOR = 2
# (value column, metric prefix, tails, scale): confidence falls, output tokens rise, input tokens
# either way, the input mix toward rarer combinations; cost and input tokens past SPIKE_FACTOR times
SCORED: tuple[tuple[str, str, tuple[str, ...], float], ...] = (
    ("confidence", "route_conf", ("low",), 1.0), ("output_tokens", "route_out", ("high",), 1.0),
    ("input_tokens", "route_in", ("low", "high"), 1.0), (MIX, "route_mix", ("low",), 1.0),
    ("cost", f"route_cost{SPIKE_FACTOR}x", ("high",), 1 / SPIKE_FACTOR),
    ("input_tokens", f"route_in{SPIKE_FACTOR}x", ("high",), 1 / SPIKE_FACTOR))


class Typicality:
    """A reference of categorical values: how many reference calls share each value, and every
    reference call's share count, sorted (for the conformal typicality score). Values come as codes
    into `names` (one dictionary per run). Within the run a code's count is an array lookup; a
    reference kept for a later run (another dictionary) looks its values up by name."""

    def __init__(self, codes: np.ndarray, names: np.ndarray) -> None:
        self.names = names
        self.by_code = np.bincount(codes, minlength=len(names))
        seen = self.by_code[self.by_code > 0]
        self.sorted = np.sort(np.repeat(seen, seen))
        self._by_name: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.sorted)

    def scores(self, codes: np.ndarray, names: np.ndarray) -> np.ndarray:
        if names is self.names:
            k = self.by_code[codes]
        else:   # only the values present are looked up: a dictionary can hold every value of a day
            if self._by_name is None:
                seen = np.flatnonzero(self.by_code)
                self._by_name = dict(zip(self.names[seen].tolist(), self.by_code[seen].tolist(), strict=True))
            present, inverse = np.unique(codes, return_inverse=True)
            k = np.array([self._by_name.get(n, 0) for n in names[present].tolist()], dtype=np.int64)[inverse]
        return (np.searchsorted(self.sorted, k + 1, side="right") + 1) / (len(self.sorted) + 1)


def tail_scores(reference: np.ndarray, values: np.ndarray, tail: str) -> np.ndarray:
    """Per value, its conservative percentile among the sorted `reference` on `tail`'s side: ties
    count against the value, and the +1s make it super-uniform under exchangeability."""
    m = len(reference)
    if tail == "low":
        at_or_beyond = np.searchsorted(reference, values, side="right")
    else:
        at_or_beyond = m - np.searchsorted(reference, values, side="left")
    return (at_or_beyond + 1) / (m + 1)


Reference = np.ndarray | Typicality


def _scores(reference: Reference, values: np.ndarray, tail: str, names: np.ndarray | None) -> np.ndarray:
    if isinstance(reference, Typicality):
        assert names is not None, "a categorical reference scores codes with their names"
        return reference.scores(values, names)
    return tail_scores(reference, values, tail)


def _column_values(calls: pa.Table, column: str, n_categories: int) -> tuple[np.ndarray, np.ndarray | None] | None:
    """A scored column of the calls as numbers (NaN for none), or the joined categories as codes
    with their names (dictionary-encoded once per run: no per-call strings in numpy)."""
    if column != MIX:
        return calls.column(column).to_numpy(zero_copy_only=False).astype(float), None
    if not n_categories:
        return None
    parts = [pc.fill_null(calls.column(f"cat{i}").cast(pa.string()), "") for i in range(n_categories)]
    joined = pc.binary_join_element_wise(*parts, "\x1f") if n_categories > 1 else parts[0]
    encoded = pc.dictionary_encode(joined).combine_chunks()
    return (encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64),
            np.asarray(encoded.dictionary.to_pylist(), dtype=object))


class RouteShiftAnalyzer:
    name = "route_shift"
    source = "spans"
    owns = tuple(f"{prefix}_{part}" for _, prefix, tails, _ in SCORED
                 for part in ("scored", "reference_calls", "reference_held_hours", *(f"{tail}_score" for tail in tails)))

    def __init__(self, store: Store, settings: AnalysisSettings | None = None) -> None:
        self.store = store
        self.settings = settings or AnalysisSettings()
        self.categories = [c.name for c in self.settings.drift_column_specs if c.kind == "cat"]
        # (hour, baseline hours) -> {route key -> {value column -> (reference, hours held out of it)}}
        self._references: tuple[tuple[datetime, int], dict[tuple, dict[str, tuple[Reference, int]]]] | None = None

    def replaces(self, window: Window) -> list:
        return [("1m", *window.aligned("1m")), ("1h", *window.aligned("1h"))]

    def _stored_hour_sums(self, start: datetime, end: datetime) -> dict[tuple, HourSums]:
        """Per route key and hour, this analyzer's own stored scores in [start, end) summed per
        (prefix, tail): [sum of percentiles, calls]."""
        table = analytics.stored_metric(self.store, list(PARTS), "1m", start, end)
        out: dict[tuple, HourSums] = defaultdict(_hour_sums)
        if not table.num_rows:
            return out
        hour = pc.floor_temporal(table.column("time"), unit="hour")
        table = table.append_column("hour", hour).group_by(["hour", "metric", *analytics.ROUTE_KEYS]).aggregate(
            [("value", "sum")])
        for row in table.to_pylist():
            prefix, part = PARTS[row["metric"]]
            key = tuple(row[c] for c in analytics.ROUTE_KEYS)
            sums = out[key][row["hour"].replace(tzinfo=None)]
            if part == "scored":
                for tail in TAILS[prefix]:
                    sums[(prefix, tail)][1] += row["value_sum"]
            else:
                sums[(prefix, part)][0] += row["value_sum"]
        return out

    def run(self, window: Window) -> Result:
        start, end = window.aligned("1m")
        hours = window.buckets("1h")
        span = timedelta(hours=self.settings.route_baseline_hours)
        cache_key = (hours[-1], self.settings.route_baseline_hours)
        cached = self._references[1] if len(hours) == 1 and self._references and \
            self._references[0] == cache_key else None
        # with the hour's references in hand, only the window's own calls are read
        read_from = start if cached is not None else hours[0] - span
        prices = resolve_prices(analytics.distinct_models(self.store, read_from, end))
        calls = analytics.route_call_values(self.store, read_from, end, self.categories, prices)
        columns = {column: _column_values(calls, column, len(self.categories)) for column, *_ in SCORED}
        times = calls.column("time").to_numpy().astype("datetime64[us]")
        keys = list(zip(*(calls.column(c).to_pylist() for c in analytics.ROUTE_KEYS), strict=True))
        by_key: dict[tuple, list[int]] = defaultdict(list)
        for i, key in enumerate(keys):
            by_key[key].append(i)
        # scores summed per hour, to tell which hours were shifted: stored before the window, this
        # run's own from its start (only needed when references are built)
        hour_sums = self._stored_hour_sums(read_from, start) if cached is None else {}
        rows: list[dict[str, Any]] = []
        newest: dict[tuple, dict[str, tuple[Reference, int]]] = {}

        def add(time: Any, grain: str, metric: str, key: tuple, value: float) -> None:
            rows.append({"time": time, "grain": grain, "metric": metric, "service_name": key[0], "model": key[2],
                         "model_version": None, "route": key[1], "arm": None, "value": float(value),
                         "computed_at": window.computed_at})

        def reference_of(key: tuple, column: str, hour: datetime, t: np.ndarray, values: np.ndarray,
                         names: np.ndarray | None) -> tuple[Reference, int]:
            if cached is not None:
                return cached.get(key, {}).get(column, (_EMPTY, 0))
            h = np.datetime64(hour, "us")
            lo, hi = np.searchsorted(t, [h - np.timedelta64(span), h])
            held = [g for g, sums in hour_sums[key].items() if hour - span <= g < hour and _shifted(sums, column)]
            full = _reference(values[lo:hi], names)
            reference, n_held = full, 0
            if held:
                keep = ~np.isin(t[lo:hi].astype("datetime64[h]"), np.array(held, dtype="datetime64[h]"))
                rest = _reference(values[lo:hi][keep], names)
                # a shift that fills the reference is the route's new normal
                if len(rest) >= MIN_REFERENCE or len(full) < MIN_REFERENCE:
                    reference, n_held = rest, len(held)
            if hour == hours[-1]:
                newest.setdefault(key, {})[column] = (reference, n_held)
            return reference, n_held

        def report(hour: datetime, key: tuple, column: str, reference: Reference, n_held: int) -> None:
            for _, prefix, _, _ in BY_COLUMN[column]:     # 0 too: the hour's row is the current one
                add(hour, "1h", f"{prefix}_reference_calls", key, len(reference))
                add(hour, "1h", f"{prefix}_reference_held_hours", key, n_held)

        # a route served by two models or more is also scored on all its calls (model empty): each
        # call against its own model's reference, the sums over the models, so an incident on the
        # whole route is judged on every call it touched
        models: dict[tuple, set] = defaultdict(set)
        for key in [*by_key, *(cached or {})]:
            models[key[:2]].add(key[2])
        pooled_routes = {route for route, names in models.items() if len(names) > 1}
        # (service, route, metric) -> each model's minutes and values, summed at the end
        pooled: dict[tuple, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
        scoring: dict[tuple, set] = defaultdict(set)         # (service, route, hour, column) -> models

        def pool(key: tuple, minutes: np.ndarray, metric: str, values: np.ndarray) -> None:
            if key[:2] in pooled_routes:
                pooled[(*key[:2], metric)].append((minutes, values))

        # every route with a reference reports its size each run (the hour's row is replaced)
        for key in (cached or {}).keys() - by_key.keys():
            for column, (reference, n_held) in (cached or {})[key].items():
                if len(reference):
                    report(hours[0], key, column, reference, n_held)
                if len(reference) >= MIN_REFERENCE:
                    scoring[(*key[:2], hours[0], column)].add(key[2])
        for key, idx in by_key.items():
            index = np.asarray(idx)
            t = times[index]                              # ascending (the query orders by time)
            key_values = {column: (v[0][index], v[1]) for column, v in columns.items() if v is not None}
            for hour in hours:                            # in order: an hour's shift is known to the next
                h = np.datetime64(hour, "us")
                first, last = np.searchsorted(t, [max(h, np.datetime64(start, "us")),
                                                  min(h + np.timedelta64(1, "h"), np.datetime64(end, "us"))])
                minutes = t[first:last].astype("datetime64[m]")
                for column, (values, names) in key_values.items():
                    scored = BY_COLUMN[column]
                    reference, n_held = reference_of(key, column, hour, t, values, names)
                    if len(reference) == 0:
                        continue
                    report(hour, key, column, reference, n_held)
                    if len(reference) < MIN_REFERENCE:
                        continue
                    scoring[(*key[:2], hour, column)].add(key[2])
                    keep = np.ones(last - first, dtype=bool) if column == MIX else ~np.isnan(values[first:last])
                    if not keep.any():
                        continue
                    buckets, inverse = np.unique(minutes[keep], return_inverse=True)
                    stamps = buckets.astype("datetime64[us]").tolist()
                    counts = np.bincount(inverse)
                    for _, prefix, tails, scale in scored:
                        current = values[first:last][keep] * scale if names is None else values[first:last][keep]
                        for tail in tails:
                            sums = np.bincount(inverse, weights=_scores(reference, current, tail, names))
                            if cached is None:     # the hour's shift, for the later hours' references
                                total = hour_sums[key][hour][(prefix, tail)]
                                total[0] += float(sums.sum())
                                total[1] += float(counts.sum())
                            for stamp, value in zip(stamps, sums, strict=True):
                                add(stamp, "1m", f"{prefix}_{tail}_score", key, value)
                            pool(key, buckets, f"{prefix}_{tail}_score", sums)
                        for stamp, count in zip(stamps, counts, strict=True):
                            add(stamp, "1m", f"{prefix}_scored", key, count)
                        pool(key, buckets, f"{prefix}_scored", counts)
        if cached is None:
            self._references = (cache_key, newest)
        table = analytics.metrics_table(rows)
        if pooled:
            table = pa.concat_tables([table, _pooled_rows(pooled, scoring, window.computed_at)])
        return Result(table)


# per hour, (prefix, tail) -> [sum of the calls' percentiles, calls]
HourSums = dict[datetime, dict[tuple[str, str], list[float]]]


def _hour_sums() -> HourSums:
    return defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))


# each reference column with the scores ranked against it, and each score's tails
BY_COLUMN = {column: [entry for entry in SCORED if entry[0] == column] for column, *_ in SCORED}
TAILS = {prefix: tails for _, prefix, tails, _ in SCORED}
# each per-minute metric: its score prefix and part ("scored" or a tail), and the reference column
PARTS = {f"{prefix}_scored": (prefix, "scored") for _, prefix, _, _ in SCORED} | \
    {f"{prefix}_{tail}_score": (prefix, tail) for _, prefix, tails, _ in SCORED for tail in tails}
COLUMN_OF = {metric: next(c for c, p, _, _ in SCORED if p == prefix) for metric, (prefix, _) in PARTS.items()}


def _shifted(sums: dict[tuple[str, str], list[float]], column: str) -> bool:
    """Whether an hour's calls ranked as shifted on any score against `column`'s reference: a mean
    percentile of SHIFT_MEAN or less at p < SHIFT_P (the drift rules' bar for 30 minutes)."""
    for _, prefix, tails, _ in BY_COLUMN[column]:
        for tail in tails:
            s, n = sums.get((prefix, tail), (0.0, 0.0))
            if n and s / n <= SHIFT_MEAN and irwin_hall_lower(s, int(round(n))) < SHIFT_P:
                return True
    return False


def _pooled_rows(pooled: dict[tuple, list[tuple[np.ndarray, np.ndarray]]], scoring: dict[tuple, set],
                 computed_at: datetime) -> pa.Table:
    """The rows with no model of the routes served by two models or more: per (service, route,
    metric) the minutes' sums over the models, in the hours at least two of them are scored in
    (columnar: on a busy deployment these are a third of the analyzer's rows)."""
    hours: dict[tuple, list[datetime]] = defaultdict(list)      # (service, route, column) -> hours
    for (service, route, hour, column), models in scoring.items():
        if len(models) > 1:
            hours[(service, route, column)].append(hour)
    columns: dict[str, list] = defaultdict(list)
    for (service, route, metric), parts in pooled.items():
        minutes, inverse = np.unique(np.concatenate([m for m, _ in parts]), return_inverse=True)
        sums = np.bincount(inverse, weights=np.concatenate([v for _, v in parts]).astype(float))
        keep = np.isin(minutes.astype("datetime64[h]"),
                       np.array(hours[(service, route, COLUMN_OF[metric])], dtype="datetime64[h]"))
        n = int(keep.sum())
        columns["time"].append(pa.array(minutes[keep].astype("datetime64[us]")))
        columns["value"].append(pa.array(sums[keep]))
        for name, value in (("metric", metric), ("service_name", service), ("route", route)):
            columns[name].append(pa.array([value] * n, pa.string()))
    n = sum(len(t) for t in columns["time"])
    data = {name: pa.concat_arrays(parts) for name, parts in columns.items()} | \
        {"grain": pa.array(["1m"] * n, pa.string()), "computed_at": pa.array([computed_at] * n, pa.timestamp("us"))}
    return pa.table({f.name: data[f.name] if f.name in data else pa.nulls(n, f.type)
                     for f in analytics.METRICS_SCHEMA}, schema=analytics.METRICS_SCHEMA)


def _reference(values: np.ndarray, names: np.ndarray | None) -> Reference:
    if names is not None:    # the categorical mix
        return Typicality(values, names)
    return np.sort(values[~np.isnan(values)])
