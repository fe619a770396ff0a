"""OTLP attribute values to Python, and the map from attribute names to typed span columns.

Three vocabularies land in the same columns: the current OpenTelemetry GenAI conventions, the
deprecated GenAI names still emitted in the wild, and OpenInference's `llm.*`. When a span carries
several names for one column, the lowest rank (the most current name) wins.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core import semconv as sc


def any_value(v: Any) -> Any:
    """An OTLP AnyValue as a plain Python value (bytes become hex)."""
    which = v.WhichOneof("value")
    if which == "string_value":
        return v.string_value
    if which == "int_value":
        return v.int_value
    if which == "double_value":
        return v.double_value
    if which == "bool_value":
        return v.bool_value
    if which == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return v.bytes_value.hex()
    return None


class WrongType(ValueError):
    pass


def to_int(value: Any, bits: int = 64) -> int:
    if isinstance(value, bool):
        raise WrongType("a boolean, expected an integer")
    result = None
    if isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    elif isinstance(value, str):
        try:
            result = int(value.strip())
        except ValueError:
            pass
    if result is None:
        raise WrongType(f"{type(value).__name__} {str(value)[:40]!r}, expected an integer")
    if not -(2 ** (bits - 1)) <= result < 2 ** (bits - 1):
        raise WrongType(f"{result} is out of range for a {bits}-bit integer")
    return result


def to_int32(value: Any) -> int:
    return to_int(value, 32)


def to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise WrongType("a boolean, expected a number")
    result = None
    if isinstance(value, (int, float)):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            pass
    if result is None:
        raise WrongType(f"{type(value).__name__} {str(value)[:40]!r}, expected a number")
    if not math.isfinite(result):
        raise WrongType(f"{result}, expected a finite number")
    return result


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise WrongType(f"{type(value).__name__} {str(value)[:40]!r}, expected a boolean")


def to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def model_from_invocation_parameters(value: Any) -> str:
    """OpenInference records the request's parameters as JSON; its `model` is the request model."""
    try:
        params = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        raise WrongType("not a JSON object") from None
    if not isinstance(params, dict) or not isinstance(params.get("model"), str):
        raise WrongType("a JSON object without a model")
    return params["model"]


@dataclass(frozen=True)
class Target:
    column: str
    convert: Callable[[Any], Any]
    rank: int = 0      # 0 = current convention; higher = older or foreign vocabulary
    keep: bool = False  # also keep the raw attribute in the JSON column


def _t(column: str, convert: Callable[[Any], Any] = to_str, rank: int = 0, keep: bool = False) -> Target:
    return Target(column, convert, rank, keep)


# attribute name -> the typed columns it fills
SPAN_ATTRIBUTE_MAP: dict[str, tuple[Target, ...]] = {
    sc.GEN_AI_OPERATION_NAME: (_t("operation"),),
    "llm.request.type": (_t("operation", rank=2),),               # OpenLLMetry
    sc.GEN_AI_PROVIDER_NAME: (_t("provider"),),
    "gen_ai.system": (_t("provider", rank=1),),                   # deprecated
    "llm.provider": (_t("provider", rank=2),),                    # OpenInference
    "llm.system": (_t("provider", rank=3),),                      # OpenInference
    sc.GEN_AI_REQUEST_MODEL: (_t("request_model"),),
    sc.GEN_AI_RESPONSE_MODEL: (_t("response_model"),),
    "llm.model_name": (_t("request_model", rank=2), _t("response_model", rank=2)),
    "llm.invocation_parameters": (_t("request_model", model_from_invocation_parameters, rank=3, keep=True),),
    sc.GEN_AI_USAGE_INPUT_TOKENS: (_t("input_tokens", to_int),),
    "gen_ai.usage.prompt_tokens": (_t("input_tokens", to_int, 1),),
    "llm.token_count.prompt": (_t("input_tokens", to_int, 2),),
    sc.GEN_AI_USAGE_OUTPUT_TOKENS: (_t("output_tokens", to_int),),
    "gen_ai.usage.completion_tokens": (_t("output_tokens", to_int, 1),),
    "llm.token_count.completion": (_t("output_tokens", to_int, 2),),
    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: (_t("cache_read_tokens", to_int),),
    "gen_ai.usage.cache_read_input_tokens": (_t("cache_read_tokens", to_int, 1),),
    "llm.token_count.prompt_details.cache_read": (_t("cache_read_tokens", to_int, 2),),
    sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: (_t("reasoning_tokens", to_int),),
    "gen_ai.usage.reasoning_tokens": (_t("reasoning_tokens", to_int, 1),),
    "llm.token_count.completion_details.reasoning": (_t("reasoning_tokens", to_int, 2),),
    sc.GEN_AI_RESPONSE_FINISH_REASONS: (_t("finish_reasons"),),
    "llm.finish_reason": (_t("finish_reasons", rank=2),),
    sc.GEN_AI_RESPONSE_ID: (_t("response_id"),),
    sc.ERROR_TYPE: (_t("error_type"),),
    sc.HTTP_RESPONSE_STATUS_CODE: (_t("http_status", to_int32),),
    "http.status_code": (_t("http_status", to_int32, 1),),
    sc.REQUEST_ID: (_t("request_id"),),
    sc.MODEL_VERSION: (_t("model_version"),),
    sc.ROUTE: (_t("route"),),
    sc.ARM: (_t("arm"),),
    sc.CONFIDENCE: (_t("confidence", to_float),),
    sc.QUALITY_SCORE: (_t("quality_score", to_float),),
    sc.FORMAT_OK: (_t("format_ok", to_bool),),
    sc.FALLBACK_LEVEL: (_t("fallback_level"),),
    sc.RETRY_COUNT: (_t("retry_count", to_int32),),
    sc.BREAKER_STATE: (_t("breaker_state"),),
    sc.COST_USD: (_t("cost_usd", to_float),),
    sc.INJECTION_SCORE: (_t("injection_score", to_float),),
    sc.USER_ID: (_t("user_id"),),
    "user.id": (_t("user_id", rank=1),),
    "enduser.id": (_t("user_id", rank=2),),
    sc.TENANT: (_t("tenant"),),
}

# Attributes that mark a span as a model call even when no model name is set.
LLM_MARKERS = frozenset({sc.GEN_AI_OPERATION_NAME, sc.GEN_AI_PROVIDER_NAME, "gen_ai.system",
                         sc.GEN_AI_REQUEST_MODEL, "llm.model_name", "llm.request.type"})

OPENINFERENCE_KIND = "openinference.span.kind"
# OpenInference span kinds -> GenAI operation names.
OPENINFERENCE_OPERATIONS = {"LLM": "chat", "EMBEDDING": "embeddings", "TOOL": "execute_tool",
                            "AGENT": "invoke_agent", "RETRIEVER": "retrieve", "RERANKER": "rerank"}
OPENINFERENCE_LLM_KINDS = frozenset({"LLM", "EMBEDDING"})

# Message content: kept out of `attributes`, redacted, stored in span_content.
INPUT_CONTENT_KEYS = frozenset({sc.GEN_AI_INPUT_MESSAGES, "gen_ai.prompt", "input.value",
                                "gen_ai.system_instructions"})
OUTPUT_CONTENT_KEYS = frozenset({sc.GEN_AI_OUTPUT_MESSAGES, "gen_ai.completion", "output.value"})
INPUT_CONTENT_PREFIXES = ("gen_ai.prompt.", "llm.input_messages.", "llm.prompts.")
OUTPUT_CONTENT_PREFIXES = ("gen_ai.completion.", "llm.output_messages.")
CONTENT_EVENTS = {"gen_ai.content.prompt": ("gen_ai.prompt", "input"),
                  "gen_ai.content.completion": ("gen_ai.completion", "output")}


def content_direction(key: str) -> str | None:
    """'input' or 'output' when the attribute carries message content, else None."""
    if key in INPUT_CONTENT_KEYS or key.startswith(INPUT_CONTENT_PREFIXES):
        return "input"
    if key in OUTPUT_CONTENT_KEYS or key.startswith(OUTPUT_CONTENT_PREFIXES):
        return "output"
    return None
