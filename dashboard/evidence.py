"""The route-shift alerts' evidence on the page that shows their metric (catalog PAGES): per route
and model, where the calls of the rule's trailing window sit in the route's own recent calls, and
the newest window's rank test, so an on-call engineer who opens an alert's link sees what fired it.

The windows, p-values and mean thresholds are those of the rules the server evaluates (its
`alert_rules` query: its rules file, else the shipped one).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

import pandas as pd
import streamlit as st

from analysis.metrics_catalog import ALL_MODELS
from core.durations import format_duration
from core.units import format_value
from dashboard import charts, frames, ui
from dashboard.client import QueryResult

# per-minute rows: a week would be hundreds of thousands of rows; a shift is recent news
MAX_SPAN = timedelta(hours=24)
ROW_LIMIT = 100_000    # the `metrics` query's maximum


@dataclass(frozen=True)
class RankRule:
    """A rank rule as the server's `alert_rules` gives it: what its line and table need."""
    name: str
    severity: str
    bad: str       # the tail-score sum (route_in_high_score, ...); `total` counts the calls scored
    total: str
    over: timedelta
    p_value: float
    max_mean: float
    windows: int = 1    # > 1: the rule scans every window of the newest 1..windows minutes (p_for: each one's p)

    @property
    def fires_at(self) -> str:
        """The rule's verdict in words, for the line's threshold label."""
        if self.windows > 1:
            return (f"fires at or under {self.max_mean:.0%} in any window of the last 1-{self.windows} min "
                    f"(p < {self.p_value:.0e} shared among them)")
        return f"fires at or under {self.max_mean:.0%} with p < {self.p_value:.0e}"

    def p_for(self, length: timedelta) -> float:
        """The p-value a window of `length` must be under: the alerts' own rule (Evidence.window_p_value)."""
        from alerts.rules import Evidence

        ev = Evidence(test="rank", bad=self.bad, total=self.total, p_value=self.p_value, max_mean=self.max_mean,
                      scan=self.windows > 1)
        return ev.window_p_value(self.over, length)


def server_rules(ctx: ui.PageContext) -> pd.DataFrame:
    """The rules the server evaluates (none from a server without the `alert_rules` query)."""
    result = ctx.query("alert_rules")
    return result.frame if result.ok else pd.DataFrame(columns=["name", "page", "test"])


def rank_rules(ctx: ui.PageContext, page: str) -> list[RankRule]:
    """The server's rank rules whose evidence this page shows."""
    rules = server_rules(ctx)
    rows = rules[(rules["test"] == "rank") & (rules["page"] == page)]
    windows = rows["windows"] if "windows" in rows.columns else pd.Series(1, index=rows.index)
    return [RankRule(r.name, r.severity, r.bad, r.total, timedelta(seconds=float(r.over_s)), float(r.p_value),
                     float(r.max_mean), int(w) if pd.notna(w) else 1) for r, w in zip(rows.itertuples(), windows)]


def with_units(ctx: ui.PageContext, alerts: pd.DataFrame) -> pd.DataFrame:
    """Alert rows with `value` and `threshold` as text in the rule's unit (`15% > 1%`, not 0.15):
    the unit the alert carries in its annotations, else its rule's on this server."""
    if alerts.empty or "value" not in alerts.columns:
        return alerts
    rules = server_rules(ctx)
    by_rule = dict(zip(rules["name"], rules["unit"])) if "unit" in rules.columns else {}
    n = len(alerts)
    notes = alerts["annotations"].map(frames.parse_json) if "annotations" in alerts.columns else [{}] * n
    names = alerts["rule"] if "rule" in alerts.columns else [""] * n
    units = [str(note.get("unit") or by_rule.get(rule) or "") for note, rule in zip(notes, names)]
    out = alerts.assign(value=[format_value(v, u) for v, u in zip(alerts["value"], units)])
    if "threshold" in alerts.columns:
        out["threshold"] = [format_value(v, u) for v, u in zip(alerts["threshold"], units)]
    return out


def rule_pages(ctx: ui.PageContext, names: list[str]) -> list[str]:
    """The pages that show the metrics of these rules, in order (a rule the server no longer has adds none)."""
    rules = server_rules(ctx)
    page = dict(zip(rules["name"], rules["page"]))
    return list(dict.fromkeys(page[n] for n in names if n in page))


def route_shift(ctx: ui.PageContext, page: str) -> None:
    rules = rank_rules(ctx, page)
    if not rules:
        return
    st.subheader("Route shift (the route alerts' evidence)")
    start, end = ctx.filters.span()
    shown_from = max(start, end - MAX_SPAN)
    f = ctx.filters
    names = sorted({m for r in rules for m in (r.bad, r.total)})
    # from one window before, so the first windows shown are whole, as the alerts saw them
    longest = max(r.over for r in rules)
    def read(model: str | None) -> QueryResult:
        return ctx.filtered("metrics", metric=",".join(names), grain="1m", service=f.service or "*",
                            route=f.route or "*", model=model, start=(shown_from - longest).isoformat(),
                            limit=ROW_LIMIT)

    result = read(f.model or "*")
    if not f.model:     # and each route served by two models or more over all its calls (model empty)
        pooled = read(None)
        if pooled.ok and result.state in ("ok", "empty"):
            frames_ = [x for x in (result.frame, pooled.frame) if len(x)]
            result = replace(result, state="ok", frame=pd.concat(frames_, ignore_index=True))
    if result.ok:
        result = replace(result, frame=result.frame.assign(model=result.frame["model"].fillna(ALL_MODELS)))
    from analysis.route_shift import MIN_REFERENCE

    if result.state == "empty":
        st.caption(f"No route scores in this window: a route is scored once it has {MIN_REFERENCE} calls of "
                   "history (route_baseline_hours), and only calls in the window are.")
        return
    if not ui.show(result, empty_hint=ui.RUN_ANALYZERS, what="route shift scores"):
        return
    if len(result.frame) >= ROW_LIMIT:     # cut short (oldest first): the newest windows would be wrong
        st.info(f"More route scores than one read holds ({ROW_LIMIT:,} rows): choose a service or route in the "
                "sidebar, or a shorter time range.")
        return
    st.caption("Each call is ranked against its route's trailing calls (its tail percentile: 50% is as usual, "
               "a few % is far out in the tail); hours whose own calls ranked as shifted are left out of later "
               f"hours' references while {MIN_REFERENCE} calls remain, so a shift that goes on stays in the tail. "
               "A line is the mean over each rule's window; the rule fires when that mean is at or under its line and the rank test's p-value is under the rule's. "
               "A rule that scans tests every window of its last minutes, each at a share of its p-value; "
               "its table names the window that decided. "
               "Windows and thresholds of the rules this server evaluates"
               + (f"; per-minute scores from {shown_from:%Y-%m-%d %H:%M} UTC (the last 24 h of the window)."
                  if shown_from > start else "."))
    for rule in rules:
        windows = frames.rank_windows(result.frame, rule.bad, rule.total, rule.over, end)
        windows = windows[windows["time"] > shown_from]
        windows = windows.assign(series=windows["route"].astype(str) + " · " + windows["model"].astype(str))
        ui.chart(charts.line(windows, f"{rule.name} ({rule.severity}): mean over the trailing {format_duration(rule.over)}",
                             y="mean_percentile", color="series", y_title="mean tail percentile", percent=True,
                             hline=rule.max_mean, hline_label=rule.fires_at),
                 key=f"shift-{rule.name}")
        newest = frames.rank_scan(result.frame, rule.bad, rule.total, rule.over, rule.windows, rule.p_for,
                                  rule.max_mean, end)
        newest = newest[newest["time"] > shown_from]
        ui.table(newest.assign(test=newest["holds"].map({True: "fires", False: "-"}),
                               window=newest["window"].map(format_duration)),
                 ["service_name", "route", "model", "time", "window", "calls", "mean_percentile", "p", "test"],
                 column_config={"time": st.column_config.DatetimeColumn("window end (UTC)"),
                                "window": st.column_config.TextColumn("window tested"),
                                "mean_percentile": st.column_config.NumberColumn("mean percentile",
                                                                                 format="percent"),
                                "p": st.column_config.NumberColumn("p-value", format="%.1e")},
                 key=f"shift-table-{rule.name}")
