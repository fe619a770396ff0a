"""Seeded generator of realistic AI-service telemetry with injected incidents.

It draws every request of the scenario period at once with numpy (Poisson arrivals with a daily
cycle, lognormal latency, token counts, cost, confidence, quality, format, retries, fallbacks,
human review), applies the scenario's incidents as masks, and encodes the result as real OTLP
messages (spans, audit and feedback logs, resource metrics) — the same bytes a shimmed service
would send, so loading the sample exercises the collectors.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from core import semconv as sc
from core.clock import utcnow
from sample_data.scenario import Scenario

LANGUAGES = np.array(["en", "es", "de", "fr", "pt", "ja"])
BASE_LANGUAGE_P = np.array([0.78, 0.08, 0.06, 0.05, 0.02, 0.01])
DRIFT_LANGUAGE_P = np.array([0.40, 0.22, 0.08, 0.06, 0.18, 0.06])
TOPICS = np.array(["billing", "account", "technical", "shipping", "other", "promo"])
BASE_TOPIC_P = np.array([0.30, 0.25, 0.25, 0.15, 0.05, 0.0])
DRIFT_TOPIC_P = np.array([0.15, 0.10, 0.15, 0.10, 0.05, 0.45])
REVIEW_SHARE = 0.25           # share of answers a human reviews
# Background failures outside incidents, as real providers fail: (kind, HTTP status, share).
# Rate limits and 5xx answer fast; a timeout holds the call for the client's deadline.
BACKGROUND_FAILURES = (("rate_limited", 429, 0.45), ("server_error", 500, 0.30), ("timeout", 0, 0.25))
TIMEOUT_MS = 60_000
REASONS = np.array(["wrong facts", "tone", "incomplete", "policy", "wrong category"])
PROMPTS = ["Where is my order {n}?", "Please reset access for jane.doe{n}@example.com",
           "Summarise ticket {n} for the handover", "Classify claim {n}: water damage, kitchen",
           "Call me back on +1 415 555 01{n:02d} about my invoice"]


@dataclass
class Requests:
    """Column arrays, one entry per model call."""
    t_ns: np.ndarray
    service: np.ndarray
    service_version: np.ndarray
    route: np.ndarray
    model: np.ndarray              # the model the service asked for
    response_model: np.ndarray     # the name the provider answered with ("" on failure: none)
    provider: np.ndarray
    version: np.ndarray
    arm: np.ndarray
    latency_ms: np.ndarray
    ok: np.ndarray
    error_type: np.ndarray
    http_status: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    cost: np.ndarray
    confidence: np.ndarray
    quality: np.ndarray
    format_ok: np.ndarray
    fallback: np.ndarray
    retries: np.ndarray
    language: np.ndarray
    topic: np.ndarray
    user: np.ndarray
    review: np.ndarray          # "" (not reviewed) | accepted | modified | rejected

    def __len__(self) -> int:
        return len(self.t_ns)


def draw(scenario: Scenario, start: datetime, seed: int = 7) -> Requests | None:
    """Every call of the scenario's period from `start`; None when the period has none."""
    rng = np.random.default_rng(seed)
    minutes = int(scenario.days * 24 * 60)
    start_ns = int(start.replace(tzinfo=UTC).timestamp() * 1e9) if start.tzinfo is None \
        else int(start.timestamp() * 1e9)
    minute_idx = np.arange(minutes)
    first_minute_of_day = (start_ns // (60 * 10**9)) % (24 * 60)
    hour_of_day = ((first_minute_of_day + minute_idx) / 60) % 24
    daily = 0.65 + 0.35 * np.sin((hour_of_day - 8) / 24 * 2 * np.pi)   # busiest mid-afternoon UTC
    parts: list[dict[str, np.ndarray]] = []
    for svc in scenario.services:
        for route in svc.routes:
            for m in route.models:
                rate = svc.requests_per_minute * route.weight * m.traffic_share * daily
                counts = rng.poisson(rate)
                mins = np.repeat(minute_idx, counts)
                n = len(mins)
                if n == 0:
                    continue
                t_ns = start_ns + (mins * 60 + rng.uniform(0, 60, n)) * 1e9
                parts.append(_draw_calls(rng, n, t_ns.astype(np.int64), mins, svc, route, m, scenario))
    if not parts:
        return None
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.argsort(cols["t_ns"], kind="stable")
    cols = {k: v[order] for k, v in cols.items()}
    cols.pop("minute")
    return Requests(**cols)


def draw_one(scenario: Scenario, service: str, route: str, minute: int, rng: np.random.Generator) -> dict[str, Any]:
    """One call of `service` / `route` drawn as `draw` draws it at scenario minute `minute`, with the
    incidents running then (the live demo's calls continue the sample where it ends)."""
    svc = next(s for s in scenario.services if s.name == service)
    r = next(x for x in svc.routes if x.name == route)
    shares = np.array([m.traffic_share for m in r.models])
    m = r.models[int(rng.choice(len(r.models), p=shares / shares.sum()))]
    cols = _draw_calls(rng, 1, np.zeros(1, np.int64), np.array([minute]), svc, r, m, scenario)
    return {k: v[0] for k, v in cols.items()}


def _draw_calls(rng, n, t_ns, mins, svc, route, m, scenario) -> dict[str, np.ndarray]:
    def full(value, dtype=object):
        return np.full(n, value, dtype=dtype)

    latency = rng.lognormal(np.log(m.latency_median_ms), m.latency_sigma, n)
    input_tokens = np.maximum(rng.lognormal(np.log(route.prompt_tokens_median), 0.4, n), 20)
    output_tokens = np.maximum(rng.lognormal(np.log(route.output_tokens_median), 0.5, n), 1)
    confidence = rng.beta(9, 2, n)
    quality = rng.beta(12, 1.8, n)
    format_ok = rng.random(n) > 0.01
    lang = LANGUAGES[rng.choice(len(LANGUAGES), n, p=BASE_LANGUAGE_P)]
    topic = TOPICS[rng.choice(len(TOPICS), n, p=BASE_TOPIC_P)]
    # Rate limits are mostly absorbed by retries; what is left fails as BACKGROUND_FAILURES says.
    u = rng.random(n)
    retries = np.where(u < 0.03, 1, 0) + np.where(u < 0.005, 1, 0)
    ok = np.ones(n, bool)
    error_type = full("")
    http_status = np.full(n, 200, np.int32)
    fallback = full("primary")
    fail = rng.random(n) < svc.background_errors
    kinds = rng.choice(len(BACKGROUND_FAILURES), n, p=[f[2] for f in BACKGROUND_FAILURES])
    for j, (kind, status, _) in enumerate(BACKGROUND_FAILURES):
        hit = fail & (kinds == j)
        ok[hit], error_type[hit], http_status[hit] = False, kind, status
        latency[hit] = TIMEOUT_MS if kind == "timeout" else rng.lognormal(np.log(250), 0.5, int(hit.sum()))
    fallback[fail] = "fallback"
    review_p = np.full(n, route.override_rate)
    for inc in scenario.incidents:
        if not inc.targets(svc.name, route.name, m.name):
            continue
        hit = (mins >= inc.start_min) & (mins < inc.end_min)
        k = int(hit.sum())
        if not k:
            continue
        if inc.kind == "latency_spike":
            latency[hit] *= inc.magnitude
        elif inc.kind == "error_burst":
            burst = hit & (rng.random(n) < inc.magnitude)
            ok[burst], error_type[burst], http_status[burst] = False, "server", 500
            retries[burst], fallback[burst] = 2, "fallback"
        elif inc.kind == "total_outage":
            ok[hit], error_type[hit], http_status[hit] = False, "auth", 401
            latency[hit] = rng.lognormal(np.log(60), 0.2, k)
            fallback[hit] = "rule_based"
        elif inc.kind == "cost_spike":
            (output_tokens if inc.tokens == "output" else input_tokens)[hit] *= inc.magnitude
        elif inc.kind == "confidence_drop":
            confidence[hit] = np.clip(confidence[hit] - inc.magnitude, 0, 1)
        elif inc.kind == "format_drop":
            format_ok[hit & (rng.random(n) < inc.magnitude)] = False
        elif inc.kind == "input_drift":
            input_tokens[hit] *= 1.8
            lang[hit] = LANGUAGES[rng.choice(len(LANGUAGES), k, p=DRIFT_LANGUAGE_P)]
            topic[hit] = TOPICS[rng.choice(len(TOPICS), k, p=DRIFT_TOPIC_P)]
        elif inc.kind == "override_rise":
            review_p[hit] = inc.magnitude
    input_tokens = input_tokens.astype(np.int64)
    output_tokens = np.where(ok, output_tokens, 0).astype(np.int64)
    cost = np.where(ok, input_tokens / 1000 * m.input_per_1k + output_tokens / 1000 * m.output_per_1k, 0.0)
    reviewed = ok & (rng.random(n) < REVIEW_SHARE)
    overridden = reviewed & (rng.random(n) < review_p)
    review = np.where(reviewed, "accepted", "").astype(object)
    review[overridden] = np.where(rng.random(int(overridden.sum())) < 0.6, "modified", "rejected")
    users = np.array([f"user-{i:04d}" for i in range(400)], dtype=object)
    return {
        "t_ns": t_ns, "minute": mins, "service": full(svc.name), "service_version": full(svc.version),
        "route": full(route.name), "model": full(m.name), "response_model": np.where(ok, m.snapshot or m.name, ""),
        "provider": full(m.provider), "version": full(m.version),
        "arm": full(m.arm), "latency_ms": latency, "ok": ok, "error_type": error_type, "http_status": http_status,
        "input_tokens": input_tokens, "output_tokens": output_tokens, "cost": cost,
        "confidence": np.where(ok, confidence, np.nan), "quality": np.where(ok, quality, np.nan),
        "format_ok": format_ok & ok, "fallback": fallback, "retries": retries, "language": lang.astype(object),
        "topic": topic.astype(object), "user": users[rng.zipf(1.6, n) % len(users)], "review": review,
    }


# --- OTLP encoding ---

def _kv(key: str, value) -> KeyValue:
    if isinstance(value, (bool, np.bool_)):
        return KeyValue(key=key, value=AnyValue(bool_value=bool(value)))
    if isinstance(value, (int, np.integer)):
        return KeyValue(key=key, value=AnyValue(int_value=int(value)))
    if isinstance(value, (float, np.floating)):
        return KeyValue(key=key, value=AnyValue(double_value=float(value)))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _resource(target, service: str, version: str) -> None:
    target.resource.attributes.extend([_kv("service.name", service), _kv("service.version", version),
                                       _kv("deployment.environment.name", "production")])


@dataclass
class Batch:
    traces: ExportTraceServiceRequest
    logs: ExportLogsServiceRequest
    spans: int
    log_records: int


def encode(req: Requests, chunk: int = 1000, seed: int = 7) -> Iterator[Batch]:
    """OTLP trace and log requests, `chunk` model calls at a time, grouped by service."""
    rng = np.random.default_rng(seed + 1)
    ids = rng.bytes(len(req) * 32)
    for lo in range(0, len(req), chunk):
        hi = min(lo + chunk, len(req))
        traces, logs = ExportTraceServiceRequest(), ExportLogsServiceRequest()
        scopes, log_scopes = {}, {}
        n_logs = 0
        for i in range(lo, hi):
            svc = req.service[i]
            if svc not in scopes:
                rs = traces.resource_spans.add()
                _resource(rs, svc, req.service_version[i])
                scopes[svc] = rs.scope_spans.add(scope={"name": "aiwatch.shim", "version": "0.1.0"})
                rl = logs.resource_logs.add()
                _resource(rl, svc, req.service_version[i])
                log_scopes[svc] = rl.scope_logs.add(scope={"name": "aiwatch.shim.audit"})
            n_logs += _encode_call(req, i, ids[i * 32:(i + 1) * 32], scopes[svc], log_scopes[svc])
        yield Batch(traces, logs, 2 * (hi - lo), n_logs)


def _encode_call(req: Requests, i: int, raw_ids: bytes, scope, log_scope) -> int:
    trace_id, root_id, llm_id = raw_ids[:16], raw_ids[16:24], raw_ids[24:32]
    request_id = str(uuid.UUID(bytes=raw_ids[:16]))
    start = int(req.t_ns[i])
    latency_ns = int(req.latency_ms[i] * 1e6)
    overhead_ns = 3_000_000
    ok = bool(req.ok[i])
    model, route = req.model[i], req.route[i]
    status = Status(code=Status.STATUS_CODE_OK if ok else Status.STATUS_CODE_ERROR,
                    message="" if ok else f"{req.error_type[i]} ({req.http_status[i]})")
    root = scope.spans.add(trace_id=trace_id, span_id=root_id, name=f"POST /{route}", kind=Span.SPAN_KIND_SERVER,
                           start_time_unix_nano=start, end_time_unix_nano=start + latency_ns + 2 * overhead_ns,
                           status=status)
    root.attributes.extend([_kv("http.request.method", "POST"), _kv("http.route", f"/{route}"),
                            _kv("http.response.status_code", 200 if ok else 502)])
    llm = scope.spans.add(trace_id=trace_id, span_id=llm_id, parent_span_id=root_id, name=f"chat {model}",
                          kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=start + overhead_ns,
                          end_time_unix_nano=start + overhead_ns + latency_ns, status=status)
    attrs = [
        _kv(sc.GEN_AI_OPERATION_NAME, "chat"), _kv(sc.GEN_AI_PROVIDER_NAME, req.provider[i]),
        _kv(sc.GEN_AI_REQUEST_MODEL, model), _kv(sc.REQUEST_ID, request_id), _kv(sc.ROUTE, route),
        _kv(sc.MODEL_VERSION, req.version[i]), _kv(sc.ARM, req.arm[i]), _kv(sc.USER_ID, req.user[i]),
        _kv(sc.GEN_AI_USAGE_INPUT_TOKENS, req.input_tokens[i]), _kv(sc.RETRY_COUNT, req.retries[i]),
        _kv(sc.FALLBACK_LEVEL, req.fallback[i]), _kv(sc.BREAKER_STATE, "closed"),
        _kv(sc.INPUT_LANGUAGE, req.language[i]), _kv(sc.INPUT_TOPIC, req.topic[i]),
        _kv(sc.HTTP_RESPONSE_STATUS_CODE, int(req.http_status[i])) if req.http_status[i] else None,
    ]
    if ok:
        attrs += [_kv(sc.GEN_AI_RESPONSE_MODEL, req.response_model[i]),
                  _kv(sc.GEN_AI_USAGE_OUTPUT_TOKENS, req.output_tokens[i]),
                  _kv(sc.GEN_AI_RESPONSE_FINISH_REASONS, "stop"), _kv(sc.COST_USD, round(float(req.cost[i]), 8)),
                  _kv(sc.CONFIDENCE, round(float(req.confidence[i]), 4)),
                  _kv(sc.QUALITY_SCORE, round(float(req.quality[i]), 4)), _kv(sc.FORMAT_OK, req.format_ok[i])]
    else:
        attrs += [_kv(sc.ERROR_TYPE, req.error_type[i]), _kv(sc.FORMAT_OK, False)]
    llm.attributes.extend(a for a in attrs if a is not None)
    prompt = PROMPTS[i % len(PROMPTS)].format(n=i % 100)
    audit = log_scope.log_records.add(time_unix_nano=start + latency_ns, trace_id=trace_id, span_id=llm_id,
                                      severity_text="INFO")
    audit.attributes.extend([
        _kv(sc.EVENT_NAME, sc.EVENT_AUDIT), _kv(sc.REQUEST_ID, request_id), _kv(sc.USER_ID, req.user[i]),
        _kv(sc.GEN_AI_REQUEST_MODEL, model), _kv(sc.MODEL_VERSION, req.version[i]), _kv(sc.ROUTE, route),
        _kv(sc.LATENCY_MS, round(float(req.latency_ms[i]), 2)),
        _kv(sc.DECISION_PATH, f"route:{route}>{req.fallback[i]}:{'ok' if ok else req.error_type[i]}"),
        _kv(sc.AUDIT_INPUT, prompt), _kv(sc.AUDIT_OUTPUT, "Here is what I found." if ok else ""),
    ])
    if not req.review[i]:
        return 1
    action = req.review[i]
    fb = log_scope.log_records.add(time_unix_nano=start + latency_ns + 120 * 10**9, trace_id=trace_id,
                                   severity_text="INFO")
    fb.attributes.extend([
        _kv(sc.EVENT_NAME, sc.EVENT_FEEDBACK), _kv(sc.REQUEST_ID, request_id), _kv(sc.FEEDBACK_ACTION, action),
        _kv(sc.FEEDBACK_REVIEWER, f"reviewer-{i % 7}"), _kv(sc.ROUTE, route), _kv(sc.GEN_AI_REQUEST_MODEL, model),
        _kv(sc.MODEL_VERSION, req.version[i]),
    ] + ([_kv(sc.FEEDBACK_REASON, str(REASONS[i % len(REASONS)]))] if action != "accepted" else []))
    return 2


def resource_metrics(scenario: Scenario, start: datetime, seed: int = 7,
                     step_s: int = 60) -> Iterator[ExportMetricsServiceRequest]:
    """CPU, GPU, memory and queue-depth gauges per service, one point a minute, an hour per request."""
    rng = np.random.default_rng(seed + 2)
    start_ns = int(start.replace(tzinfo=UTC).timestamp() * 1e9)
    points = int(scenario.days * 24 * 3600 / step_s)
    series = {}
    for svc in scenario.services:
        base = rng.uniform(0.25, 0.45)
        daily = 0.15 * np.sin((np.arange(points) * step_s / 3600 - 8) / 24 * 2 * np.pi)
        series[svc.name] = {
            "system.cpu.utilization": np.clip(base + daily + rng.normal(0, 0.03, points), 0, 1),
            "gpu.utilization": np.clip(base + 0.2 + daily + rng.normal(0, 0.05, points), 0, 1),
            "system.memory.utilization": np.clip(0.55 + rng.normal(0, 0.02, points), 0, 1),
            "queue.depth": np.maximum(rng.poisson(3 + 6 * (daily + 0.15), points), 0).astype(float),
        }
        for inc in scenario.incidents:
            if inc.service == svc.name and inc.kind == "latency_spike":
                lo, hi = inc.start_min * 60 // step_s, inc.end_min * 60 // step_s
                series[svc.name]["gpu.utilization"][lo:hi] = 0.99
                series[svc.name]["queue.depth"][lo:hi] *= 8
    per_request = 3600 // step_s
    for lo in range(0, points, per_request):
        msg = ExportMetricsServiceRequest()
        for svc in scenario.services:
            rm = msg.resource_metrics.add()
            _resource(rm, svc.name, svc.version)
            sm = rm.scope_metrics.add(scope={"name": "aiwatch.sample"})
            for name, values in series[svc.name].items():
                metric = sm.metrics.add(name=name, unit="1" if "utilization" in name else "{request}")
                for j in range(lo, min(lo + per_request, points)):
                    metric.gauge.data_points.add(time_unix_nano=start_ns + j * step_s * 10**9, as_double=values[j])
        yield msg


def period_start(scenario: Scenario, end: datetime | None = None) -> datetime:
    """Start of the period so that it ends at `end` (default now), on a whole minute (naive UTC)."""
    end = (end or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None, second=0, microsecond=0)
    return end - timedelta(days=scenario.days)


NULL = np.array(None, dtype=object)   # a missing value for np.where over object columns


def store_tables(req: Requests, seed: int = 7, received_at: datetime | None = None) -> dict[str, pa.Table]:
    """The model-call spans and review events as the collectors store them (store.schema tables),
    drawn straight from the arrays: the benchmarks' fast path (root spans, audit records and content
    are left out). tests/sample_data checks these rows against the OTLP path's."""
    import pyarrow as pa

    from store.schema import arrow_schema

    n = len(req)
    raw = np.frombuffer(np.random.default_rng(seed + 1).bytes(n * 32), np.uint8).reshape(n, 32) if n else \
        np.zeros((0, 32), np.uint8)
    hexed = np.array([row.tobytes().hex() for row in raw], dtype=object)
    trace_id = np.array([h[:32] for h in hexed], dtype=object)
    request_id = np.array([str(uuid.UUID(hex=h[:32])) for h in hexed], dtype=object)
    overhead_ns = 3_000_000
    start = (req.t_ns + overhead_ns).astype("datetime64[ns]").astype("datetime64[us]")
    latency_ns = (req.latency_ms * 1e6).astype(np.int64)
    ok = req.ok
    received = np.datetime64(received_at or utcnow(), "us")
    attrs = np.array([f'{{"aiwatch.input.language": "{lg}", "aiwatch.input.topic": "{tp}"}}'
                      for lg, tp in zip(req.language, req.topic)], dtype=object)
    spans = {
        "trace_id": trace_id, "span_id": np.array([h[48:] for h in hexed], dtype=object),
        "parent_span_id": np.array([h[32:48] for h in hexed], dtype=object),
        "name": np.array([f"chat {m}" for m in req.model], dtype=object), "kind": np.full(n, "client", object),
        "start_time": start,
        "end_time": (req.t_ns + overhead_ns + latency_ns).astype("datetime64[ns]").astype("datetime64[us]"),
        "duration_ms": latency_ns / 1e6, "status_code": np.where(ok, "ok", "error").astype(object),
        "status_message": np.where(ok, NULL, [f"{e} ({h})" for e, h in zip(req.error_type, req.http_status)]),
        "service_name": req.service, "service_version": req.service_version,
        "deployment_environment": np.full(n, "production", object), "scope_name": np.full(n, "aiwatch.shim", object),
        "is_llm": np.ones(n, bool), "operation": np.full(n, "chat", object), "provider": req.provider,
        "request_model": req.model, "response_model": np.where(ok, req.response_model, NULL),
        "input_tokens": req.input_tokens, "output_tokens": np.where(ok, req.output_tokens, NULL),
        "finish_reasons": np.where(ok, "stop", NULL), "error_type": np.where(ok, NULL, req.error_type),
        "http_status": np.where(req.http_status > 0, req.http_status, NULL), "request_id": request_id,
        "model_version": req.version, "route": req.route, "arm": req.arm,
        "confidence": np.where(ok, np.round(req.confidence, 4), NULL),
        "quality_score": np.where(ok, np.round(req.quality, 4), NULL), "format_ok": req.format_ok,
        "fallback_level": req.fallback, "retry_count": req.retries.astype(np.int32),
        "breaker_state": np.full(n, "closed", object),
        "cost_usd": np.where(ok, np.round(req.cost, 8), NULL), "user_id": req.user, "attributes": attrs,
        "received_at": np.full(n, received),
    }
    schema = arrow_schema("spans")
    span_table = pa.table({f.name: pa.array(spans[f.name], f.type, from_pandas=True) if f.name in spans
                           else pa.nulls(n, f.type) for f in schema}, schema=schema)
    reviewed = np.flatnonzero(req.review != "")
    feedback = {
        "time": (req.t_ns[reviewed] + (req.latency_ms[reviewed] * 1e6).astype(np.int64) + 120 * 10**9)
        .astype("datetime64[ns]").astype("datetime64[us]"),
        "service_name": req.service[reviewed], "request_id": request_id[reviewed], "trace_id": trace_id[reviewed],
        "action": req.review[reviewed], "reviewer": np.array([f"reviewer-{i % 7}" for i in reviewed], dtype=object),
        "reason": np.array([None if req.review[i] == "accepted" else str(REASONS[i % len(REASONS)])
                            for i in reviewed], dtype=object),
        "route": req.route[reviewed], "model": req.model[reviewed], "model_version": req.version[reviewed],
        "source": np.full(len(reviewed), "otlp", object),
    }
    fb_schema = arrow_schema("feedback")
    fb_table = pa.table({f.name: pa.array(feedback[f.name], f.type, from_pandas=True) if f.name in feedback
                         else pa.nulls(len(reviewed), f.type) for f in fb_schema}, schema=fb_schema)
    return {"spans": span_table, "feedback": fb_table}
