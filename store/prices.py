"""Model prices for spans that carry no cost: genai-prices (with overrides), as in the shim (core/pricing.py).

In the store, not in analysis: the read queries and the analyzers both price calls, and the store must
not import the analysis stage.
"""
from __future__ import annotations

from collections.abc import Iterable

from core.pricing import PriceTable, default_price_table

Price = tuple[str, float, float, float, float]


def resolve_prices(models: Iterable[str], table: PriceTable | None = None) -> list[Price]:
    """(model, input, cached input, output, reasoning) USD per million tokens for each priced model."""
    if table is None:
        table = default_price_table()
    out: list[Price] = []
    for model in models:
        p = table.price(model)
        if p is None:
            continue
        cached = p.input if p.cached_input is None else p.cached_input
        reasoning = p.output if p.reasoning is None else p.reasoning
        out.append((model, p.input, cached, p.output, reasoning))
    return out
