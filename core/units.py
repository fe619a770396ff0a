"""A number as on-call reads it next to its unit (the units of analysis/metrics_catalog.py): the
alert tables, the backtest timeline and notifications all format values this one way."""
from __future__ import annotations

import math

_PLAIN = {"score", "statistic", "index", "as reported", "sum of percentiles", ""}


def _trimmed(x: float, decimals: int) -> str:
    text = f"{x:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_value(value: float | None, unit: str) -> str:
    """`0.0123` as a ratio is `1.23%`, `15234.5` ms is `15,234 ms`, `14.4` x budget is `14.4x budget`."""
    if value is None or not isinstance(value, (int, float)) or math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if unit == "ratio":
        return f"{_trimmed(value * 100, 2)}%"
    if unit == "ms":
        return f"{value:,.0f} ms" if abs(value) >= 10 else f"{value:.3g} ms"
    if unit == "USD":
        return f"${value:,.2f}" if abs(value) >= 1 else f"${value:.3g}"
    if unit == "x budget":
        return f"{value:.3g}x budget"
    if unit == "p-value":
        return f"{value:.2g}"
    if unit == "flag":
        return "yes" if value else "no"
    if unit in ("count", "tokens", "items"):
        return _trimmed(value, 1) + ("" if unit == "count" else f" {unit}")
    if unit == "hours":
        return f"{_trimmed(value, 1)} h"
    text = f"{value:.4g}"
    return text if unit in _PLAIN else f"{text} {unit}"
