"""The weekly review: SLOs, incidents, review items, cost, canaries and failing routes for one ISO week.

`build_weekly_review` reads through any `Source` (the HTTP `ApiClient`, or `StoreSource` for the
scheduled job inside the server, both over the same named queries) and the writers turn the result
into a self-contained HTML report (charts embedded, every text escaped), Markdown, CSV or Parquet.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Protocol

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from dashboard import charts, frames
from dashboard.client import QueryResult

FORMATS = ("html", "md", "csv", "parquet")
INCIDENT_SEVERITIES = ("P1", "P2")


class Source(Protocol):
    def query(self, name: str, **params: Any) -> QueryResult: ...


class StoreSource:
    """Named queries run in-process against the server's store (for the scheduled export job)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def query(self, name: str, **params: Any) -> QueryResult:
        from store.queries import REGISTRY

        q = REGISTRY.get(name)
        if q is None:
            return QueryResult(name, "missing", message=f"no query named {name!r}")
        accepted = {p.name for p in q.params}
        try:
            table = q.execute(self.store, {k: str(v) for k, v in params.items() if k in accepted and v is not None})
        except Exception as exc:  # noqa: BLE001 - one failed section must not sink the review
            return QueryResult(name, "error", message=f"{type(exc).__name__}: {exc}")
        frame = table.to_pandas()
        for col in frame.columns:
            if frame[col].dtype == object and len(frame) and type(frame[col].dropna().iloc[0]).__name__ == "Decimal":
                frame[col] = frame[col].astype(float)
        return QueryResult(name, "ok" if len(frame) else "empty", frame)


def iso_week(week: str | None, today: date | None = None) -> tuple[str, datetime, datetime]:
    """('2026-W47', Monday 00:00, next Monday 00:00) in UTC; default: the last complete week."""
    today = today or datetime.now(timezone.utc).date()
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


def incidents(history: pd.DataFrame, end: datetime) -> pd.DataFrame:
    """P1/P2 incidents from alert transitions: firing time, resolution time, duration in minutes."""
    cols = ["rule", "severity", "labels", "fired_at", "resolved_at", "duration_min"]
    if history.empty or not {"fingerprint", "to_state", "time"} <= set(history.columns):
        return pd.DataFrame(columns=cols)
    h = history.sort_values("time")
    if "severity" in h.columns:
        h = h[h["severity"].isin(INCIDENT_SEVERITIES)]
    rows, open_ = [], {}
    for rec in h.to_dict("records"):
        fp = rec["fingerprint"]
        if rec["to_state"] == "firing" and fp not in open_:
            open_[fp] = rec
        elif rec["to_state"] == "resolved" and fp in open_:
            start = open_.pop(fp)
            rows.append({**{k: start.get(k) for k in ("rule", "severity", "labels")}, "fired_at": start["time"],
                         "resolved_at": rec["time"]})
    for start in open_.values():
        rows.append({**{k: start.get(k) for k in ("rule", "severity", "labels")}, "fired_at": start["time"],
                     "resolved_at": None})
    out = pd.DataFrame(rows, columns=cols[:-1])
    if out.empty:
        return pd.DataFrame(columns=cols)
    ends = pd.to_datetime(out["resolved_at"]).fillna(pd.Timestamp(end))
    out["duration_min"] = ((ends - pd.to_datetime(out["fired_at"])).dt.total_seconds() / 60).round(1)
    return out.sort_values(["severity", "fired_at"]).reset_index(drop=True)


def build_weekly_review(source: Source, week: str | None = None, today: date | None = None) -> WeeklyReview:
    label, start, end = iso_week(week, today)
    prev_start = start - timedelta(days=7)
    this = {"start": _iso(start), "end": _iso(end)}
    last = {"start": _iso(prev_start), "end": _iso(start)}
    sections: list[Section] = []

    # SLO attainment (analyzers) and availability from the raw spans, this week against last.
    slo = Section("SLO attainment")
    attainment = source.query("metrics", metric="slo_attainment", grain="1h", service="*", limit=100000, **this)
    if attainment.ok:
        a = frames.tidy_metrics(attainment.frame)
        slo.tables["slo_attainment"] = (a.groupby(["service_name", "route"], dropna=False, as_index=False)["value"]
                                        .agg(["mean", "min"]).rename(columns={"mean": "attainment_mean",
                                                                              "min": "attainment_worst_hour"}))
    elif note := _note(attainment, "SLO attainment"):
        slo.notes.append(note)
    # grouped on the server exactly as shown: availability is 1 - errors / calls per service
    cur, prev = source.query("calls", by="service", **this), source.query("calls", by="service", **last)
    if cur.ok or prev.ok:
        avail = frames.changes(cur.frame, prev.frame, keys=("service_name",), measures=("requests", "error_rate",
                                                                                         "p95_ms"))
        avail.insert(1, "availability", 1 - pd.to_numeric(avail["error_rate"], errors="coerce"))
        slo.tables["availability"] = avail
    elif note := _note(cur, "Availability"):
        slo.notes.append(note)
    sections.append(slo)

    # Incidents: P1 and P2 with durations.
    inc = Section("P1 / P2 incidents")
    history = source.query("alert_history", limit=100000, **this)
    if history.ok:
        inc.tables["incidents"] = incidents(history.frame, end)
        if inc.tables["incidents"].empty:
            inc.notes.append("No P1 or P2 incident this week.")
    elif note := _note(history, "Incidents"):
        inc.notes.append(note if history.state != "empty" else "No P1 or P2 incident this week.")
    sections.append(inc)

    # P3 review items: drift trend, override increases, confidence decline.
    p3 = Section("P3 review items")
    review = source.query("alert_review", limit=10000, **this)
    if review.ok:
        p3.tables["p3_alerts"] = review.frame
    drift = source.query("metrics", metric="drift_share", grain="1h", route="*", limit=100000, **this)
    if drift.ok:
        d = frames.series(drift.frame, "drift_share", "route")
        p3.tables["drift_trend"] = (d.groupby("route", as_index=False)["value"].agg(["mean", "max", "last"])
                                    .rename(columns={"mean": "drift_share_mean", "max": "drift_share_max",
                                                     "last": "drift_share_last"}))
        p3.figures.append(charts.line(d, "Drift share by route", color="route", percent=True))
    elif note := _note(drift, "Drift trend"):
        p3.notes.append(note)
    ov_now, ov_before = source.query("overrides", limit=10000, **this), source.query("overrides", limit=10000, **last)
    if ov_now.ok or ov_before.ok:
        def rate(df: pd.DataFrame) -> pd.DataFrame:
            if df.empty:
                return pd.DataFrame(columns=["route", "model", "reviewed", "override_rate"])
            g = df.groupby(["route", "model"], dropna=False, as_index=False)[["reviewed", "modified", "rejected"]].sum()
            g["override_rate"] = (g["modified"] + g["rejected"]) / g["reviewed"]
            return g[["route", "model", "reviewed", "override_rate"]]
        merged = rate(ov_now.frame).merge(rate(ov_before.frame), on=["route", "model"], how="outer",
                                          suffixes=("", "_last_week"))
        merged["change"] = merged["override_rate"] - merged["override_rate_last_week"]
        p3.tables["override_changes"] = merged.sort_values("change", ascending=False, na_position="last")
    elif note := _note(ov_now, "Override rates"):
        p3.notes.append(note)
    conf = source.query("metrics", metric="confidence_mean", grain="1h", limit=100000, **this)
    conf_before = source.query("metrics", metric="confidence_mean", grain="1h", limit=100000, **last)
    if conf.ok:
        now_mean = frames.series(conf.frame, "confidence_mean")["value"].mean()
        before_mean = frames.series(conf_before.frame, "confidence_mean")["value"].mean() if conf_before.ok else None
        p3.tables["confidence"] = pd.DataFrame([{"confidence_mean": now_mean, "confidence_mean_last_week": before_mean,
                                                 "change": None if before_mean is None else now_mean - before_mean}])
        p3.figures.append(charts.line(frames.series(conf.frame, "confidence_mean"), "Mean confidence (hourly)"))
    elif note := _note(conf, "Confidence trend"):
        p3.notes.append(note)
    sections.append(p3)

    # Cost by model and route against last week.
    cost = Section("Cost")
    cur_m, prev_m = source.query("calls", by="model_version", **this), source.query("calls", by="model_version", **last)
    if cur_m.ok or prev_m.ok:
        by_model = frames.changes(cur_m.frame, prev_m.frame, keys=("model", "model_version"),
                                  measures=("cost_usd", "requests"))
        cost.tables["cost_by_model"] = by_model
        cost.figures.append(charts.bars(
            by_model.melt(id_vars=["model"], value_vars=["cost_usd", "cost_usd_before"], var_name="week",
                          value_name="usd").replace({"cost_usd": "this week", "cost_usd_before": "last week"}),
            "model", "usd", "Cost by model: this week and last", color="week", y_title="USD"))
    spend_now = source.query("top_spenders", by="route", limit=50, **this)
    spend_before = source.query("top_spenders", by="route", limit=50, **last)
    if spend_now.ok or spend_before.ok:
        cost.tables["cost_by_route"] = frames.changes(spend_now.frame, spend_before.frame, keys=("route",),
                                                      measures=("cost_usd", "requests"))
    elif note := _note(spend_now, "Cost by route"):
        cost.notes.append(note)
    sections.append(cost)

    # Canary outcomes.
    can = Section("Canary outcomes")
    canary = source.query("canary", limit=1000, **this)
    if canary.ok:
        c = canary.frame
        can.tables["canary"] = c[[col for col in ("time", "window_end", "service_name", "model", "model_version",
                                                  "verdict", "body") if col in c.columns]]
    elif note := _note(canary, "Canary outcomes"):
        can.notes.append(note)
    sections.append(can)

    # Top failing routes: one summary per route seen this week.
    fail = Section("Top failing routes")
    dims = source.query("calls", by="route", **this)
    if dims.ok:
        top = dims.frame[["route", "requests", "errors", "error_rate", "p95_ms"]]
        fail.tables["failing_routes"] = top.sort_values("errors", ascending=False).head(10).reset_index(drop=True)
        fail.figures.append(charts.bars(fail.tables["failing_routes"], "route", "error_rate",
                                        "Error rate of the most failing routes", percent=True))
    elif note := _note(dims, "Failing routes"):
        fail.notes.append(note)
    sections.append(fail)

    return WeeklyReview(label, start, end, datetime.now(timezone.utc).replace(tzinfo=None), sections)


# --- writers -------------------------------------------------------------------------------------

_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#222}h1{margin-bottom:0}table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.85rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#f5f5f5}
.note{color:#666;font-style:italic}.meta{color:#666}"""


def _display(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(4)
    return out


def _figure_html(fig: go.Figure, first: bool) -> str:
    # plotly.js is inlined once (self-contained file); later figures reuse it.
    text = pio.to_html(fig, full_html=False, include_plotlyjs=True if first else False,
                       config={"displaylogo": False})
    return text


def to_html(review: WeeklyReview) -> str:
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>aiwatch weekly review {html.escape(review.week)}</title><style>{_CSS}</style></head><body>",
             f"<h1>aiwatch weekly review {html.escape(review.week)}</h1>",
             f"<p class='meta'>{review.start:%Y-%m-%d} to {review.end - timedelta(days=1):%Y-%m-%d} (UTC) "
             f"\u00b7 generated {review.generated_at:%Y-%m-%d %H:%M} UTC</p>"]
    first = True
    for s in review.sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        for note in s.notes:
            parts.append(f"<p class='note'>{html.escape(note)}</p>")
        for name, frame in s.tables.items():
            parts.append(f"<h3>{html.escape(name.replace('_', ' '))}</h3>")
            parts.append(_display(frame).to_html(index=False, escape=True, na_rep="\u2013", border=0))
        for fig in s.figures:
            parts.append(_figure_html(fig, first))
            first = False
    parts.append("</body></html>")
    return "\n".join(parts)


def _md_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "\u2013"
    if isinstance(value, float):
        value = round(value, 4)
    return str(value).replace("|", "\\|").replace("\n", " ")


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
           f"{review.start:%Y-%m-%d} to {review.end - timedelta(days=1):%Y-%m-%d} (UTC), generated "
           f"{review.generated_at:%Y-%m-%d %H:%M} UTC.", ""]
    for s in review.sections:
        out += [f"## {s.title}", ""]
        out += [f"_{n}_" for n in s.notes] + ([""] if s.notes else [])
        for name, frame in s.tables.items():
            out += [f"### {name.replace('_', ' ')}", "", _md_table(frame), ""]
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
                    frame.to_csv(path, index=False)
                else:
                    _arrow_safe(frame).to_parquet(path, index=False)
                written.append(path)
    return written
