"""The rules a server evaluates, as its read API gives them (`alert_rules`): one row per rule with
its condition in words and the figures the dashboard draws its lines from. No receiver, URL or key.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyarrow as pa

from alerts.rules import LABEL_NAMES, AlertsConfig, Condition, Rule
from analysis.metrics_catalog import page_of
from core.durations import format_duration

SCHEMA = pa.schema([
    ("name", pa.string()), ("severity", pa.string()), ("metric", pa.string()), ("page", pa.string()),
    ("scope", pa.string()), ("condition", pa.string()), ("for_s", pa.float64()), ("keep_firing_for_s", pa.float64()),
    ("over_s", pa.float64()), ("test", pa.string()), ("bad", pa.string()), ("total", pa.string()),
    ("p_value", pa.float64()), ("max_mean", pa.float64()), ("windows", pa.int64()), ("unit", pa.string()),
    ("summary", pa.string()),
    ("runbook", pa.string()),
])


def _g(x: float) -> str:
    return f"{x:g}"


def _scope(c: Condition) -> str:
    """Which series the rule judges: per route and model, per service, one service, ..."""
    if c.absent:    # judged per service (alerts.conditions): the match only narrows the services
        return "per service"
    per = [LABEL_NAMES.get(k, k) for k, v in c.match if v == "*"]
    fixed = [f"{LABEL_NAMES.get(k, k)}={v}" for k, v in c.match if isinstance(v, str) and v != "*"]
    if per and c.evidence is not None and c.evidence.test == "rank" and "model" not in dict(c.match):
        # route_shift's rows: each model, and a route's models together (analysis/route_shift.py)
        per[-1] += ": each model, and all of a route's models together"
    return ", ".join(([f"per {' x '.join(per)}"] if per else []) + fixed) or "all calls"


def describe(c: Condition) -> str:
    """A condition in words, as on-call reads it next to the alert."""
    ev = c.evidence
    over = format_duration(c.over) if c.over else ""
    if ev is not None and ev.test == "rank":
        if ev.scan:
            k = ev.windows(c.over or timedelta(minutes=1))
            return (f"the calls of any window of the last 1 to {over} rank on average in the route's "
                    f"{ev.max_mean:.0%} tail or further ({ev.bad}), rank test p < {ev.p_value:.0e} shared: "
                    f"/ 2 for the {over}, / {2 * (k - 1)} for each shorter window")
        return (f"the last {over} of calls rank on average in the route's {ev.max_mean:.0%} tail or further "
                f"({ev.bad}), rank test p < {ev.p_value:.0e}")
    if ev is not None:
        normal = ev.rate or f"{ev.bad} / {ev.total} over the {format_duration(ev.baseline_window)} before"
        tolerated = [f"{_g(ev.factor)}x normal"] if ev.factor != 1 else [] if ev.delta else ["normal"]
        tolerated += [f"normal + {ev.delta:.0%}"] if ev.delta else []
        tolerated += [f"{ev.floor:.0%}"] if ev.floor else []
        bound = tolerated[0] if len(tolerated) == 1 else f"max({', '.join(tolerated)})"
        test = "Fisher's exact test" if ev.test == "fisher" else "binomial tail"
        recent = f", the last {format_duration(ev.recent)} also over it" if ev.recent else ""
        return (f"{ev.bad} of {ev.total} over {over}: {test} p < {ev.p_value:.0e} against {bound} "
                f"(normal: {normal}), at least {_g(ev.min_bad)} bad{recent}")
    if c.absent:
        return (f"no {c.metric} for {format_duration(c.window)} after traffic in the last "
                f"{format_duration(c.had_traffic_within)} (at least {_g(c.min_expected)} expected)")
    target = (f"{_g(c.baseline.factor)} x its {format_duration(c.baseline.window)} mean"
              + (f" + {_g(c.baseline.delta)}" if c.baseline.delta else "")) if c.baseline else _g(c.threshold)
    window = f"over {over}" if over else f"over {' and '.join(c.grains)}"
    out = f"{c.metric} {window} {c.op} {target}"
    out += "".join(f", {a.metric} {a.op} {_g(a.threshold)}" for a in c.also)
    return out + (f", at least {_g(c.min_requests)} requests" if c.min_requests else "")


def _seconds(td: timedelta | None) -> float | None:
    return td.total_seconds() if td is not None else None


def row(rule: Rule) -> dict[str, Any]:
    c, ev = rule.condition, rule.condition.evidence
    return {
        "name": rule.name, "severity": rule.severity, "metric": c.metric, "page": page_of(c.metric),
        "scope": _scope(c), "condition": describe(c),
        "for_s": _seconds(rule.for_), "keep_firing_for_s": _seconds(rule.keep_firing_for), "over_s": _seconds(c.over),
        "test": ev.test if ev else None, "bad": ev.bad if ev else None, "total": ev.total if ev else None,
        "p_value": float(ev.p_value) if ev else None, "max_mean": float(ev.max_mean) if ev and ev.test == "rank" else None,
        "windows": ev.windows(c.over) if ev and c.over else None,
        "unit": c.unit,
        "summary": rule.summary, "runbook": rule.runbook,
    }


def rules_table(config: AlertsConfig | None) -> pa.Table:
    """One row per rule of `config` (none when alerting is off), by severity, then in file order."""
    rules = sorted(config.rules, key=lambda r: r.severity) if config else []
    return pa.Table.from_pylist([row(r) for r in rules], schema=SCHEMA)
