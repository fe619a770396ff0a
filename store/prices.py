"""Model prices for spans that carry no cost: genai-prices (with overrides), as in the shim (shim/pricing.py).

In the store, not in analysis: the read queries and the analyzers both price calls, and the store must
not import the analysis stage.
"""
from __future__ import annotations

import logging
from typing import Iterable

log = logging.getLogger(__name__)

Price = tuple[str, float, float, float, float]


def resolve_prices(models: Iterable[str], table: object | None = None) -> list[Price]:
    """(model, input, cached input, output, reasoning) USD per million tokens for each priced model."""
    if table is None:
        try:
            from shim.pricing import default_price_table
        except ImportError:  # the price table ships with the shim; without it unknown costs stay NULL
            log.warning("shim.pricing is unavailable: spans without cost_usd get no cost")
            return []
        table = default_price_table()
    out: list[Price] = []
    for model in models:
        p = table.price(model)  # type: ignore[attr-defined]
        if p is None:
            continue
        cached = p.input if p.cached_input is None else p.cached_input
        reasoning = p.output if p.reasoning is None else p.reasoning
        out.append((model, p.input, cached, p.output, reasoning))
    return out
