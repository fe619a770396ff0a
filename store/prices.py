"""Model prices for spans that carry no cost: genai-prices with the user's overrides (the
`prices_file` setting) on top, as in the shim (core/pricing.py).

In the store, not in analysis: the read queries and the analyzers both price calls, and the store must
not import the analysis stage. The server and the CLI configure the table once at start
(`configure`); every query and analyzer of the process then prices with it.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.pricing import PriceTable, default_price_table

Price = tuple[str, float, float, float, float]

_configured: PriceTable | None = None


def configure(table: PriceTable | None) -> None:
    """The price table of this process (None: genai-prices alone)."""
    global _configured
    _configured = table


def current_table() -> PriceTable:
    return _configured if _configured is not None else default_price_table()


def resolve_prices(models: Iterable[str], table: PriceTable | None = None) -> list[Price]:
    """(model, input, cached input, output, reasoning) USD per million tokens for each priced model."""
    table = table or current_table()
    out: list[Price] = []
    for model in models:
        p = table.price(model)
        if p is None:
            continue
        cached = p.input if p.cached_input is None else p.cached_input
        reasoning = p.output if p.reasoning is None else p.reasoning
        out.append((model, p.input, cached, p.output, reasoning))
    return out


def price_rows(models: Iterable[str], table: PriceTable | None = None) -> list[dict[str, Any]]:
    """For each model: the price applied (USD per million tokens) and its source: "override NAME
    (VERSION)" from the prices file, or "genai-prices X.Y.Z provider/model"; None for both when unpriced."""
    table = table or current_table()
    rows = []
    for model in models:
        p, source = table.price(model), table.source(model)
        rows.append({"model": model, "price_source": source,
                     "input_per_mtok": p.input if p else None,
                     "cached_input_per_mtok": (p.input if p.cached_input is None else p.cached_input) if p else None,
                     "output_per_mtok": p.output if p else None,
                     "reasoning_per_mtok": (p.output if p.reasoning is None else p.reasoning) if p else None})
    return rows
