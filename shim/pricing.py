"""Cost of a call from a versioned price table shipped with the package (shim/prices.json).

Prices are per million tokens for input, cached input, output and reasoning tokens. A model name
matches exactly, else by the longest known prefix ("gpt-4o-2024-08-06" -> "gpt-4o"), so dated
snapshots need no entry. Users override single models or load a whole table of their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one answer. Providers count cached inside input and reasoning inside output."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def from_openai(cls, usage: Any) -> "Usage":
        """From an OpenAI-style usage dict or SDK object (prompt_tokens, completion_tokens, *_details)."""
        if usage is None:
            return cls()
        get = usage.get if isinstance(usage, dict) else (lambda k, d=None: getattr(usage, k, d))
        pdet = get("prompt_tokens_details") or {}
        cdet = get("completion_tokens_details") or {}
        pget = pdet.get if isinstance(pdet, dict) else (lambda k, d=None: getattr(pdet, k, d))
        cget = cdet.get if isinstance(cdet, dict) else (lambda k, d=None: getattr(cdet, k, d))
        return cls(
            input_tokens=int(get("prompt_tokens", None) or get("input_tokens", None) or 0),
            output_tokens=int(get("completion_tokens", None) or get("output_tokens", None) or 0),
            cached_input_tokens=int(pget("cached_tokens", None) or 0),
            reasoning_tokens=int(cget("reasoning_tokens", None) or 0),
        )


@dataclass(frozen=True, slots=True)
class ModelPrice:
    input: float
    output: float
    cached_input: float | None = None
    reasoning: float | None = None


class PriceTable:
    """Per-model prices (USD per million tokens) with a version string recorded alongside costs."""

    def __init__(self, models: dict[str, ModelPrice], version: str = "custom") -> None:
        self.version = version
        self._models = dict(models)
        self._by_length = sorted(self._models, key=len, reverse=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PriceTable":
        models = {name: ModelPrice(**p) for name, p in data["models"].items()}
        return cls(models, version=str(data.get("version", "custom")))

    @classmethod
    def load(cls, path: str | Path) -> "PriceTable":
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def default(cls) -> "PriceTable":
        return cls.from_dict(json.loads(resources.files("shim").joinpath("prices.json").read_text()))

    def with_overrides(self, overrides: dict[str, ModelPrice | dict[str, float]]) -> "PriceTable":
        models = dict(self._models)
        for name, price in overrides.items():
            models[name] = price if isinstance(price, ModelPrice) else ModelPrice(**price)
        return PriceTable(models, version=f"{self.version}+overrides")

    def price(self, model: str) -> ModelPrice | None:
        if model in self._models:
            return self._models[model]
        for name in self._by_length:
            if model.startswith(name):
                return self._models[name]
        return None

    def cost(self, model: str, usage: Usage) -> float | None:
        """USD for `usage` on `model`, or None when the model has no price (unknown != free)."""
        p = self.price(model)
        if p is None:
            return None
        cached = min(usage.cached_input_tokens, usage.input_tokens)
        reasoning = min(usage.reasoning_tokens, usage.output_tokens)
        cached_rate = p.input if p.cached_input is None else p.cached_input
        reasoning_rate = p.output if p.reasoning is None else p.reasoning
        total = ((usage.input_tokens - cached) * p.input + cached * cached_rate
                 + (usage.output_tokens - reasoning) * p.output + reasoning * reasoning_rate)
        return total / 1_000_000


_default_table: PriceTable | None = None


def default_price_table() -> PriceTable:
    global _default_table
    if _default_table is None:
        _default_table = PriceTable.default()
    return _default_table
