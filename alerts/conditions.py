"""Rule conditions evaluated against the analyzers' `analysis_metrics` at one instant.

`evaluate(db, config, now)` returns the alerts whose condition holds now, keyed by label
fingerprint. It only reads; the state machine (pending / firing / resolved) lives in `engine`.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from alerts.rules import (
    BUCKET_GRAINS,
    LABEL_NAMES,
    OPS,
    SERIES_LABELS,
    AlertsConfig,
    Evidence,
    Rule,
    render,
    window_weight,
)
from analysis.metrics_catalog import ALL_MODELS, page_of, reference_held_metric
from analysis.rank_test import irwin_hall_lower
from core.durations import format_duration
from store import alerting
from store.base import Reader

log = logging.getLogger(__name__)

Series = tuple[Any, ...]   # (service_name, model, model_version, route, arm)


@dataclass(frozen=True)
class Sample:
    rule: Rule
    labels: dict[str, str]
    value: float
    threshold: float
    baseline: float | None = None
    fields: tuple[tuple[str, Any], ...] = ()    # more template fields and annotations (count tests)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)


def fingerprint(labels: dict[str, str]) -> str:
    """Stable identity of an alert: a hash of its sorted label set (Alertmanager's dedup key)."""
    return hashlib.sha256(json.dumps(sorted(labels.items())).encode()).hexdigest()[:16]


def alert_labels(rule: Rule, series: dict[str, Any]) -> dict[str, str]:
    labels = {"alertname": rule.name, "severity": rule.severity}
    for column, name in LABEL_NAMES.items():
        if series.get(column) is not None:
            labels[name] = str(series[column])
    labels.update(dict(rule.labels))
    return labels


def render_annotations(sample: Sample, dashboard_url: str, now: datetime | None = None) -> dict[str, Any]:
    rule, labels = sample.rule, sample.labels
    fields = {**labels, "value": sample.value, "threshold": sample.threshold,
              "baseline": sample.baseline if sample.baseline is not None else float("nan"),
              "metric": rule.condition.metric, "grain": ",".join(rule.condition.grains),
              "for": format_duration(rule.for_), "rule": rule.name, "maturity": "", **dict(sample.fields)}
    query = urlencode({"start": "-6h", **{k: labels[v] for k, v in (("service", "service"), ("model", "model"),
                       ("version", "model_version"), ("route", "route")) if labels.get(v)}})
    page = page_of(rule.condition.metric)
    page = "" if page == "overview" else page     # the overview is the dashboard's root
    out = {"summary": render(rule.summary, fields)[:1000], "description": render(rule.description, fields)[:2000],
           "runbook": rule.runbook, "dashboard": f"{dashboard_url.rstrip('/')}/{page}?{query}",
           "view": f"{dashboard_url.rstrip('/')}/{page}?{query}",
           "metric": rule.condition.metric, "grain": ",".join(rule.condition.grains), "op": rule.condition.op,
           "value": sample.value, "threshold": sample.threshold, "unit": rule.condition.unit,
           "window": format_duration(rule.condition.over) if rule.condition.over else ""}
    if sample.baseline is not None:
        out["baseline"] = sample.baseline
    if labels.get("service") and now is not None:
        # The incident page finds the incident (this service's overlapping alerts) containing `now`;
        # messages link there first (it links on to the metric's page).
        out["dashboard"] = out["incident"] = (f"{dashboard_url.rstrip('/')}/incident?"
                                              + urlencode({"service": labels["service"],
                                                           "at": now.isoformat(timespec="seconds")}))
    out.update(dict(sample.fields))
    return out


def _series(row: dict[str, Any]) -> Series:
    return tuple(row[c] for c in SERIES_LABELS)


BASELINE_TTL_S = 900   # a trailing mean over days moves little in 15 minutes: recompute that often
MATURITY_METRIC = "route_baseline_hours"   # hours of history behind an analyzer's learned rate
_HELD = object()     # first item of the cache keys of rates held for active alerts (no metric name)


def evaluate(db: Reader, config: AlertsConfig, now: datetime, cache: dict | None = None,
             active: dict[str, datetime] | None = None) -> tuple[dict[str, Sample], set[str]]:
    """Alerts whose condition holds at `now` (by fingerprint), and the rules that could not be evaluated.
    `cache` (kept by the caller across ticks) holds the trailing baselines for BASELINE_TTL_S.
    `active`: fingerprint -> when that alert became active (pending or firing). A count test's normal
    rate is then the one it had at that instant, for up to its `baseline_window`: a trailing rate
    takes in the incident's own failures or overrides as it goes on, and the alert resolved while
    the incident still ran (a 12-hour override rise resolved 6 hours in)."""
    if not alerting.analysis_table_exists(db):
        return {}, set()
    active = active or {}
    if cache is not None:      # rates held for alerts that are no longer active
        held = set(active.values())
        for key in [k for k in cache if k[0] is _HELD and k[1] not in held]:
            del cache[key]
    keys: set[str] = set()
    for rule in config.rules:
        c = rule.condition
        if c.absent:
            continue
        if c.evidence and c.evidence.rate:
            keys.update((f"{c.evidence.rate}|1h", f"{MATURITY_METRIC}|1h"))
        if c.evidence and c.evidence.test == "rank" and (held_metric := reference_held_metric(c.evidence.total)):
            keys.add(f"{held_metric}|1h")
        if c.over:
            continue
        keys.update(f"{c.metric}|{g}" for g in c.grains)
        keys.update(f"{a.metric}|{c.grains[0]}" for a in c.also)
        if c.min_requests:
            keys.update(f"requests|{g}" for g in c.grains if g in BUCKET_GRAINS)
    latest = _latest(db, now, sorted(keys)) if keys else {}
    baselines: dict[Any, Any] = {}    # per tick memo: windows; baselines come from `cache`
    baselines["cache"] = cache if cache is not None else {}
    baselines["latest"] = latest
    baselines["active"] = active
    _load_minute_rows(db, config, now, baselines)
    samples: dict[str, Sample] = {}
    failed: set[str] = set()
    for rule in config.rules:
        try:
            for sample in _rule_samples(db, rule, now, latest, baselines):
                samples[sample.fingerprint] = sample
        except Exception:  # noqa: BLE001 - one broken rule must not blind the others
            log.exception("rule %s could not be evaluated", rule.name)
            failed.add(rule.name)
    return samples, failed


def _latest(db: Reader, now: datetime, keys: list[str]) -> dict[tuple[str, str], dict[Series, float]]:
    """(metric, grain) -> series -> the newest value visible at `now`, for each 'metric|grain' key."""
    latest: dict[tuple[str, str], dict[Series, float]] = {}
    for row in alerting.latest_values(db, now, keys).to_pylist():
        latest.setdefault((row["metric"], row["grain"]), {})[_series(row)] = row["value"]
    return latest


def _rule_samples(db: Reader, rule: Rule, now: datetime, latest: dict, baselines: dict) -> list[Sample]:
    c = rule.condition
    out: list[Sample] = []
    if c.absent:
        # Silent for at least `window`, and for long enough that the trailing rate would have sent
        # `min_expected` requests: a 2-per-minute service is not "down" after three empty minutes.
        had_min = c.had_traffic_within.total_seconds() / 60
        for row in alerting.traffic_last_seen(db, now, c.had_traffic_within.total_seconds()).to_pylist():
            rate = row["total"] / had_min
            needed = max(c.window, timedelta(minutes=c.min_expected / rate if rate else had_min))
            silent_for = now - (row["last_seen"] + timedelta(minutes=1))
            series = {"service_name": row["service_name"]}
            if needed <= silent_for < c.had_traffic_within and (
                    c.matches({**series, "arm": None}) or all(k != "service_name" for k, _ in c.match)):
                out.append(Sample(rule, alert_labels(rule, series), 0.0, 0.0))
        return out
    if c.evidence:
        return _evidence_samples(db, rule, now, baselines)
    if c.over:
        return _window_samples(db, rule, now, baselines)
    first = c.grains[0]
    base_map: dict[Series, float] | None = None
    if c.baseline:
        key = (c.metric, first, c.baseline.window.total_seconds())
        cache = baselines["cache"]
        hit = cache.get(key)
        if hit is None or not (hit[0] <= now < hit[0] + timedelta(seconds=BASELINE_TTL_S)):
            hit = cache[key] = (now, {_series(r): r["baseline"] for r in alerting.baseline_means(
                db, now, c.metric, first, c.baseline.window.total_seconds()).to_pylist()})
        base_map = hit[1]
    for series, value in latest.get((c.metric, first), {}).items():
        labels = dict(zip(SERIES_LABELS, series))
        if value is None or not c.matches(labels):
            continue
        if c.min_requests and first in BUCKET_GRAINS:
            if latest.get(("requests", first), {}).get(series, 0) < c.min_requests:
                continue
        bound = _threshold(c, base_map, series)
        if bound is None:
            continue
        threshold, baseline = bound
        if not c.compare(value, threshold):
            continue
        if not all(latest.get((c.metric, g), {}).get(series) is not None
                   and c.compare(latest[(c.metric, g)][series], threshold) for g in c.grains[1:]):
            continue
        if not all(latest.get((a.metric, first), {}).get(series) is not None
                   and OPS[a.op](latest[(a.metric, first)][series], a.threshold) for a in c.also):
            continue
        out.append(Sample(rule, alert_labels(rule, labels), float(value), float(threshold), baseline))
    return out


def _window(db: Reader, now: datetime, metric: str, over_s: float,
            memo: dict) -> dict[Series, tuple[float | None, float]]:
    """metric per series over the window: (value, weight total); counts summed, others weighted
    (None when no bucket had weight)."""
    key = ("window", metric, over_s)
    if key in memo:
        return memo[key]
    rows: dict[tuple[str, Series], dict[datetime, float]] = memo["minute_rows"]
    # No staleness cut: the analyzers write a minute only when it had calls, so a quiet route's
    # newest row is often minutes old while its window still holds every call it had (a staleness
    # rule here skipped a 7-call confidence drop at its deadline). An analyzer that stops pages on
    # its own (AiwatchAnalyzerFailing), and its old rows leave the window as it slides.
    since = now - timedelta(seconds=over_s) - timedelta(minutes=1)
    weight_metric = window_weight(metric)
    out: dict[Series, tuple[float | None, float]] = {}
    for (m, series), points in rows.items():
        if m != metric:
            continue
        points = {t: v for t, v in points.items() if t > since and v is not None}
        if not points:
            continue
        if weight_metric is None:
            out[series] = (sum(points.values()), 0.0)
            continue
        weights = rows.get((weight_metric, series), {})
        pairs = [(v, weights[t]) for t, v in points.items() if weights.get(t) is not None]
        total = sum(w for _, w in pairs)
        out[series] = ((sum(v * w for v, w in pairs) / total) if total else None, total)
    memo[key] = out
    return out


def _load_minute_rows(db: Reader, config: AlertsConfig, now: datetime, memo: dict) -> None:
    """One scan per evaluation for every windowed condition (and their weights and clauses): each
    metric is read over the longest window a rule asks of it, not over the longest of all."""
    longest: dict[str, float] = {}
    for rule in config.rules:
        c = rule.condition
        if not c.over:
            continue
        names = [c.metric, *(a.metric for a in c.also)]
        names += [w for n in names if (w := window_weight(n))]
        if c.min_requests:
            names.append("requests")
        if c.evidence:
            names.append(c.evidence.total)
        for name in names:
            longest[name] = max(longest.get(name, 0.0), c.over.total_seconds())
    memo["minute_rows"] = alerting.minute_points(db, now, longest) if longest else {}


def _window_samples(db: Reader, rule: Rule, now: datetime, memo: dict) -> list[Sample]:
    """The condition over the trailing window of 1m buckets (counts summed, rates request-weighted)."""
    c = rule.condition
    assert c.over is not None, "a windowed condition has `over`"
    over_s = c.over.total_seconds()
    values = _window(db, now, c.metric, over_s, memo)
    requests = _window(db, now, "requests", over_s, memo) if c.min_requests else {}
    base_map = None
    if c.baseline:
        key = (c.metric, "1m", c.baseline.window.total_seconds())
        cache = memo["cache"]
        hit = cache.get(key)
        if hit is None or not (hit[0] <= now < hit[0] + timedelta(seconds=BASELINE_TTL_S)):
            hit = cache[key] = (now, {_series(r): r["baseline"] for r in alerting.baseline_means(
                db, now, c.metric, "1m", c.baseline.window.total_seconds()).to_pylist()})
        base_map = hit[1]
    out = []
    for series, (value, weight) in values.items():
        labels = dict(zip(SERIES_LABELS, series))
        if value is None or not c.matches(labels):
            continue
        bound = _threshold(c, base_map, series)
        if bound is None:
            continue
        threshold, baseline = bound
        if not c.compare(value, threshold):
            continue
        if c.min_requests:
            total = weight if window_weight(c.metric) == "requests" else requests.get(series, (0, 0))[0]
            if (total or 0) < c.min_requests:
                continue
        ok = True
        for a in c.also:
            other = _window(db, now, a.metric, over_s, memo).get(series)
            if other is None or other[0] is None or not OPS[a.op](other[0], a.threshold):
                ok = False
                break
        if ok:
            out.append(Sample(rule, alert_labels(rule, labels), float(value), float(threshold), baseline))
    return out


def _threshold(c: Any, base_map: dict | None, series: tuple) -> tuple[float, float | None] | None:
    """(threshold, baseline) for one series: the fixed threshold, or factor x trailing baseline + delta;
    None when the series has no usable baseline (too new, or below min_baseline)."""
    if base_map is None:
        return c.threshold, None
    baseline = base_map.get(series)
    if baseline is None or baseline < c.baseline.min_baseline:
        return None
    return c.baseline.factor * baseline + c.baseline.delta, baseline


def _evidence_samples(db: Reader, rule: Rule, now: datetime, memo: dict) -> list[Sample]:
    """The count test of `rule.condition.evidence` for every matching series (rules.Evidence)."""
    from scipy.stats import binom, hypergeom

    c = rule.condition
    ev = c.evidence
    assert ev is not None and c.over is not None, "an evidence condition has `evidence` and `over`"
    over_s = c.over.total_seconds()
    bad = _window(db, now, ev.bad, over_s, memo)
    total = _window(db, now, ev.total, over_s, memo)
    if ev.test == "rank":
        return _rank_scan(rule, now, memo) if ev.scan else _rank_samples(rule, bad, total, memo)
    out = []
    for series, (k, _) in bad.items():
        labels = dict(zip(SERIES_LABELS, series))
        n = (total.get(series) or (0.0, 0.0))[0]
        if not c.matches(labels) or not n or k is None or k < max(ev.min_bad, 1):
            continue
        since = memo["active"].get(fingerprint(alert_labels(rule, labels)))
        held = since is not None and since < now and now - since < ev.baseline_window
        normal, hours, bounds, counts = _normal_rates(db, since if held else now, ev, over_s, memo, held)
        rate = normal.get(series)
        k, n = int(round(k)), int(round(n))
        if ev.test == "fisher":
            # the window's k of n against the baseline's x of m, conditioned on the k + x bad calls
            # of both (Fisher's exact test, one-sided): the baseline's own sampling error is in the
            # test, so a day of a quiet route's reviews is used as it is, not a bound above it;
            # the rise must also be material (tolerated: factor x and delta over the baseline rate)
            if series not in counts:
                continue
            x, m = counts[series]
            tolerated = ev.tolerated(x / m)
            p = float(hypergeom.sf(k - 1, m + n, x + k, n)) if k / n > tolerated else 1.0
        else:
            tolerated = ev.tolerated(bounds.get(series) or 0.0)
            p = float(binom.sf(k - 1, n, tolerated)) if k / n > tolerated else 1.0
        if p >= ev.p_value:
            continue
        if ev.recent is not None:      # still going on: the newest part of the window is over the tolerated rate
            k_r, _ = _window(db, now, ev.bad, ev.recent.total_seconds(), memo).get(series) or (None, 0.0)
            n_r, _ = _window(db, now, ev.total, ev.recent.total_seconds(), memo).get(series) or (None, 0.0)
            if not n_r or not k_r or k_r / n_r <= tolerated:
                continue
        history = hours.get(series)
        immature = history is None or history < ev.min_history.total_seconds() / 3600
        if immature and not ev.rate and not ev.floor:
            continue      # a rate learned from minutes, with no floor under it, is no evidence
        maturity = ("; baseline immature: no history yet, floor used" if history is None else
                    f"; baseline immature: {history:.0f} h of history (minimum {format_duration(ev.min_history)})"
                    if immature else "")
        if held:
            maturity += f"; normal as of {since:%Y-%m-%d %H:%M} UTC, when this alert began"
        state = ("none yet, the floor is the tolerance" if history is None else
                 f"{history:.0f} h of history, {format_duration(ev.min_history)} minimum"
                 + (" (immature)" if immature else ""))
        fields = (("bad", k), ("total", n), ("p_value", p), ("history_hours", history), ("maturity", maturity),
                  ("baseline_maturity", f"baseline: {state}"))
        out.append(Sample(rule, alert_labels(rule, labels), k / n, tolerated, rate, fields))
    return out


def _normal_rates(db: Reader, now: datetime, ev: Any, over_s: float, memo: dict, held: bool = False
                  ) -> tuple[dict[Series, float], dict[Series, float], dict[Series, float],
                             dict[Series, tuple[float, float]]]:
    """Per series: the normal rate, the hours of history behind it, the rate the binomial test is
    against, and the learned (bad, total) counts. A rate learned here is an estimate from the
    trailing counts, so the binomial test is against its upper 97.5% bound (Clopper-Pearson): a
    baseline learned from few calls tolerates more (the fisher test uses the counts instead).
    `held`: `now` is an active alert's start, and the rates are those the rule saw then (kept in
    the cache while that alert is active: the past does not change)."""
    from scipy.stats import beta

    cache = memo["cache"]
    if ev.rate:   # read with the other newest values (evaluate)
        if held:
            held_key = (_HELD, now, "rate", ev.rate)
            if held_key not in cache:
                cache[held_key] = _latest(db, now, [f"{ev.rate}|1h", f"{MATURITY_METRIC}|1h"])
            latest = cache[held_key]
        else:
            latest = memo["latest"]
        rated = latest.get((ev.rate, "1h"), {})
        return rated, latest.get((MATURITY_METRIC, "1h"), {}), rated, {}
    learned = ("evidence-learned", ev.bad, ev.total, ev.baseline_window.total_seconds(), over_s)
    key = (_HELD, now, *learned) if held else learned
    hit = cache.get(key)
    if hit is None or not (held or hit[0] <= now < hit[0] + timedelta(seconds=BASELINE_TTL_S)):
        sums: dict[tuple[str, Series], tuple[float, datetime]] = {}
        # the buckets before the test window (_window: starts in (now - over - 1m, now - 1m])
        for row in alerting.trailing_sums(db, now, [ev.bad, ev.total], ev.baseline_window.total_seconds(),
                                          over_s + 60).to_pylist():
            sums[(row["metric"], _series(row))] = (row["total"], row["first"])
        rates, hours, bounds, counts = {}, {}, {}, {}
        for (metric, series), (value, first) in sums.items():
            if metric != ev.total or not value:
                continue
            x = (sums.get((ev.bad, series)) or (0.0, first))[0] or 0.0
            rates[series] = x / value
            counts[series] = (int(round(x)), int(round(value)))
            bounds[series] = float(beta.ppf(0.975, x + 1, value - x)) if x < value else 1.0
            hours[series] = (now - timedelta(seconds=over_s) - first).total_seconds() / 3600   # to the last bucket's end
        hit = cache[key] = (now, (rates, hours, bounds, counts))
    return hit[1]


def _reference_note(ev: Evidence, series: Series, memo: dict) -> str:
    """The `{maturity}` of a rank alert: how many shifted hours the route's reference leaves out
    (analysis/route_shift.py), so on-call knows a long alert still compares with the calls from
    before the shift."""
    metric = reference_held_metric(ev.total)
    held = memo["latest"].get((metric, "1h"), {}).get(series) if metric else None
    if not held:
        return ""
    return f"; the reference leaves out {int(held)} shifted hour{'s' if held != 1 else ''}"


def _rank_samples(rule: Rule, scores: dict, counts: dict, memo: dict) -> list[Sample]:
    """The rank test (rules.Evidence, test rank): the window's calls sit in the tail of the route's
    reference when the sum of their tail percentiles is improbably small for that many calls."""
    c = rule.condition
    ev = c.evidence
    assert ev is not None, "a rank condition has `evidence`"
    out = []
    for series, (s, _) in scores.items():
        labels = dict(zip(SERIES_LABELS, series))
        n = int(round((counts.get(series) or (0.0, 0.0))[0] or 0))
        if not c.matches(labels) or not n or s is None or s / n > ev.max_mean:
            continue
        p = irwin_hall_lower(float(s), n)
        if p >= ev.p_value:
            continue
        fields = (("bad", round(float(s), 3)), ("total", n), ("p_value", p), ("mean_percentile", s / n),
                  ("maturity", _reference_note(ev, series, memo)), ("models", labels.get("model") or ALL_MODELS))
        out.append(Sample(rule, alert_labels(rule, labels), s / n, ev.max_mean, 0.5, fields))
    return out


def _rank_scan(rule: Rule, now: datetime, memo: dict) -> list[Sample]:
    """The rank test with `scan` (rules.Evidence): every window of the newest 1..K minutes at its
    share of p_value (Evidence.window_p_value), so the calls since an onset are tested on their
    own; the alert reports the window with the smallest p-value among those where the test holds."""
    c = rule.condition
    ev = c.evidence
    assert ev is not None and c.over is not None, "a scanned rank condition has `evidence` and `over`"
    k_windows = ev.windows(c.over)
    p_each = {k: ev.window_p_value(c.over, timedelta(minutes=k)) for k in range(1, k_windows + 1)}
    rows: dict[tuple[str, Series], dict[datetime, float]] = memo["minute_rows"]
    earliest = now - c.over - timedelta(minutes=1)     # as _window: buckets starting after it
    out = []
    for (metric, series), points in rows.items():
        labels = dict(zip(SERIES_LABELS, series))
        if metric != ev.bad or not c.matches(labels):
            continue
        counts = rows.get((ev.total, series), {})
        minutes = sorted(((t, float(v), int(round(counts[t]))) for t, v in points.items()
                          if t > earliest and v is not None and counts.get(t)), reverse=True)
        best: tuple[float, float, int, int] | None = None
        s, n, i = 0.0, 0, 0
        for length in range(1, k_windows + 1):
            since = now - timedelta(minutes=length + 1)
            while i < len(minutes) and minutes[i][0] > since:
                s, n, i = s + minutes[i][1], n + minutes[i][2], i + 1
            # every length, even one that adds no minute: its share of p may be larger (the whole
            # window's); (s/n)^n <= p is a cheap lower bound (every call at most the mean) that skips
            # the exact tail when it cannot be small enough, and repeated sums hit irwin_hall_lower's cache
            if not n or s / n > ev.max_mean or (s / n) ** n >= p_each[length]:
                continue
            p = irwin_hall_lower(s, n)
            if p < p_each[length] and (best is None or p < best[0]):
                best = (p, s, n, length)
        if best is None:
            continue
        p, s, n, length = best
        fields = (("bad", round(s, 3)), ("total", n), ("p_value", p), ("mean_percentile", s / n),
                  ("window", format_duration(timedelta(minutes=length))), ("windows", k_windows),
                  ("maturity", _reference_note(ev, series, memo)), ("models", labels.get("model") or ALL_MODELS))
        out.append(Sample(rule, alert_labels(rule, labels), s / n, ev.max_mean, 0.5, fields))
    return out
