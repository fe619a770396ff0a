"""The weekly review: SLOs, incidents, review items, cost, canaries and failing routes for one ISO week.

`build_weekly_review` reads through any `Source` (the HTTP `ApiClient`, or `StoreSource` for the
scheduled job inside the server, both over the same named queries) and the writers turn the result
into a self-contained HTML report (charts embedded, every text escaped), Markdown, CSV or Parquet.
"""
from __future__ import annotations

import html
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import plotly.graph_objects as go

from analysis.settings import DEFAULT_AVAILABILITY_OBJECTIVE
from core.clock import utcnow
from dashboard import frames
from dashboard.client import QueryResult
from dashboard.markdown import md_text
from store.base import Store
from store.queries import QueryRegistry

FORMATS = ("html", "md", "csv", "parquet")
# the `calls` query's quality figures over a week (column -> name in the review)
QUALITY_FIGURES = (("format_ok_rate", "format compliance"), ("quality_mean", "quality mean"),
                   ("confidence_mean", "confidence mean"))


class Source(Protocol):
    def query(self, name: str, **params: Any) -> QueryResult: ...


class StoreSource:
    """Named queries run in-process against the server's store (for the scheduled export job)."""

    def __init__(self, store: Store, queries: QueryRegistry | None = None) -> None:
        from store.queries import store_queries

        self.store = store
        self.queries = store_queries() if queries is None else queries

    def query(self, name: str, **params: Any) -> QueryResult:
        q = self.queries.get(name)
        if q is None:
            return QueryResult(name, "missing", message=f"no query named {name!r}")
        accepted = {p.name for p in q.params}
        try:
            table = q.execute(self.store, {k: str(v) for k, v in params.items() if k in accepted and v is not None})
        except Exception as exc:  # noqa: BLE001 - one failed section must not sink the review
            return QueryResult(name, "error", message=f"{type(exc).__name__}: {exc}")
        frame = table.to_pandas()
        for col in frame.columns:
            if frame[col].dtype != object:
                continue
            present = frame[col].dropna()
            if len(present) and type(present.iloc[0]).__name__ == "Decimal":   # an all-NULL column has none
                frame[col] = frame[col].astype(float)
        return QueryResult(name, "ok" if len(frame) else "empty", frame)


def iso_week(week: str | None, today: date | None = None) -> tuple[str, datetime, datetime]:
    """('2026-W47', Monday 00:00, next Monday 00:00) in UTC; default: the last complete week."""
    today = today or datetime.now(UTC).date()
    if week:
        try:
            year, num = week.upper().split("-W")
            monday = date.fromisocalendar(int(year), int(num), 1)
        except ValueError:
            raise ValueError(f"week {week!r} is not an ISO week like 2026-W47") from None
    else:
        monday = today - timedelta(days=today.weekday() + 7)
    start = datetime(monday.year, monday.month, monday.day)
    iso = monday.isocalendar()
    return f"{iso.year}-W{iso.week:02d}", start, start + timedelta(days=7)


def default_week(source: Source, today: date | None = None) -> str:
    """The last complete week with data; when no complete week has any (all data is in the current
    week), the week of the newest data."""
    today = today or datetime.now(UTC).date()
    rng = source.query("data_range")
    if not rng.ok or pd.isna(rng.frame["last_span"].iloc[0]):
        return iso_week(None, today)[0]
    first, last = (pd.Timestamp(rng.frame[c].iloc[0]).to_pydatetime() for c in ("first_span", "last_span"))
    for weeks_back in range(60):
        label, start, end = iso_week(None, today - timedelta(days=7 * weeks_back))
        if end <= first:
            break                     # data begins after this week: nothing complete has any
        if start <= last:
            return label              # a complete week overlapping the data
    return iso_week(last.strftime("%G-W%V"))[0]


@dataclass
class Section:
    title: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[go.Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class WeeklyReview:
    week: str
    start: datetime
    end: datetime
    generated_at: datetime
    sections: list[Section]
    summary: dict[str, list[str]] = field(default_factory=dict)   # the one-screen summary: heading -> lines

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: frame for s in self.sections for name, frame in s.tables.items()}


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def _note(result: QueryResult, what: str) -> str | None:
    if result.state == "missing":
        return f"{what}: not available on this server yet (no `{result.name}` query)."
    if result.state == "empty":
        return f"{what}: no data this week."
    if result.state in ("down", "error"):
        return f"{what}: could not be read ({result.message})."
    return None


# --- human formatting -----------------------------------------------------------------------------

def pct(x: Any, digits: int = 2) -> str:
    return "\u2013" if x is None or pd.isna(x) else f"{x * 100:.{digits}f}%"


def ms(x: Any) -> str:
    return "\u2013" if x is None or pd.isna(x) else f"{x:,.0f} ms"


def usd(x: Any) -> str:
    return "\u2013" if x is None or pd.isna(x) else f"${x:,.2f}"


def duration(minutes: Any) -> str:
    if minutes is None or pd.isna(minutes):
        return "\u2013"
    m = int(round(float(minutes)))
    return f"{m // 60} h {m % 60:02d} min" if m >= 60 else f"{m} min"


def when(t: Any) -> str:
    return "\u2013" if t is None or pd.isna(t) else pd.Timestamp(t).strftime("%a %d %b %H:%M")


def signed(x: Any, kind: str) -> str:
    if x is None or pd.isna(x):
        return "\u2013"
    return f"{x * 100:+.1f}%" if kind == "rel" else f"{x * 100:+.2f} pp"


def humanize(frame: pd.DataFrame) -> pd.DataFrame:
    """A table for people: rates as percentages, durations in ms, money in $, counts with separators,
    times as 'Tue 18 Nov 10:00', changes signed; column names in words."""
    out = frame.copy()
    for col in out.columns:
        name = str(col)
        series = out[col]
        if pd.api.types.is_datetime64_any_dtype(series) or name.endswith("_at") or name in ("time", "window_end"):
            out[col] = series.map(when)
        elif not pd.api.types.is_numeric_dtype(series):
            continue
        elif name.endswith("_change"):
            out[col] = series.map(lambda v: signed(v, "rel"))
        elif name.endswith("_pp"):
            out[col] = series.map(lambda v: signed(v, "pp"))
        elif "rate" in name or "availability" in name or "share" in name or "attainment" in name \
                or name.startswith("objective") or name.startswith("budget"):
            out[col] = series.map(pct)
        elif name.endswith("_ms") or "_ms_" in name:   # p95_ms, p95_ms_last_week
            out[col] = series.map(ms)
        elif name in ("requests", "errors", "reviewed", "alerts") or name.startswith(("requests", "errors", "calls")):
            out[col] = series.map(lambda v: "\u2013" if pd.isna(v) else f"{v:,.0f}")
        elif name.endswith("_per_mtok"):
            out[col] = series.map(lambda v: "\u2013" if pd.isna(v) else f"${v:,.4g}")
        elif "cost" in name or name.endswith("_usd"):
            out[col] = series.map(usd)
        elif name.endswith("_min"):
            out[col] = series.map(duration)
        else:
            out[col] = series.map(lambda v: "\u2013" if pd.isna(v) else f"{v:,.3g}")
    out.columns = [str(c).replace("_usd", "").replace("_ms", "").replace("_min", "").replace("_pp", "")
                   .replace("_", " ") for c in out.columns]
    return out


def _labels_text(value: Any) -> str:
    labels = frames.parse_json(value)
    return ", ".join(f"{k}={v}" for k, v in labels.items() if k not in ("alertname", "severity"))


def _canary_text(body: Any) -> str:
    failed = [c.get("metric") for c in frames.parse_json(body).get("checks", []) if c.get("failed")]
    return "failed: " + ", ".join(str(m) for m in failed) if failed else "no check failed"


# --- building -------------------------------------------------------------------------------------

def _objectives(source: Source, window: dict[str, str]) -> dict[str, float]:
    res = source.query("metrics", metric="slo_objective", grain="1h", service="*", limit=100000, **window)
    if not res.ok:
        return {}
    t = frames.tidy_metrics(res.frame)
    return {str(k): float(v) for k, v in t.sort_values("time").groupby("service_name")["value"].last().items()}


def build_weekly_review(source: Source, week: str | None = None, today: date | None = None) -> WeeklyReview:
    if week is None:
        week = default_week(source, today)
    label, start, end = iso_week(week, today)
    prev_start = start - timedelta(days=7)
    this = {"start": _iso(start), "end": _iso(end)}
    last = {"start": _iso(prev_start), "end": _iso(start)}
    sections: list[Section] = []
    summary: dict[str, list[str]] = {}
    changes_found: list[tuple[float, str]] = []   # (score, line): the top changes of the summary

    # SLOs: availability = 1 - errors / calls per service (from the raw calls), against the objective.
    slo = Section("SLOs and error budget")
    cur, prev = source.query("calls", by="service", **this), source.query("calls", by="service", **last)
    objectives = _objectives(source, this)
    lines = []
    if cur.ok or prev.ok:
        avail = frames.changes(cur.frame, prev.frame, keys=("service_name",),
                               measures=("requests", "error_rate", "p95_ms"))
        avail.insert(1, "availability", 1 - pd.to_numeric(avail["error_rate"], errors="coerce"))
        avail.insert(2, "availability_last_week", 1 - pd.to_numeric(avail["error_rate_before"], errors="coerce"))
        avail.insert(3, "objective", [objectives.get(s, DEFAULT_AVAILABILITY_OBJECTIVE) for s in avail["service_name"]])
        budgets = [frames.budget(a, o) for a, o in zip(avail["availability"], avail["objective"])]
        avail.insert(4, "error_budget", [b[1] for b in budgets])
        slo.tables["availability"] = avail[["service_name", "availability", "availability_last_week", "objective",
                                            "error_budget", "requests", "requests_before", "p95_ms", "p95_ms_before",
                                            "p95_ms_change"]].rename(columns={"requests_before": "requests_last_week",
                                                                              "p95_ms_before": "p95_ms_last_week"})
        for r in avail.itertuples():
            if pd.isna(r.availability):
                continue
            lines.append(f"{r.service_name}: availability {pct(r.availability)} (objective {pct(r.objective)}), "
                         f"error budget {r.error_budget}; last week {pct(r.availability_last_week)}")
            if pd.notna(r.p95_ms_change) and abs(r.p95_ms_change) >= 0.1:
                changes_found.append((abs(r.p95_ms_change), f"Latency: {r.service_name} p95 {ms(r.p95_ms_before)} "
                                                            f"\u2192 {ms(r.p95_ms)} ({signed(r.p95_ms_change, 'rel')})"))
            delta = (r.availability_last_week - r.availability) if pd.notna(r.availability_last_week) else None
            if delta is not None and abs(delta) >= 0.001:
                changes_found.append((abs(delta) * 100, f"Errors: {r.service_name} error rate "
                                                         f"{pct(1 - r.availability_last_week)} \u2192 "
                                                         f"{pct(1 - r.availability)} ({signed(delta, 'pp')})"))
    elif note := _note(cur, "Availability"):
        slo.notes.append(note)
    summary["SLOs and error budget"] = lines or ["No model calls this week."]
    sections.append(slo)

    # Incidents: overlapping P1/P2 alerts of a service, deduplicated, with durations.
    inc = Section("Incidents (P1 / P2)")
    found = source.query("incidents", severity="P2", limit=1000, **this)
    if found.ok:
        f = found.frame.sort_values("started_at")
        inc.tables["incidents"] = f[["started_at", "ended_at", "duration_min", "service", "severity", "alerts",
                                     "rules", "routes", "models"]].reset_index(drop=True)
        by_sev = f["severity"].value_counts().sort_index()
        lines = [f"{len(f)} incident(s) ({', '.join(f'{k} {v}' for k, v in by_sev.items())}), "
                 f"{duration(f['duration_min'].sum())} in total"]
        for r in f.sort_values("duration_min", ascending=False).head(5).itertuples():
            lines.append(f"{when(r.started_at)} {r.service} {r.severity}, {duration(r.duration_min)}: {r.rules}")
        summary["Incidents"] = lines
    else:
        summary["Incidents"] = ["No P1 or P2 incident this week." if found.state in ("empty", "missing")
                                else f"Incidents could not be read ({found.message})."]
        if note := _note(found, "Incidents"):
            inc.notes.append(note if found.state != "empty" else "No P1 or P2 incident this week.")
    sections.append(inc)

    # Cost by model and version, and by route, against last week.
    cost = Section("Cost")
    cur_m, prev_m = source.query("calls", by="model_version", **this), source.query("calls", by="model_version", **last)
    if cur_m.ok or prev_m.ok:
        by_model = frames.changes(cur_m.frame, prev_m.frame, keys=("model", "model_version"),
                                  measures=("cost_usd", "requests"))
        cost.tables["cost_by_model"] = by_model.rename(columns={"cost_usd_before": "cost_usd_last_week",
                                                                "requests_before": "requests_last_week"})
        total_now, total_before = by_model["cost_usd"].sum(), by_model["cost_usd_before"].sum()
        if total_before:
            change = (total_now - total_before) / total_before
            if abs(change) >= 0.1:
                changes_found.append((abs(change), f"Cost: {usd(total_before)} \u2192 {usd(total_now)} "
                                                   f"({signed(change, 'rel')})"))
        for r in by_model.itertuples():
            if pd.notna(r.cost_usd_change) and abs(r.cost_usd_change) >= 0.25 and (r.cost_usd or 0) >= 1:
                changes_found.append((abs(r.cost_usd_change) * 0.9, f"Cost: {r.model} {r.model_version or ''} "
                                                                    f"{usd(r.cost_usd_before)} \u2192 {usd(r.cost_usd)}"))
    spend_now = source.query("top_spenders", by="route", limit=50, **this)
    spend_before = source.query("top_spenders", by="route", limit=50, **last)
    if spend_now.ok or spend_before.ok:
        cost.tables["cost_by_route"] = frames.changes(spend_now.frame, spend_before.frame, keys=("route",),
                                                      measures=("cost_usd", "requests")).rename(
            columns={"cost_usd_before": "cost_usd_last_week", "requests_before": "requests_last_week"})
    elif note := _note(spend_now, "Cost by route"):
        cost.notes.append(note)
    applied = source.query("prices", **this)   # which price each model's calls were costed with
    if applied.ok:
        cost.tables["prices_applied"] = applied.frame[
            ["model", "calls", "calls_with_own_cost", "calls_priced_here", "price_source", "input_per_mtok",
             "output_per_mtok"]]
    sections.append(cost)

    # Quality, drift and human overrides: the P3 review items.
    p3 = Section("Quality, drift and overrides")
    review = source.query("alert_review", limit=10000, **this)
    if review.ok:
        r = review.frame
        p3.tables["p3_alerts"] = r.assign(labels=r["labels"].map(_labels_text))[
            [c for c in ("time", "rule", "status", "summary", "labels", "value", "threshold") if c in r.columns]]
    drift = source.query("metrics", metric="drift_share", grain="1h", route="*", service="*", limit=100000, **this)
    if drift.ok:
        d = frames.tidy_metrics(drift.frame)
        trend = (d.groupby("route", as_index=False)["value"].agg(["mean", "max", "last"])
                 .rename(columns={"mean": "drift_share_mean", "max": "drift_share_max", "last": "drift_share_last"}))
        p3.tables["drift_by_route"] = trend
        for t in trend.itertuples():
            if t.drift_share_max >= 0.5:
                changes_found.append((t.drift_share_max, f"Drift: {t.route} up to {pct(t.drift_share_max, 0)} of "
                                                         f"its input columns drifted in an hour"))
    elif note := _note(drift, "Drift"):
        p3.notes.append(note)
    ov_now, ov_before = source.query("overrides", limit=10000, **this), source.query("overrides", limit=10000, **last)
    if ov_now.ok or ov_before.ok:
        def rate(df: pd.DataFrame) -> pd.DataFrame:
            if df.empty:
                return pd.DataFrame(columns=["route", "reviewed", "override_rate"])
            g = df.groupby("route", dropna=False, as_index=False)[["reviewed", "modified", "rejected"]].sum()
            g["override_rate"] = (g["modified"] + g["rejected"]) / g["reviewed"]
            return g[["route", "reviewed", "override_rate"]]
        merged = rate(ov_now.frame).merge(rate(ov_before.frame), on="route", how="outer", suffixes=("", "_last_week"))
        merged["override_rate_change_pp"] = merged["override_rate"] - merged["override_rate_last_week"]
        p3.tables["override_rates"] = merged.sort_values("override_rate_change_pp", ascending=False,
                                                         na_position="last")
        for m in merged.itertuples():
            if pd.notna(m.override_rate_change_pp) and abs(m.override_rate_change_pp) >= 0.02:
                changes_found.append((abs(m.override_rate_change_pp) * 10,
                                      f"Overrides: {m.route} {pct(m.override_rate_last_week, 1)} \u2192 "
                                      f"{pct(m.override_rate, 1)} ({signed(m.override_rate_change_pp, 'pp')})"))
    # over every call of the week (the `calls` query), never a mean of hourly means
    quality = {k: source.query("calls", **w) for k, w in (("now", this), ("before", last))}
    if quality["now"].ok and any(m in quality["now"].frame.columns for m, _ in QUALITY_FIGURES):
        def figures(res: QueryResult) -> dict[str, float]:
            if not res.ok or res.frame.empty:
                return {}
            row = res.frame.iloc[0]
            return {m: float(row[m]) for m, _ in QUALITY_FIGURES if m in row.index and pd.notna(row[m])}
        now_q, before_q = figures(quality["now"]), figures(quality["before"])
        p3.tables["quality"] = pd.DataFrame([{"figure": name, "this_week": now_q.get(m), "last_week": before_q.get(m)}
                                             for m, name in QUALITY_FIGURES])
        for m, name in QUALITY_FIGURES:
            v, b = now_q.get(m), before_q.get(m)
            if v is not None and b is not None and abs(v - b) >= 0.02:
                changes_found.append((abs(v - b) * 10, f"Quality: {name} {b:.3f} \u2192 {v:.3f}"))
    sections.append(p3)

    # Canary outcomes: the verdicts of each candidate version this week.
    can = Section("Canary outcomes")
    canary = source.query("canary", limit=1000, **this)
    lines = []
    if canary.ok:
        c = canary.frame.sort_values("time")
        c = c.assign(detail=c["body"].map(_canary_text) if "body" in c.columns else "")
        outcome = (c.groupby(["service_name", "model_version"], dropna=False)
                   .agg(hours=("verdict", "size"), failed=("verdict", lambda v: int((v == "fail").sum())),
                        passed=("verdict", lambda v: int((v == "pass").sum())), last_verdict=("verdict", "last"),
                        last_detail=("detail", "last"), last_at=("time", "last")).reset_index())
        can.tables["canary"] = outcome
        for r in outcome.itertuples():
            lines.append(f"{r.service_name} {r.model_version}: last verdict {r.last_verdict} ({r.last_detail}); "
                         f"{r.failed} of {r.hours} hours failed, {r.passed} passed")
    elif note := _note(canary, "Canary outcomes"):
        can.notes.append(note)
    summary["Canary outcomes"] = lines or ["No canary ran this week."]
    sections.append(can)

    # Failing routes: one grouped read.
    fail = Section("Top failing routes")
    routes = source.query("calls", by="route", **this)
    if routes.ok:
        top = routes.frame[["route", "requests", "errors", "error_rate", "p95_ms"]]
        fail.tables["failing_routes"] = top.sort_values("errors", ascending=False).head(10).reset_index(drop=True)
    elif note := _note(routes, "Failing routes"):
        fail.notes.append(note)
    sections.append(fail)

    summary["Top changes against last week"] = (
        [line for _, line in sorted(changes_found, key=lambda c: -c[0])[:6]] or ["No material change."])
    order = ["SLOs and error budget", "Incidents", "Top changes against last week", "Canary outcomes"]
    return WeeklyReview(label, start, end, utcnow(), sections,
                        {k: summary[k] for k in order})


# --- writers -------------------------------------------------------------------------------------

_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#222}h1{margin-bottom:0}table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.85rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#f5f5f5}
.note{color:#666;font-style:italic}.meta{color:#666}.summary{display:grid;grid-template-columns:1fr 1fr;gap:.5rem 2rem;
border:1px solid #ddd;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}.summary h3{margin:.5rem 0 .25rem}
.summary ul{margin:0;padding-left:1.1rem}.summary li{margin:.15rem 0}"""

MAX_HTML_ROWS = 200


def to_html(review: WeeklyReview) -> str:
    """One self-contained page: the summary (one screen), then the details as formatted tables; no
    scripts, so it stays small (tens of KB) and opens anywhere."""
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>aiwatch weekly review {html.escape(review.week)}</title><style>{_CSS}</style></head><body>",
             f"<h1>aiwatch weekly review {html.escape(review.week)}</h1>",
             f"<p class='meta'>{review.start:%a %d %b %Y} to {review.end - timedelta(days=1):%a %d %b %Y} (UTC) "
             f"\u00b7 generated {review.generated_at:%Y-%m-%d %H:%M} UTC</p>", "<div class='summary'>"]
    for heading, lines in review.summary.items():
        parts.append(f"<div><h3>{html.escape(heading)}</h3><ul>"
                     + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul></div>")
    parts.append("</div><h2>Details</h2>")
    for s in review.sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        for note in s.notes:
            parts.append(f"<p class='note'>{html.escape(note)}</p>")
        for name, frame in s.tables.items():
            parts.append(f"<h3>{html.escape(name.replace('_', ' ').capitalize())}</h3>")
            shown = humanize(frame.head(MAX_HTML_ROWS))
            parts.append(shown.to_html(index=False, escape=True, na_rep="\u2013", border=0))
            if len(frame) > MAX_HTML_ROWS:
                parts.append(f"<p class='note'>{len(frame) - MAX_HTML_ROWS:,} more rows in the CSV export.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _md_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "\u2013"
    if isinstance(value, float):
        value = round(value, 4)
    return md_text(value)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A text cell that a spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a
    leading apostrophe, OWASP's guard for CSV injection; numbers are left as numbers."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].map(lambda v: "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v)
    return out


def _md_table(frame: pd.DataFrame, max_rows: int = 50) -> str:
    if frame.empty:
        return "_none_"
    cols = list(frame.columns)
    lines = ["| " + " | ".join(map(_md_cell, cols)) + " |", "|" + "---|" * len(cols)]
    for rec in frame.head(max_rows).itertuples(index=False):
        lines.append("| " + " | ".join(_md_cell(v) for v in rec) + " |")
    if len(frame) > max_rows:
        lines.append(f"\n_{len(frame) - max_rows} more rows in the CSV export._")
    return "\n".join(lines)


def to_markdown(review: WeeklyReview) -> str:
    out = [f"# aiwatch weekly review {review.week}", "",
           f"{review.start:%a %d %b %Y} to {review.end - timedelta(days=1):%a %d %b %Y} (UTC), generated "
           f"{review.generated_at:%Y-%m-%d %H:%M} UTC.", ""]
    for heading, lines in review.summary.items():
        out += [f"**{heading}**", ""] + [f"- {_md_cell(line)}" for line in lines] + [""]
    out += ["## Details", ""]
    for s in review.sections:
        out += [f"## {s.title}", ""]
        out += [f"_{md_text(n)}_" for n in s.notes] + ([""] if s.notes else [])
        for name, frame in s.tables.items():
            out += [f"### {name.replace('_', ' ').capitalize()}", "", _md_table(humanize(frame)), ""]
    return "\n".join(out)


def _arrow_safe(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].map(lambda v: v if v is None or isinstance(v, str) else
                                    json.dumps(v, default=str) if isinstance(v, (dict, list)) else str(v))
    return out


def write(review: WeeklyReview, out_dir: str | Path, formats: Iterable[str] = FORMATS) -> list[Path]:
    """Write the review in each format under `out_dir`; returns the files written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"weekly-review-{review.week}"
    written: list[Path] = []
    for fmt in formats:
        if fmt not in FORMATS:
            raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
        if fmt == "html":
            path = out_dir / f"{stem}.html"
            path.write_text(to_html(review), encoding="utf-8")
            written.append(path)
        elif fmt == "md":
            path = out_dir / f"{stem}.md"
            path.write_text(to_markdown(review), encoding="utf-8")
            written.append(path)
        else:
            table_dir = out_dir / f"{stem}-{fmt}"
            table_dir.mkdir(exist_ok=True)
            for name, frame in review.tables().items():
                path = table_dir / f"{name}.{fmt}"
                if fmt == "csv":
                    csv_safe(frame).to_csv(path, index=False)
                else:
                    _arrow_safe(frame).to_parquet(path, index=False)
                written.append(path)
    return written
