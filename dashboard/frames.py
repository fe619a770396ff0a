"""Plain pandas shaping between query results and charts: no Streamlit, no HTTP.

The analyzers' `metrics` query returns a tall table (bucket time, grain, metric, dimensions,
value); these helpers pick, pivot and summarise it, and derive the few figures pages compute from
raw rows (override rates, waterfall layout, month-end projection).
"""
from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

DIMENSIONS = ("service_name", "model", "model_version", "route", "arm")
_TIME_COLUMNS = ("bucket_start", "bucket", "time", "ts", "window_start", "start", "start_time")


def time_column(frame: pd.DataFrame) -> str | None:
    for name in _TIME_COLUMNS:
        if name in frame.columns:
            return name
    for name in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[name]):
            return name
    return None


def tidy_metrics(frame: pd.DataFrame) -> pd.DataFrame:
    """The `metrics` table with its bucket column named `time` and numeric `value`."""
    if frame.empty:
        return pd.DataFrame(columns=["time", "metric", "value", *DIMENSIONS])
    out = frame.copy()
    col = time_column(out)
    if col and col != "time":
        out = out.rename(columns={col: "time"})
    if "time" in out.columns:
        out["time"] = pd.to_datetime(out["time"])
    out["value"] = pd.to_numeric(out.get("value"), errors="coerce")
    for dim in DIMENSIONS:
        if dim not in out.columns:
            out[dim] = None
    return out.sort_values("time") if "time" in out.columns else out


def series(frame: pd.DataFrame, metric: str, by: str | None = None) -> pd.DataFrame:
    """One metric over time, summed over the dimensions other than `by` when rows are additive.

    Rates and percentiles are not additive: when several rows share a bucket they are averaged
    (a readable approximation; the filters narrow to exact rows).
    """
    tidy = tidy_metrics(frame)
    rows = tidy[tidy["metric"] == metric]
    if rows.empty:
        return pd.DataFrame(columns=["time", "value"] + ([by] if by else []))
    keys = ["time"] + ([by] if by else [])
    agg = "sum" if is_additive(metric) else "mean"
    rows = rows.assign(**{by: rows[by].fillna("(none)")}) if by else rows
    return rows.groupby(keys, as_index=False, dropna=False)["value"].agg(agg)


def is_additive(metric: str) -> bool:
    """Counts add up over rows (the catalog says which); `fallback_*` shares are ratios, not counts."""
    from analysis.metrics_catalog import ADDITIVE

    return metric in ADDITIVE


def latest(frame: pd.DataFrame, metric: str) -> float | None:
    s = series(frame, metric)
    return None if s.empty else float(s["value"].iloc[-1])


def latest_by_group(frame: pd.DataFrame, keys: Iterable[str]) -> pd.DataFrame:
    """The newest bucket of each group, one column per metric (wide)."""
    keys = list(keys)
    tidy = tidy_metrics(frame)
    if tidy.empty:
        return pd.DataFrame(columns=keys + ["time"])
    tidy = tidy.assign(**{k: tidy[k].fillna("(not set)") for k in keys})
    newest = tidy.groupby(keys)["time"].transform("max")
    wide = tidy[tidy["time"] == newest].pivot_table(index=keys + ["time"], columns="metric", values="value",
                                                    aggfunc="first")
    return wide.reset_index().rename_axis(columns=None)


def rank_windows(frame: pd.DataFrame, score: str, scored: str, over: timedelta,
                 end: datetime | None = None) -> pd.DataFrame:
    """A rank rule's evidence (alerts/rules.py Evidence, test rank) per service, route and model at
    every minute up to `end`: the calls scored in the `over` trailing 1m buckets and their mean tail
    percentile, exactly what alerts/conditions.py sums when it evaluates at that minute (`time`, the
    window's end). A minute without a row scored no call."""
    keys = ["service_name", "route", "model"]
    cols = [*keys, "time", "calls", "percentile_sum", "mean_percentile"]
    tidy = tidy_metrics(frame)
    tidy = tidy[tidy["metric"].isin([score, scored]) & tidy["value"].notna()]
    if tidy.empty:
        return pd.DataFrame(columns=cols)
    if "computed_at" in tidy.columns:       # a bucket recomputed: its newest computation, as the alerts read
        tidy = tidy.sort_values("computed_at", kind="stable")
    tidy = tidy.drop_duplicates([*keys, "time", "metric"], keep="last")
    steps = max(int(over / timedelta(minutes=1)), 1)
    out = []
    for key, part in tidy.groupby(keys, dropna=False):
        wide = part.pivot_table(index="time", columns="metric", values="value", aggfunc="first")
        last = max(wide.index.max(), pd.Timestamp(end) - timedelta(minutes=1)) if end else wide.index.max()
        grid = pd.date_range(wide.index.min(), last, freq="1min")
        wide = wide.reindex(columns=[score, scored]).reindex(grid).fillna(0.0)
        sums = wide.rolling(steps, min_periods=1).sum()
        sums = sums[sums[scored].round() > 0]
        out.append(pd.DataFrame({**dict(zip(keys, key)), "time": sums.index + timedelta(minutes=1),
                                 "calls": sums[scored].round().to_numpy(), "percentile_sum": sums[score].to_numpy()}))
    windows = pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=cols)
    return windows.assign(mean_percentile=windows["percentile_sum"] / windows["calls"])[cols]


def rank_verdicts(windows: pd.DataFrame, p_value: float, max_mean: float) -> pd.DataFrame:
    """The rank test on each window (the Irwin-Hall lower tail of the percentile sum, alerts'
    `irwin_hall_lower`) and whether the rule's condition holds (mean within `max_mean`, p under
    `p_value`). One scipy call a window: for the few windows a table shows, not a whole chart."""
    from analysis.rank_test import irwin_hall_lower

    p = [irwin_hall_lower(float(s), int(n)) for s, n in zip(windows["percentile_sum"], windows["calls"])]
    return windows.assign(p=p, holds=(windows["mean_percentile"] <= max_mean) & (pd.Series(p, index=windows.index,
                                                                                          dtype=float) < p_value))


def rank_scan(frame: pd.DataFrame, score: str, scored: str, over: timedelta, windows: int,
              p_of: Callable[[timedelta], float], max_mean: float, end: datetime | None = None) -> pd.DataFrame:
    """A rank rule's verdict per service, route and model at its newest minute, as alerts/conditions.py
    evaluates it: with `windows` > 1 (evidence `scan`) each window of the newest 1..windows minutes
    at its p-value (`p_of(length)`, the rule's share for it), the one with the smallest p-value
    where the test holds, else the whole `over`; with one window, the `over` window. `window` is
    the length tested."""
    keys = ["service_name", "route", "model"]
    full = rank_windows(frame, score, scored, over, end)
    newest = full.sort_values("time", kind="stable").groupby(keys, dropna=False).tail(1)
    lengths = [timedelta(minutes=k) for k in range(1, windows + 1)] if windows > 1 else [over]
    tried = []
    for length in lengths:
        part = newest[keys + ["time"]].merge(full if length == over else rank_windows(frame, score, scored, length, end),
                                             on=keys + ["time"])
        tried.append(rank_verdicts(part, p_of(length), max_mean).assign(window=length))
    verdicts = pd.concat(tried, ignore_index=True)
    # per route: the holding window with the smallest p, else the whole window
    verdicts = verdicts.assign(rank=verdicts["p"].where(verdicts["holds"], np.inf),
                               whole=verdicts["window"] == over)
    verdicts = verdicts.sort_values(["rank", "whole"], ascending=[True, False], kind="stable")
    return verdicts.groupby(keys, dropna=False).head(1).drop(columns=["rank", "whole"]).reset_index(drop=True)


ROUTE_BASELINES = ("route_slow_threshold_ms", "route_error_baseline", "route_baseline_hours", "route_baseline_ok_calls")


def route_baselines(frame: pd.DataFrame, min_hours: float, min_ok_calls: float) -> pd.DataFrame:
    """The newest hourly baselines per service, route and model with their maturity in words: hours
    of history against the alerts' minimum, successful calls against what a learned p99 needs."""
    wide = latest_by_group(frame, ("service_name", "route", "model"))
    for m in ROUTE_BASELINES:
        if m not in wide.columns:
            wide[m] = np.nan

    def line(r: pd.Series) -> str:
        hours, ok = r["route_baseline_hours"], r["route_baseline_ok_calls"]
        text = (f"baseline: {hours:.0f} h of history, {min_hours:g} h minimum"
                + (" (immature)" if hours < min_hours else "")) if pd.notna(hours) else "baseline: none yet"
        if pd.isna(r["route_slow_threshold_ms"]):
            text += (f"; slow-call threshold learning: {ok:.0f} of {min_ok_calls:.0f} successful calls"
                     if pd.notna(ok) else "; no slow-call threshold yet")
        return text
    return wide.assign(baseline=wide.apply(line, axis=1) if len(wide) else pd.Series(dtype=str))


def totals(calls: pd.DataFrame) -> dict[str, Any]:
    """Headline figures from one row of the `calls` query (no grouping): every figure is computed
    by the server over the raw calls, so nothing here averages group statistics."""
    zero: dict[str, Any] = {"requests": 0.0, "errors": 0.0, "ok_calls": 0.0, "error_rate": float("nan"), "p50_ms": float("nan"),
            "p95_ms": float("nan"), "p99_ms": float("nan"), "cost_usd": float("nan"), "input_tokens": 0.0,
            "output_tokens": 0.0, "unpriced_calls": 0.0, "unpriced_models": ""}
    if calls.empty:
        return zero
    if len(calls) != 1 or "service_name" in calls.columns or "model" in calls.columns:
        raise ValueError("totals() takes the ungrouped `calls` query (by=none)")
    row = calls.iloc[0]
    out: dict[str, Any] = {k: (float(row[k]) if k in row and pd.notna(row[k]) else v) for k, v in zero.items()
           if k != "unpriced_models"}
    out["error_rate"] = out["errors"] / out["requests"] if out["requests"] else float("nan")
    out["unpriced_models"] = str(row.get("unpriced_models") or "")
    return out


def changes(current: pd.DataFrame, previous: pd.DataFrame, keys: Iterable[str] = ("service_name", "model"),
            measures: Iterable[str] = ("requests", "error_rate", "p95_ms", "cost_usd")) -> pd.DataFrame:
    """Side by side: this window against the one before, with the relative change per measure.

    Both frames must already be grouped by exactly `keys` (the `calls` query with the matching
    `by`): rates are recomputed as errors / requests and percentiles are the server's exact ones
    for the group, never averaged over finer groups.
    """
    keys, measures = list(keys), list(measures)
    empty = pd.DataFrame(columns=keys + [f"{m}{s}" for m in measures for s in ("", "_before", "_change")])
    if current.empty and previous.empty:
        return empty

    def prep(df: pd.DataFrame) -> pd.DataFrame:
        if df.empty:
            return pd.DataFrame(columns=keys + measures + ["errors"])
        if df.duplicated(keys).any():
            raise ValueError(f"changes() needs one row per {keys}; group on the server")
        df = df.assign(**{k: df[k].fillna("(not set)") for k in keys})
        if "errors" in df.columns and "requests" in df.columns:
            df = df.assign(error_rate=df["errors"].astype(float) / df["requests"].astype(float))
        return df[[c for c in keys + measures + ["errors"] if c in df.columns]]

    merged = prep(current).merge(prep(previous), on=keys, how="outer", suffixes=("", "_before"))
    for m in measures:
        if m not in merged.columns:
            merged[m] = np.nan
        if f"{m}_before" not in merged.columns:
            merged[f"{m}_before"] = np.nan
        now, before = pd.to_numeric(merged[m], errors="coerce"), pd.to_numeric(merged[f"{m}_before"], errors="coerce")
        merged[f"{m}_change"] = np.where(before.fillna(0) != 0, (now - before) / before.abs(), np.nan)
    return merged.sort_values(measures[0], ascending=False, na_position="last").reset_index(drop=True)


def budget(availability: float | None, objective: float) -> tuple[float | None, str, str]:
    """(remaining share, text, colour) of the error budget for an availability against an objective.

    Remaining is 1 - bad share / allowed bad share; below zero the budget is exhausted and the text
    says by how much it is overspent ("exhausted (15.8x over)") instead of a negative percentage.
    """
    if availability is None or pd.isna(availability) or objective >= 1:
        return None, "\u2013", "grey"
    spent = (1 - availability) / (1 - objective)
    remaining = 1 - spent
    if remaining < 0:
        return remaining, f"exhausted ({spent:.1f}x over)", "red"
    return remaining, f"{remaining:.1%} left", "green" if remaining >= 0.5 else "orange" if remaining >= 0.2 else "red"


def month_end_projection(month_to_date: float, window_cost: float, window_start: datetime,
                         window_end: datetime) -> float:
    """This month's cost: spent so far (`month_to_date`, month start to `window_end`) plus the rest of
    the month at the spend rate of the selected window (`window_cost` over its length)."""
    seconds = (window_end - window_start).total_seconds()
    days = calendar.monthrange(window_end.year, window_end.month)[1]
    month_end = window_end.replace(day=1, hour=0, minute=0, second=0, microsecond=0) + timedelta(days=days)
    if seconds <= 0:
        return float("nan")
    return month_to_date + window_cost / seconds * (month_end - window_end).total_seconds()


def override_rates(feedback: pd.DataFrame, by: Iterable[str] = ("route", "model")) -> pd.DataFrame:
    """(modified + rejected) / reviewed from raw feedback events, per group."""
    by = list(by)
    cols = by + ["reviewed", "modified", "rejected", "override_rate"]
    if feedback.empty:
        return pd.DataFrame(columns=cols)
    fb = feedback.assign(**{k: feedback[k].fillna("(none)") for k in by})
    out = fb.groupby(by).agg(reviewed=("action", "size"),
                             modified=("action", lambda a: int((a == "modified").sum())),
                             rejected=("action", lambda a: int((a == "rejected").sum()))).reset_index()
    out["override_rate"] = (out["modified"] + out["rejected"]) / out["reviewed"]
    return out.sort_values("override_rate", ascending=False).reset_index(drop=True)[cols]


def override_reasons(feedback: pd.DataFrame) -> pd.DataFrame:
    if feedback.empty:
        return pd.DataFrame(columns=["reason", "action", "count"])
    over = feedback[feedback["action"].isin(["modified", "rejected"])]
    if over.empty:
        return pd.DataFrame(columns=["reason", "action", "count"])
    return (over.assign(reason=over["reason"].fillna("(no reason given)"))
            .groupby(["reason", "action"]).size().rename("count").reset_index()
            .sort_values("count", ascending=False).reset_index(drop=True))


def waterfall_layout(spans: pd.DataFrame) -> pd.DataFrame:
    """Spans of one trace with their depth in the tree and offset from the trace start (ms)."""
    if spans.empty:
        return spans.assign(depth=[], offset_ms=[], label=[])
    spans = spans.sort_values(["start_time", "span_id"]).reset_index(drop=True)
    parents = dict(zip(spans["span_id"], spans["parent_span_id"]))
    depth_of: dict[str, int] = {}

    def depth(span_id: str, seen: int = 0) -> int:
        if span_id in depth_of:
            return depth_of[span_id]
        parent = parents.get(span_id)
        d = 0 if parent is None or parent not in parents or seen > 64 else depth(parent, seen + 1) + 1
        depth_of[span_id] = d
        return d

    start0 = pd.to_datetime(spans["start_time"]).min()
    out = spans.copy()
    out["depth"] = [depth(s) for s in out["span_id"]]
    out["offset_ms"] = (pd.to_datetime(out["start_time"]) - start0).dt.total_seconds() * 1000
    out["label"] = ["\u2003" * d + str(n) for d, n in zip(out["depth"], out["name"])]
    return out


_SPAN_FIELDS = ("kind", "status_code", "status_message", "http_status", "error_type", "service_name",
                "service_version", "operation", "provider", "request_model", "response_model", "model_version",
                "route", "arm", "request_id", "response_id", "finish_reasons", "input_tokens", "output_tokens",
                "cache_read_tokens", "reasoning_tokens", "cost_usd", "retry_count", "fallback_level",
                "breaker_state", "confidence", "quality_score", "format_ok", "injection_score", "user_id", "tenant")


def span_details(layout: pd.DataFrame) -> pd.DataFrame:
    """Spans of a trace with what an on-call reads first: role (the call, attempt N, or other),
    status, HTTP status, error type and status message."""
    if layout.empty:
        return layout.assign(span=[], role=[], status=[])
    attempts = [parse_json(a).get("aiwatch.attempt") for a in layout.get("attributes", [None] * len(layout))]

    def role(row: dict, attempt: object) -> str:
        if attempt is not None:
            return f"attempt {attempt}"
        if row.get("is_llm") or row.get("request_model") or row.get("operation"):
            return "model call"
        return str(row.get("kind") or "span").lower()

    recs = layout.to_dict("records")
    return layout.assign(span=layout["label"] if "label" in layout else layout["name"],
                         role=[role(r, a) for r, a in zip(recs, attempts)],
                         status=layout["status_code"].fillna("unset"),
                         http_status=layout["http_status"].astype("Int64") if "http_status" in layout else None)


def attribute_rows(span: dict) -> pd.DataFrame:
    """One span's typed fields and stored attributes as (attribute, value) rows, empty ones left out."""
    rows = [(k, span.get(k)) for k in _SPAN_FIELDS]
    rows += sorted(parse_json(span.get("attributes")).items())
    return pd.DataFrame([(k, str(v)) for k, v in rows if _present(v)], columns=["attribute", "value"])


def _present(value: object) -> bool:
    if value is None or (isinstance(value, str) and not value):
        return False
    try:
        return not bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and arrays
        return True


def counts_by(frame: pd.DataFrame, column: str, label: str = "count") -> pd.DataFrame:
    if frame.empty or column not in frame.columns:
        return pd.DataFrame(columns=[column, label])
    return (frame[column].fillna("(none)").astype(str).value_counts()
            .rename_axis(column).rename(label).reset_index())


def binned_shares(windows: dict[str, pd.DataFrame], bin_col: str = "bin_start") -> pd.DataFrame:
    """Server-binned counts of several windows as shares of each window, for overlaid bars."""
    parts = []
    for label, frame in windows.items():
        if frame.empty or bin_col not in frame.columns:
            continue
        total = frame["count"].sum()
        parts.append(pd.DataFrame({"start": frame[bin_col].astype(float), "window": label,
                                   "share": frame["count"] / total if total else 0.0}))
    if not parts:
        return pd.DataFrame(columns=["bin", "window", "share"])
    # ordered by the bin's value, not its label, whichever window has which bins
    out = pd.concat(parts, ignore_index=True).sort_values(["start", "window"], kind="stable")
    return out.assign(bin=out["start"].map(lambda v: f"{v:.2f}")).drop(columns="start").reset_index(drop=True)


def label_text(value: object) -> str:
    """An alert's labels as on-call reads them (`service=a, route=b`), without the alertname and
    severity that have their own columns."""
    return ", ".join(f"{k}={v}" for k, v in parse_json(value).items() if k not in ("alertname", "severity"))


def parse_json(value: object) -> dict:
    import json

    if isinstance(value, dict):
        return value
    if not value:
        return {}
    try:
        parsed = json.loads(str(value))
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def drift_columns(drift: pd.DataFrame) -> pd.DataFrame:
    """Per-column rows (time, route, column, score, threshold, Evidently's verdict, the chance test's
    p-value, drifted, test) from `drift` reports."""
    cols = ["time", "window_end", "route", "column", "score", "threshold", "evidently", "p_value", "alpha", "drifted",
            "test"]
    rows = []
    for rec in drift.to_dict("records") if not drift.empty else []:
        body = parse_json(rec.get("body"))
        per_column = body.get("columns") or body.get("per_column") or {}
        items = per_column.items() if isinstance(per_column, dict) else (
            (c.get("column") or c.get("name"), c) for c in per_column if isinstance(c, dict))
        for name, c in items:
            c = c if isinstance(c, dict) else {"score": c}
            drifted = c.get("drifted", c.get("drift_detected", c.get("drift")))
            if drifted is None and isinstance(c.get("verdict"), str):
                drifted = c["verdict"] == "drift"
            rows.append({"time": rec.get("time"), "window_end": rec.get("window_end"), "route": rec.get("route"),
                         "column": name, "score": c.get("score", c.get("drift_score")),
                         "threshold": c.get("threshold"), "evidently": c.get("evidently"), "p_value": c.get("p_value"),
                         "alpha": body.get("alpha"),
                         "drifted": bool(drifted) if drifted is not None else None,
                         "test": c.get("test", c.get("stattest"))})
    return pd.DataFrame(rows, columns=cols)


def flatten_reports(reports: pd.DataFrame) -> pd.DataFrame:
    """Report rows with their JSON body spread into columns (evidence, paths, ...)."""
    if reports.empty or "body" not in reports.columns:
        return reports
    body = pd.json_normalize([parse_json(b) for b in reports["body"]], max_level=1)
    body.index = reports.index
    return pd.concat([reports.drop(columns=["body"]), body.add_prefix("body.")], axis=1)
