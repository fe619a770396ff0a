"""Run the real `openai` client, instrumented by OpenLLMetry or OpenInference, against the fake.

Run in its own process (instrumentors patch `openai` globally):
    python instrumented_openai.py openllmetry|openinference OTLP_TRACES_URL SERVICE_NAME
Makes four calls: non-streaming, streaming with usage, a 429 and a 500 (no client retries).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))

import openai  # noqa: E402
from fakes.openai_server import Behavior, FakeOpenAI  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402


def main(kind: str, endpoint: str, service: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    if kind == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    else:
        from openinference.instrumentation.openai import OpenAIInstrumentor
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    with FakeOpenAI() as fake:
        fake.script(Behavior("ok", content="Paris.", prompt_tokens=21, completion_tokens=3),
                    Behavior("ok", content="Streaming works fine.", prompt_tokens=30, completion_tokens=5),
                    Behavior("rate_limit", retry_after=1), Behavior("server"))
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini",
                                       messages=[{"role": "user", "content": "Capital of France?"}])
        stream = client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                stream_options={"include_usage": True},
                                                messages=[{"role": "user", "content": "Stream please"}])
        for _ in stream:
            pass
        for _ in range(2):
            try:
                client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
            except openai.APIStatusError:
                pass
    provider.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:4])
