"""Cost of a call: prices from the maintained `genai-prices` package, user overrides on top.

Prices are per million tokens for input, cached input, output and reasoning tokens. genai-prices
resolves provider snapshot names ("gpt-4o-mini-2024-07-18", "claude-sonnet-4-5-20250929") and is
updated with each release; an override names a model exactly or by prefix and wins. A model neither
knows has no price: its cost is None (unpriced), never 0. `PriceTable.source(model)` says which
price was applied (recorded on the span as aiwatch.cost.price).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import metadata
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
    def from_openai(cls, usage: Any) -> Usage:
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


def genai_prices_version() -> str:
    try:
        return f"genai-prices {metadata.version('genai-prices')}"
    except metadata.PackageNotFoundError:
        return "genai-prices (not installed)"


@functools.lru_cache(maxsize=4096)
def _genai_price(model: str) -> tuple[ModelPrice, str] | None:
    """The base (lowest-tier) price genai-prices knows for a model name, and its provider/model id."""
    try:
        from genai_prices import data_snapshot
    except ImportError:
        return None
    try:
        provider, info = data_snapshot.get_snapshot().find_provider_model(model, None, None, None)
    except (LookupError, ValueError):
        return None
    listed = info.prices
    prices = listed if not isinstance(listed, list) else listed[-1].prices if listed else None  # over time: the newest
    if prices is None:
        return None

    def rate(field: str) -> float | None:
        value = getattr(prices, field, None)
        value = getattr(value, "base", value)  # tiered prices: the base tier (prompts under the first tier)
        return None if value is None else float(value)

    inp, out = rate("input_mtok"), rate("output_mtok")
    if inp is None and out is None:
        return None
    return ModelPrice(input=inp or 0.0, output=out or 0.0, cached_input=rate("cache_read_mtok")), \
        f"{provider.id}/{info.id}"


class PriceTable:
    """Per-model prices (USD per million tokens): `models` (overrides, exact name or prefix) on top of
    genai-prices (unless `maintained=False`). `version` names the sources, recorded beside costs."""

    def __init__(self, models: dict[str, ModelPrice] | None = None, version: str = "custom",
                 maintained: bool = True) -> None:
        self._models = dict(models or {})
        self._by_length = sorted(self._models, key=len, reverse=True)
        self.maintained = maintained
        self.version = "+".join(v for v in (genai_prices_version() if maintained else "",
                                            version if self._models else "") if v) or version
        # An override names its table's version when it has one ("override gpt-4o (finance-2026-12)").
        self._override_suffix = f" ({version})" if version != "custom" else ""

    @classmethod
    def from_dict(cls, data: dict[str, Any], maintained: bool = True) -> PriceTable:
        """A user table ({"version": ..., "models": {name: {input, output, ...}}}) over genai-prices."""
        models = {name: ModelPrice(**p) for name, p in data["models"].items()}
        return cls(models, version=str(data.get("version", "custom")), maintained=maintained)

    @classmethod
    def load(cls, path: str | Path, maintained: bool = True) -> PriceTable:
        return cls.from_dict(json.loads(Path(path).read_text()), maintained)

    @classmethod
    def from_toml(cls, path: str | Path) -> PriceTable:
        """The server's price overrides (the `prices_file` setting) over genai-prices:

            version = "finance-2026-12"        # optional: recorded with every price it applies
            [models."gpt-4o-mini"]             # exact name, or a prefix of provider snapshot names
            input = 0.15                       # USD per million tokens
            output = 0.60
            cached_input = 0.075               # optional (default: input)
            reasoning = 0.60                   # optional (default: output)

        A ValueError names the file and the key of anything it cannot use."""
        import tomllib

        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"{path}: {exc}") from None
        return cls(_validated_models(data, str(path)), version=_validated_version(data, str(path)))

    @classmethod
    def default(cls) -> PriceTable:
        return cls()

    def with_overrides(self, overrides: dict[str, ModelPrice | dict[str, float]]) -> PriceTable:
        models = dict(self._models)
        for name, price in overrides.items():
            models[name] = price if isinstance(price, ModelPrice) else ModelPrice(**price)
        table = PriceTable(models, maintained=self.maintained)
        table.version = f"{self.version}+overrides"
        return table

    def _lookup(self, model: str) -> tuple[ModelPrice, str] | None:
        if model in self._models:
            return self._models[model], f"override {model}{self._override_suffix}"
        for name in self._by_length:
            if model.startswith(name):
                return self._models[name], f"override {name}{self._override_suffix}"
        if self.maintained and model:
            found = _genai_price(model)
            if found is not None:
                return found[0], f"{genai_prices_version()} {found[1]}"
        return None

    def price(self, model: str) -> ModelPrice | None:
        found = self._lookup(model)
        return found[0] if found else None

    def source(self, model: str) -> str | None:
        """Which price applies to `model` ("genai-prices 0.2.3 openai/gpt-4o-mini", "override my-llama")."""
        found = self._lookup(model)
        return found[1] if found else None

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


# Plausible bounds for a user's price file: no model costs more than $10,000 per million tokens.
MAX_PRICE_PER_MTOK = 10_000.0
MAX_OVERRIDES = 1_000
_PRICE_FIELDS = {"input": True, "output": True, "cached_input": False, "reasoning": False}   # name: required


def _validated_version(data: dict[str, Any], where: str) -> str:
    version = data.get("version", "custom")
    if not isinstance(version, str) or not 0 < len(version) <= 100:
        raise ValueError(f"{where}: version: give a string of 1 to 100 characters")
    return version


def _validated_models(data: dict[str, Any], where: str) -> dict[str, ModelPrice]:
    unknown = set(data) - {"version", "models"}
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (expected version and [models.NAME])")
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise ValueError(f"{where}: models: expected tables [models.NAME]")
    if len(models) > MAX_OVERRIDES:
        raise ValueError(f"{where}: {len(models)} models; at most {MAX_OVERRIDES}")
    out: dict[str, ModelPrice] = {}
    for name, price in models.items():
        key = f"{where}: models.{name[:80]!r}"
        if not 0 < len(name) <= 200 or not name.isprintable():
            raise ValueError(f"{key}: a model name is 1 to 200 printable characters")
        if not isinstance(price, dict):
            raise ValueError(f"{key}: expected a table with input and output")
        extra = set(price) - set(_PRICE_FIELDS)
        if extra:
            raise ValueError(f"{key}: unknown key(s) {', '.join(sorted(extra))}; known: {', '.join(_PRICE_FIELDS)}")
        values: dict[str, float] = {}
        for field_name, required in _PRICE_FIELDS.items():
            if field_name not in price:
                if required:
                    raise ValueError(f"{key}: {field_name} is required (USD per million tokens)")
                continue
            value = price[field_name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not 0 <= value <= MAX_PRICE_PER_MTOK:   # also refuses NaN and inf
                raise ValueError(f"{key}.{field_name}: {value!r} is not a price in USD per million tokens "
                                 f"between 0 and {MAX_PRICE_PER_MTOK:,.0f}")
            values[field_name] = float(value)
        out[name] = ModelPrice(**values)
    return out


_default_table: PriceTable | None = None


def default_price_table() -> PriceTable:
    global _default_table
    if _default_table is None:
        _default_table = PriceTable.default()
    return _default_table
