"""Plotly figures for the pages and the weekly review: plain functions of data frames.

Nothing here imports Streamlit, so tests and the export call them directly. Each function
returns a figure even for an empty frame (a labelled "No data" figure) so callers never branch.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd
import plotly.graph_objects as go

TEMPLATE = "plotly_white"
HEIGHT = 320
_STATUS_COLORS = {"error": "#d62728", "ok": "#2ca02c", "unset": "#1f77b4"}


def _layout(fig: go.Figure, title: str, y_title: str = "", x_title: str = "", height: int = HEIGHT,
            percent: bool = False) -> go.Figure:
    fig.update_layout(title=title, template=TEMPLATE, height=height, margin=dict(l=50, r=20, t=50, b=40),
                      legend=dict(orientation="h", y=-0.2), xaxis_title=x_title, yaxis_title=y_title)
    if percent:
        fig.update_yaxes(tickformat=".2~%")
    return fig


def empty_figure(title: str, message: str = "No data in this window") -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font=dict(size=14, color="#888"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title)


def line(frame: pd.DataFrame, title: str, x: str = "time", y: str = "value", color: str | None = None,
         y_title: str = "", hline: float | None = None, hline_label: str = "", percent: bool = False) -> go.Figure:
    """Time series, one trace per value of `color`, with an optional threshold line (SLA, SLO)."""
    if frame.empty or y not in frame.columns:
        return empty_figure(title)
    fig = go.Figure()
    groups: Iterable = frame.groupby(color, dropna=False) if color and color in frame.columns else [(y_title or y, frame)]
    for key, part in groups:
        name = key[0] if isinstance(key, tuple) else key
        part = part.sort_values(x)
        fig.add_trace(go.Scatter(x=part[x], y=part[y], mode="lines+markers" if len(part) < 30 else "lines",
                                 name=str(name)))
    if hline is not None:
        fig.add_hline(y=hline, line_dash="dash", line_color="#d62728",
                      annotation_text=hline_label or f"{hline:g}", annotation_position="top left")
    return _layout(fig, title, y_title, percent=percent)


def multi_line(frames: dict[str, pd.DataFrame], title: str, x: str = "time", y: str = "value",
               y_title: str = "", hline: float | None = None, hline_label: str = "", percent: bool = False) -> go.Figure:
    """Several named series on one chart (for example p50, p95 and p99)."""
    present = {k: v for k, v in frames.items() if not v.empty}
    if not present:
        return empty_figure(title)
    fig = go.Figure()
    for name, part in present.items():
        part = part.sort_values(x)
        fig.add_trace(go.Scatter(x=part[x], y=part[y], mode="lines", name=name))
    if hline is not None:
        fig.add_hline(y=hline, line_dash="dash", line_color="#d62728",
                      annotation_text=hline_label or f"{hline:g}", annotation_position="top left")
    return _layout(fig, title, y_title, percent=percent)


def sparkline(frame: pd.DataFrame, title: str, x: str = "time", y: str = "value", percent: bool = False) -> go.Figure:
    if frame.empty:
        return empty_figure(title, "No data")
    part = frame.sort_values(x)
    fig = go.Figure(go.Scatter(x=part[x], y=part[y], mode="lines", fill="tozeroy", line=dict(width=1.5)))
    fig.update_layout(title=dict(text=title, font=dict(size=13)), template=TEMPLATE, height=140,
                      margin=dict(l=10, r=10, t=30, b=10), showlegend=False)
    fig.update_xaxes(visible=False)
    if percent:
        fig.update_yaxes(tickformat=".2~%")
    return fig


def bars(frame: pd.DataFrame, x: str, y: str, title: str, color: str | None = None, horizontal: bool = False,
         y_title: str = "", percent: bool = False, barmode: str = "group") -> go.Figure:
    if frame.empty or x not in frame.columns or y not in frame.columns:
        return empty_figure(title)
    fig = go.Figure()
    groups: Iterable = frame.groupby(color, dropna=False) if color and color in frame.columns else [(y, frame)]
    for key, part in groups:
        name = key[0] if isinstance(key, tuple) else key
        cats, vals = part[x].astype(str), part[y]
        fig.add_trace(go.Bar(x=vals if horizontal else cats, y=cats if horizontal else vals, name=str(name),
                             orientation="h" if horizontal else "v"))
    fig.update_layout(barmode=barmode, showlegend=bool(color))
    # categories in the frame's order (bins stay ordered even when a group lacks some of them)
    (fig.update_yaxes if horizontal else fig.update_xaxes)(
        categoryorder="array", categoryarray=list(pd.unique(frame[x].astype(str))))
    fig = _layout(fig, title, "" if horizontal else y_title, y_title if horizontal else "")
    if percent:
        (fig.update_xaxes if horizontal else fig.update_yaxes)(tickformat=".2~%")
    if horizontal:
        fig.update_yaxes(autorange="reversed")
    return fig


def histogram(current: Sequence[float] | pd.Series, title: str, x_title: str = "",
              baseline: Sequence[float] | pd.Series | None = None, nbins: int = 40,
              vline: float | None = None, vline_label: str = "") -> go.Figure:
    """Distribution of a value; with a baseline, both as overlaid probability densities."""
    cur = pd.Series(current, dtype="float64").dropna()
    base = pd.Series(baseline, dtype="float64").dropna() if baseline is not None else None
    if cur.empty and (base is None or base.empty):
        return empty_figure(title)
    fig = go.Figure()
    norm = "probability" if base is not None else None
    if base is not None and not base.empty:
        fig.add_trace(go.Histogram(x=base, name="baseline", nbinsx=nbins, histnorm=norm, opacity=0.55))
    if not cur.empty:
        fig.add_trace(go.Histogram(x=cur, name="current" if base is not None else x_title or "value",
                                   nbinsx=nbins, histnorm=norm, opacity=0.7))
    if vline is not None:
        fig.add_vline(x=vline, line_dash="dash", line_color="#d62728", annotation_text=vline_label or f"{vline:g}")
    fig.update_layout(barmode="overlay", showlegend=base is not None)
    return _layout(fig, title, "share" if norm else "count", x_title)


def heatmap(frame: pd.DataFrame, x: str, y: str, z: str, title: str, z_title: str = "") -> go.Figure:
    if frame.empty:
        return empty_figure(title)
    grid = frame.pivot_table(index=y, columns=x, values=z, aggfunc="mean")
    fig = go.Figure(go.Heatmap(z=grid.values, x=list(grid.columns), y=[str(v) for v in grid.index],
                               colorscale="YlOrRd", colorbar=dict(title=z_title or z)))
    return _layout(fig, title, height=max(HEIGHT, 40 + 28 * len(grid.index)))


def waterfall(layout: pd.DataFrame, title: str = "Span waterfall") -> go.Figure:
    """Gantt-style span bars from `frames.waterfall_layout`: offset from trace start, width = duration."""
    if layout.empty:
        return empty_figure(title, "No spans")
    fig = go.Figure()
    for status, part in layout.groupby("status_code", dropna=False):
        fig.add_trace(go.Bar(
            y=part["label"], x=part["duration_ms"].clip(lower=0.01), base=part["offset_ms"], orientation="h",
            name=str(status), marker_color=_STATUS_COLORS.get(str(status), "#7f7f7f"),
            customdata=part[["span_id", "service_name", "duration_ms"]].astype(str).values,
            hovertemplate="%{y}<br>span %{customdata[0]} (%{customdata[1]})<br>%{customdata[2]} ms<extra></extra>"))
    fig.update_yaxes(categoryorder="array", categoryarray=list(layout["label"])[::-1])
    return _layout(fig, title, x_title="ms since trace start", height=max(220, 60 + 26 * len(layout)))


def failure_classes(frame: pd.DataFrame, title: str = "Error rate by failure class") -> go.Figure:
    """Stacked failure-class rates per bucket (from the `failures` query) with the total error rate on
    top; each point carries its class's newest failing trace id (customdata) so a click opens it."""
    rows = frame.dropna(subset=["failure_class"]) if not frame.empty else frame
    if rows.empty:
        return empty_figure(title, "No failed calls in this window")
    # Every class gets a row at every bucket: a stacked trace with a missing bucket would get a
    # plotly-inferred zero point that carries no count and no trace to open.
    times = pd.Index(frame["time"].drop_duplicates().sort_values(), name="time")
    fig = go.Figure()
    # A class with no failure in a bucket has its point exactly on the top of the classes under it,
    # and Plotly hands a click there to the later trace: that point opens the trace of the nearest
    # class under it that failed (what the user sees there), not nothing.
    below = pd.Series("", index=range(len(times)))
    below_class = pd.Series("", index=range(len(times)))
    for key, part in rows.groupby("failure_class"):
        part = part.set_index("time").reindex(times).reset_index()
        count = part["count"].fillna(0).astype(int)
        own = part["exemplar_trace_id"].where(count > 0, "").fillna("").astype(str)
        trace_id = own.where(own != "", below)
        text = [f"trace {t}" if o else (f"none; opens the {c} trace {t} under it" if t else "no failed call")
                for o, t, c in zip(own, trace_id, below_class)]
        fig.add_trace(go.Scatter(
            x=part["time"], y=part["rate"].fillna(0.0), name=str(key), stackgroup="one", mode="lines+markers",
            customdata=list(zip(trace_id, count.astype(str))), text=text,
            hovertemplate=f"{key}: %{{y:.2%}} (%{{customdata[1]}} calls)<br>%{{text}}<extra></extra>"))
        below, below_class = trace_id, below_class.where(own == "", str(key))
    # The total line sits exactly on the top class's points, so a click there may pick it: it carries
    # the exemplar of its bucket's largest class, so every point a user can click opens a trace.
    top = rows.sort_values(["time", "count"], ascending=[True, False]).drop_duplicates("time")
    total = frame.drop_duplicates("time")[["time", "errors", "requests"]].merge(
        top[["time", "exemplar_trace_id"]], on="time", how="left").sort_values("time")
    trace_id = total["exemplar_trace_id"].fillna("").astype(str)
    fig.add_trace(go.Scatter(
        x=total["time"], y=total["errors"] / total["requests"], name="all failures",
        mode="lines", line=dict(color="#000", width=1, dash="dot"),
        customdata=list(zip(trace_id, total["errors"].fillna(0).astype(int).astype(str))),
        text=[f"trace {t}" if t else "no failed call" for t in trace_id],
        hovertemplate="all failures: %{y:.2%} (%{customdata[1]} calls)<br>%{text}<extra></extra>"))
    return _layout(fig, title, percent=True)


_SEVERITY_COLORS = {"P1": "#c62828", "P2": "#ef6c00", "P3": "#1565c0"}


def alert_timeline(intervals: pd.DataFrame, end: pd.Timestamp, title: str = "Alert timeline") -> go.Figure:
    """One bar per alert firing (rule and labels on the y axis) from fired_at to resolved_at (or `end`)."""
    if intervals.empty:
        return empty_figure(title, "No alert fired")
    fig = go.Figure()
    for sev, part in intervals.groupby("severity"):
        start = pd.to_datetime(part["fired_at"])
        stop = pd.to_datetime(part["resolved_at"]).fillna(end)
        fig.add_trace(go.Bar(y=part["alert"], x=(stop - start).dt.total_seconds() * 1000, base=start,
                             orientation="h", name=str(sev), marker_color=_SEVERITY_COLORS.get(str(sev), "#777"),
                             hovertemplate="%{y}<br>%{base|%H:%M:%S} for %{x:,.0f} ms<extra></extra>"))
    fig.update_xaxes(type="date")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, height=max(200, 80 + 30 * len(intervals)))
