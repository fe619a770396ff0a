"""Attribute and event names shared by the shim (which writes them) and the collectors (which read them).

GenAI names follow the OpenTelemetry GenAI semantic conventions; `aiwatch.*` names are ours.
This module is the contract between the two sides: change a name here and both follow.
"""

# --- OpenTelemetry GenAI semantic conventions (current) ---
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
ERROR_TYPE = "error.type"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
SERVER_ADDRESS = "server.address"

# --- aiwatch attributes set by the shim ---
REQUEST_ID = "aiwatch.request.id"
ROUTE = "aiwatch.route"
MODEL_VERSION = "aiwatch.model.version"
ARM = "aiwatch.arm"                      # "baseline" | "canary" | "shadow"
CONFIDENCE = "aiwatch.confidence"        # float in [0, 1]
QUALITY_SCORE = "aiwatch.quality.score"  # float in [0, 1]
FORMAT_OK = "aiwatch.format_ok"          # bool
FALLBACK_LEVEL = "aiwatch.fallback.level"  # one of FALLBACK_LEVELS
RETRY_COUNT = "aiwatch.retry.count"      # int: attempts - 1
BREAKER_STATE = "aiwatch.breaker.state"  # "closed" | "open" | "half_open"
COST_USD = "aiwatch.cost.usd"            # float
COST_PRICE = "aiwatch.cost.price"        # which price was applied: source and version (core/pricing.py)
INJECTION_SCORE = "aiwatch.injection.score"  # float in [0, 1]
USER_ID = "aiwatch.user.id"
TENANT = "aiwatch.tenant"
ROUTING_DECISION = "aiwatch.routing.decision"
ROUTING_REASON = "aiwatch.routing.reason"
INPUT_LANGUAGE = "aiwatch.input.language"  # optional input features a service records: watched
INPUT_TOPIC = "aiwatch.input.topic"        # for drift by default (analysis drift_columns)
ATTEMPT = "aiwatch.attempt"              # on per-attempt child spans, 1-based
ERROR_CLASS = "aiwatch.error.class"      # shim's error classification

FALLBACK_LEVELS = ("primary", "fallback", "rule_based", "human")
ARMS = ("baseline", "canary", "shadow")
ERROR_CLASSES = (
    "rate_limit", "server", "timeout", "connection",
    "validation", "token_limit", "content_filter", "auth",
)
TRANSIENT_ERROR_CLASSES = frozenset({"rate_limit", "server", "timeout", "connection"})

# --- Log events (OTLP logs and JSONL audit files): the `event.name` attribute ---
EVENT_NAME = "event.name"
EVENT_AUDIT = "aiwatch.audit"
EVENT_FEEDBACK = "aiwatch.feedback"
FEEDBACK_ACTIONS = ("accepted", "modified", "rejected")
# Span event names for breaker transitions.
EVENT_BREAKER_TRANSITION = "aiwatch.breaker.transition"

# Audit and feedback events carry these attributes (OTLP log attributes, or the keys of a JSONL
# line, which also has "time" (RFC 3339 or unix nanoseconds) and "service").
LATENCY_MS = "aiwatch.latency_ms"
DECISION_PATH = "aiwatch.decision_path"  # e.g. "route:self_hosted>primary:timeout>fallback:ok"
AUDIT_INPUT = "aiwatch.input"            # redacted before it leaves the process
AUDIT_OUTPUT = "aiwatch.output"          # redacted before it leaves the process
FEEDBACK_ACTION = "aiwatch.feedback.action"
FEEDBACK_REVIEWER = "aiwatch.feedback.reviewer"
FEEDBACK_REASON = "aiwatch.feedback.reason"
