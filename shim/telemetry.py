"""One-line OpenTelemetry setup for services using the shim, and the tracer/meter/logger it uses.

Spans written by the shim (see shim.engine for the exact shape): one CLIENT span per logical call
named "{operation} {model}" carrying the answer's gen_ai.* and aiwatch.* attributes, and one child
span per attempt with the same name plus aiwatch.attempt (1-based). Count calls, tokens and cost
on spans WITHOUT aiwatch.attempt; attempts are for retry and latency analysis.
The SDK is imported only inside setup_telemetry, so `import shim` stays light.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import _logs as otel_logs
from opentelemetry import metrics, trace

SCOPE = "aiwatch.shim"


_tracer: trace.Tracer | None = None
_logger: otel_logs.Logger | None = None


def tracer() -> trace.Tracer:
    # Cached: get_tracer costs tens of microseconds per call. Before a provider is set this is a
    # proxy that follows the global provider once it is set, so caching early is safe.
    global _tracer
    if _tracer is None:
        _tracer = trace.get_tracer(SCOPE)
    return _tracer


def logger() -> otel_logs.Logger:
    global _logger
    if _logger is None:
        _logger = otel_logs.get_logger(SCOPE)
    return _logger


def meter() -> metrics.Meter:
    return metrics.get_meter(SCOPE)


def setup_telemetry(
    endpoint: str | None = None,
    service_name: str | None = None,
    service_version: str | None = None,
    environment: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    logs: bool = True,
    metrics_export: bool = False,
    span_exporter: Any = None,
    log_exporter: Any = None,
    batch: bool = True,
    set_global: bool = True,
) -> tuple[Any, Any]:
    """Configure TracerProvider + OTLP/HTTP span exporter (and LoggerProvider + OTLP log exporter).

    endpoint is the OTLP/HTTP base URL (e.g. "http://aiwatch:4318"); it falls back to
    OTEL_EXPORTER_OTLP_ENDPOINT, then to the exporter default. Pass span_exporter/log_exporter to
    use others (tests pass in-memory ones). Returns (tracer_provider, logger_provider).
    """
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    attrs: dict[str, str] = {}
    name = service_name or os.environ.get("OTEL_SERVICE_NAME")
    if name:
        attrs["service.name"] = name
    if service_version:
        attrs["service.version"] = service_version
    env = environment or os.environ.get("AIWATCH_ENVIRONMENT")
    if env:
        attrs["deployment.environment.name"] = env
    resource = Resource.create(attrs)
    base = (endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").rstrip("/")

    if span_exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        span_exporter = OTLPSpanExporter(endpoint=f"{base}/v1/traces" if base else None, headers=headers)
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter) if batch else SimpleSpanProcessor(span_exporter))

    logger_provider = None
    if logs:
        if log_exporter is None:
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

            log_exporter = OTLPLogExporter(endpoint=f"{base}/v1/logs" if base else None, headers=headers)
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(log_exporter) if batch else SimpleLogRecordProcessor(log_exporter))

    if metrics_export:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        reader = PeriodicExportingMetricReader(OTLPMetricExporter(
            endpoint=f"{base}/v1/metrics" if base else None, headers=headers))
        if set_global:
            metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))

    if set_global:
        trace.set_tracer_provider(tracer_provider)
        if logger_provider is not None:
            otel_logs.set_logger_provider(logger_provider)
        from shim import audit

        audit.configure(service=name or "unknown_service", otlp=logger_provider is not None)
    return tracer_provider, logger_provider
