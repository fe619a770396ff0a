"""A tiny shimmed service: `python shimmed_service.py AIWATCH_URL SERVICE` makes one call
(a 429, then success) through the shim against the loopback fake and records feedback on it.
Prints the request id. Runs in its own process because setup_telemetry sets global providers."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fakes.openai_server import Behavior, FakeOpenAI  # noqa: E402

from shim import Backend, ChatClient, RetryPolicy, record_feedback, setup_telemetry  # noqa: E402


def main(url: str, service: str) -> None:
    tracer_provider, logger_provider = setup_telemetry(endpoint=url, service_name=service, service_version="3.1.0",
                                                       environment="test")
    with FakeOpenAI() as fake:
        fake.script(Behavior("rate_limit", retry_after=0),
                    Behavior("ok", content="Hi from the fake", prompt_tokens=40, completion_tokens=9))
        client = ChatClient(Backend("openai", "gpt-4o-mini", base_url=fake.base_url, api_key="sk-test",
                                    version="2025-03"), retry=RetryPolicy(max_attempts=3, base_delay=0.01),
                            route="answer")
        result = client.chat([{"role": "user", "content": "mail me at jane@example.com"}], user="u-1")
    record_feedback(result.request_id, action="rejected", reviewer="rita", reason="tone", route="answer")
    tracer_provider.shutdown()
    logger_provider.shutdown()
    print(result.request_id)


if __name__ == "__main__":
    main(*sys.argv[1:3])
