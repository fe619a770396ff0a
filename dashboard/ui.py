"""The frame every page shares: server connection, sidebar filters, and the data-state messages.

Pages stay thin (query -> frame -> chart): `ui.page(...)` gives them a `PageContext` with the
filters and cached reads, and `ui.show(result, ...)` says clearly what to do when a read has no
data, names a query the server does not offer yet, or cannot reach the server.
"""
from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from aiwatch.config import ConfigError, Settings
from dashboard import client, filters
from dashboard.client import QueryResult
from dashboard.filters import FILTER_KEYS, TIME_PRESETS, Filters
from store.queries import CALL_SERIES

# Newest model calls a page reads when it summarises raw spans itself (bounded for 10M-span stores).
SAMPLE = 5000

# Frame column -> parameter of the `metrics` query that selects it.
LABEL_PARAMS = {"service_name": "service", "model": "model", "model_version": "version", "route": "route",
                "arm": "arm"}

# What to tell an SRE looking at an empty view.
SEND_DATA = ("send spans to the server over OTLP/HTTP (point your OpenTelemetry exporter at the server, "
             "or load the sample data with `aiwatch demo`), or widen the time range")
RUN_ANALYZERS = ("the analyzers compute this: `aiwatch serve` runs them every minute; for older data stop the "
                 "server and run `aiwatch analyze --since=-24h --data-dir <the server's data folder>`")


def _run_analyzers_hint(data_dir: str | None) -> str:
    folder = data_dir or "<the server's data folder>"
    return ("the analyzers compute this: `aiwatch serve` runs them every minute; for older data stop the "
            f"server and run `aiwatch analyze --since=-24h --data-dir {folder}`")


ANALYZERS_MISSING = "it comes with the analyzers (`analysis/`): upgrade the server, then run `aiwatch analyze`"
ALERTS_MISSING = "it comes with the alerting stage (`alerts/`): upgrade the server and configure alert rules"


def settings() -> Settings:
    try:
        return Settings.load()
    except ConfigError as exc:
        st.error(f"aiwatch configuration error: {exc}")
        st.stop()
        raise


def _settings() -> tuple[str, str]:
    s = settings()
    return s.server_url.rstrip("/"), s.api_token


@dataclass
class PageContext:
    server_url: str
    token: str
    filters: Filters
    queries: dict[str, frozenset[str]]

    def has(self, name: str) -> bool:
        return name in self.queries

    def query(self, name: str, **params: Any) -> QueryResult:
        """A named query; parameters the server's version of it does not accept are left out."""
        if not self.has(name):
            return QueryResult(name, "missing", message=f"the server has no query named {name!r}")
        accepted = self.queries[name]
        return client.cached_query(self.server_url, name, {k: v for k, v in params.items() if k in accepted},
                                   self.token)

    def filtered(self, name: str, *, keys: Iterable[str] = FILTER_KEYS, **extra: Any) -> QueryResult:
        """A query with the global filters named in `keys` plus `extra` parameters (which win)."""
        f = self.filters.params()
        return self.query(name, **{**{k: v for k, v in f.items() if k in keys}, **extra})

    def metrics(self, names: Iterable[str], grain: str | None = None, by: str | None = None,
                **extra: Any) -> QueryResult:
        """The analyzers' tall `metrics` table for some metric names over the filtered window.

        Labels left out select the analyzers' rollup rows; `by` asks for the breakdown ('*') over
        one dimension (a frame column such as `route` or `model_version`).
        """
        split = {LABEL_PARAMS[by]: "*"} if by in LABEL_PARAMS else {}
        grain = grain or self.filters.grain()
        names = list(names)
        f = self.filters
        # The analyzers keep rollups over all, per service, service+route and service+model. A filter
        # without its service (a model alone) or a split they do not keep is computed from the raw calls
        # instead, exactly (a mean of per-service rates would not be the rate).
        raw = [n for n in names if n in CALL_SERIES]
        alone = not f.service and any((f.model, f.version, f.route))
        if (raw and grain in ("1m", "1h") and not extra and self.has("call_series")
                and (alone or (split and len(raw) == len(names)))):
            return self.filtered("call_series", metric=",".join(raw), grain=grain, **({"by": by} if by else {}))
        params = dict(metric=",".join(names), grain=grain, limit=100_000, **split, **extra)
        result = self.filtered("metrics", **params)
        if result.state == "empty" and split and "service" not in split and not f.service:
            # Some breakdowns are only kept per service (no all-services rollup): read them per service.
            result = self.filtered("metrics", **params, service="*")
        return result


def server() -> tuple[str, str]:
    return _settings()


def current_filters() -> Filters:
    return st.session_state.get("aiwatch_filters") or filters.from_mapping(st.query_params.to_dict())


def page(title: str, caption: str = "") -> PageContext:
    """Title the page and connect; with the server down, say so and stop the page (no traceback)."""
    st.title(title)
    url, token = _settings()
    f = current_filters()
    if caption:
        st.caption(f"{caption} \u00b7 {f.label()}")
    catalog = client.cached_catalog(url, token)
    if catalog is None:
        server_down(url)
        st.stop()
    if "data_range" in catalog:   # hints name the folder the server really uses
        rng = client.cached_query(url, "data_range", {}, token)
        global RUN_ANALYZERS
        RUN_ANALYZERS = _run_analyzers_hint(str(rng.frame["data_dir"].iloc[0]) if rng.ok else None)
    return PageContext(url, token, f, catalog)


def server_down(url: str) -> None:
    st.error(f"**Cannot reach the aiwatch server at {url}.** Start it with `aiwatch serve` (or `aiwatch demo`), "
             "or point the dashboard at a running server with `aiwatch dashboard --server URL`. "
             "This page retries on every refresh.", icon=":material/cloud_off:")


def show(result: QueryResult, empty_hint: str = SEND_DATA, missing_hint: str = ANALYZERS_MISSING,
         what: str = "") -> bool:
    """True when the result has rows; otherwise render why not and what to do."""
    label = what or f"`{result.name}`"
    if result.state == "ok":
        return True
    if result.state == "empty":
        st.info(f"No data for {label} in this window: {empty_hint}.", icon=":material/info:")
    elif result.state == "missing":
        st.info(f"Not available yet on this server: {label}. {missing_hint[:1].upper() + missing_hint[1:]}.",
                icon=":material/hourglass_empty:")
    elif result.state == "down":
        server_down(result.message.split(" at ")[-1].split(" ")[0] if " at " in result.message else "")
    else:
        st.warning(f"The server could not answer {label}: {result.message}", icon=":material/warning:")
    return False


def chart(fig: go.Figure, key: str | None = None, toolbar: bool = True) -> None:
    st.plotly_chart(fig, width="stretch", key=key, config={"displaylogo": False, "displayModeBar": toolbar})


def trace_link(trace_id: Any) -> str | None:
    """Path of the Traces page for one trace (a dataframe LinkColumn shows the id, opens the trace)."""
    return f"/traces?id={trace_id}" if isinstance(trace_id, str) and trace_id else None


def trace_table(frame: pd.DataFrame, columns: Iterable[str] | None = None, **kwargs: Any) -> None:
    """A table whose trace ids are links to the trace."""
    if "trace_id" in frame.columns:
        frame = frame.assign(trace_id=frame["trace_id"].map(trace_link))
    config = {"trace_id": st.column_config.LinkColumn("trace", display_text=r"/traces\?id=(.*)"),
              **kwargs.pop("column_config", {})}
    table(frame, columns, column_config=config, **kwargs)


def trace_chart(fig: go.Figure, key: str) -> None:
    """A chart whose points carry a trace id as customdata[0]: clicking a point opens that trace."""
    event = st.plotly_chart(fig, width="stretch", key=key, on_select="rerun", selection_mode="points",
                            config={"displaylogo": False})
    points = (getattr(event, "selection", None) or {}).get("points") or []
    for point in points:
        custom = point.get("customdata")
        trace_id = custom[0] if isinstance(custom, (list, tuple)) and custom else None
        if isinstance(trace_id, str) and len(trace_id) == 32:
            st.switch_page("views/traces.py", query_params={"id": trace_id})


def table(frame: pd.DataFrame, columns: Iterable[str] | None = None, **kwargs: Any) -> None:
    if columns is not None:
        frame = frame[[c for c in columns if c in frame.columns]]
    st.dataframe(frame, hide_index=True, width="stretch", **kwargs)


def fmt_number(value: float | None, unit: str = "", digits: int = 0) -> str:
    if value is None or pd.isna(value):
        return "\u2013"
    if unit == "%":
        return f"{value * 100:.{max(digits, 1)}f}%"
    if unit == "$":
        return f"${value:,.{max(digits, 2)}f}"
    return f"{value:,.{digits}f}{(' ' + unit) if unit else ''}"


def cost_metric(col: Any, label: str, t: dict[str, Any]) -> None:
    """A cost tile that never shows unpriced calls as $0: it says which models had no price."""
    unpriced = int(t.get("unpriced_calls") or 0)
    if unpriced and unpriced >= t.get("requests", 0):
        col.metric(label, "unpriced", help=f"No price for: {t.get('unpriced_models') or 'these models'}. "
                                           "Add a price override (see README, Prices).")
        return
    note = (f"{unpriced:,} call(s) unpriced ({t.get('unpriced_models')}): not included."
            if unpriced else "Every call priced (its own cost, else tokens x price).")
    col.metric(label, fmt_number(t.get("cost_usd"), "$"), delta=f"{unpriced:,} unpriced" if unpriced else None,
               delta_color="off", help=note)


_BAR_COLOURS = {"green": "#2e7d32", "orange": "#ef6c00", "red": "#c62828", "grey": "#9e9e9e"}


def budget_bar(remaining: float | None, colour: str, label: str) -> None:
    """Error budget left as a bar in the budget's colour (st.progress is always the theme's red)."""
    width = 0.0 if remaining is None else min(max(remaining, 0.0), 1.0) * 100
    st.markdown(f'<div title="{html.escape(label)}" aria-label="{html.escape(label)}" style="background:#e0e0e0;'
                f'border-radius:4px;height:10px;margin:-6px 0 14px 0"><div style="width:{width:.1f}%;height:10px;'
                f'border-radius:4px;background:{_BAR_COLOURS.get(colour, "#9e9e9e")}"></div></div>',
                unsafe_allow_html=True)


def fmt_p(value: float | None) -> str:
    """A p-value readable at any size (0.0000 hides 1e-12); one under the smallest double scipy
    returns (it underflows to 0) reads as such, not as an exact 0."""
    if value is None or pd.isna(value):
        return "\u2013"
    if value < 1e-300:
        return "< 1e-300"
    return f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}"


def _dimension_options(url: str, token: str, f: Filters, names: dict[str, frozenset[str]] | None) -> dict[str, list[str]]:
    cols = {"service": "service_name", "model": "model", "version": "model_version", "route": "route"}
    empty: dict[str, list[str]] = {k: [] for k in cols}
    if not names or "dimensions" not in names:
        return empty
    res = client.cached_query(url, "dimensions", {"start": f.start, "end": f.end}, token)
    if not res.ok:
        return empty
    return {k: sorted({str(v) for v in res.frame[c].dropna()}) if c in res.frame.columns else []
            for k, c in cols.items()}


def sidebar_filters() -> Filters:
    """Render the global filters in the sidebar, two-way bound to the URL query."""
    ss = st.session_state
    if "f_range" not in ss:
        initial = filters.from_mapping(st.query_params.to_dict())
        preset = initial.start if initial.start in TIME_PRESETS and initial.end == "now" else "custom"
        ss.update({"f_range": preset, "f_start": initial.start, "f_end": initial.end,
                   **{f"f_{k}": getattr(initial, k) for k in ("service", "model", "version", "route")}})
    url, token = _settings()
    names = client.cached_catalog(url, token)
    with st.sidebar:
        st.markdown("### Filters")
        choice = st.selectbox("Time range", [*TIME_PRESETS, "custom"], key="f_range",
                              format_func=lambda k: TIME_PRESETS.get(k, "Custom range"))
        if choice == "custom":
            st.text_input("From", key="f_start", help="ISO 8601 (2026-11-20T10:00) or relative (-90m, -3d)")
            st.text_input("To", key="f_end", help="ISO 8601, relative, or now")
            start, end = ss["f_start"] or "-24h", ss["f_end"] or "now"
        else:
            start, end = choice, "now"
        window = filters.from_mapping({"start": start, "end": end})
        options = _dimension_options(url, token, window, names)
        chosen: dict[str, str | None] = {}
        for key, label in (("service", "Service"), ("model", "Model"), ("version", "Model version"),
                           ("route", "Route")):
            current = ss.get(f"f_{key}")
            opts = options[key] + ([current] if current and current not in options[key] else [])
            chosen[key] = st.selectbox(label, opts, key=f"f_{key}", index=None, placeholder="All")
        f = Filters(start=window.start, end=window.end, **chosen)
        if names is None:
            st.caption(f"Server: {url} (unreachable)")
        else:
            st.caption(f"Server: {url}")
    ss["aiwatch_filters"] = f
    _sync_url(f)
    return f


def _sync_url(f: Filters) -> None:
    wanted = f.url_params()
    for key in FILTER_KEYS:
        if key in wanted:
            if st.query_params.get(key) != wanted[key]:
                st.query_params[key] = wanted[key]
        elif key in st.query_params:
            del st.query_params[key]


SPLITS = {"": "Nothing", "model": "Model", "model_version": "Model version", "route": "Route",
          "service_name": "Service", "arm": "Canary arm"}


def split_by(page_key: str) -> str | None:
    """A 'split by' control for a page's time series; None means one aggregate line."""
    choice = st.selectbox("Split by", list(SPLITS), format_func=lambda k: SPLITS[k], key=f"split-{page_key}")
    return choice or None
