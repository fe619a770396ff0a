"""Output checks: does the answer have the expected format, and how confident is the model?

`OutputValidator` sets format_ok from a JSON schema (via jsonschema, imported only when used) or a
predicate, and can ask the cascade for the next level. Confidence hooks turn a response into a
score in [0, 1]: from token logprobs, or from a field the model reports in its JSON answer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

ConfidenceHook = Callable[[str, dict[str, Any]], "float | None"]   # (content, raw response) -> score


class OutputValidator:
    """format_ok = schema-valid JSON (when `schema` is set) and predicate(content) (when set)."""

    def __init__(
        self,
        schema: dict[str, Any] | None = None,
        predicate: Callable[[str], bool] | None = None,
        *,
        fallback_on_invalid: bool = False,
    ) -> None:
        self.schema = schema
        self.predicate = predicate
        self.fallback_on_invalid = fallback_on_invalid
        self._validator: Any = None
        if schema is not None:
            import jsonschema  # optional at import time of the shim; needed only for schemas

            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            self._validator = cls(schema)

    def check(self, content: str | None) -> bool:
        if content is None:
            return False
        if self._validator is not None:
            try:
                value = json.loads(content)
            except ValueError:
                return False
            if not self._validator.is_valid(value):
                return False
        if self.predicate is not None:
            try:
                return bool(self.predicate(content))
            except Exception:  # noqa: BLE001 - a crashing predicate means "not ok"
                return False
        return True


def confidence_from_logprobs(content: str, raw: dict[str, Any]) -> float | None:
    """Geometric-mean token probability, exp(mean logprob), when the response carries logprobs."""
    try:
        items = raw["choices"][0]["logprobs"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    lps = [i["logprob"] for i in items or [] if isinstance(i, dict) and i.get("logprob") is not None]
    if not lps:
        return None
    return math.exp(sum(lps) / len(lps))


def confidence_from_field(key: str = "confidence") -> ConfidenceHook:
    """Confidence the model reports itself, as `key` in a JSON answer (clamped to [0, 1])."""

    def hook(content: str, raw: dict[str, Any]) -> float | None:
        try:
            value = json.loads(content).get(key)
            return None if value is None else min(1.0, max(0.0, float(value)))
        except (ValueError, AttributeError, TypeError):
            return None

    return hook


def default_confidence(content: str, raw: dict[str, Any]) -> float | None:
    return confidence_from_logprobs(content, raw)
