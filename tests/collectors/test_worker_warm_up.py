"""A conversion worker does its lazy imports before it takes requests.

Found by bench/hostile.py: the first request each worker converted imported pandas (pyarrow loads it
on its first table), seconds on a loaded machine, and the requests queued behind it waited too.
"""
from __future__ import annotations

import sys

from otlp_builders import log_request, span_request

from aiwatch.config import Settings
from collectors.decode import PROTOBUF
from collectors.pipeline import ConversionPool, _convert_in_worker
from collectors.traces import AttributeLimits


def imports_during_first_requests(bodies: dict[str, bytes]) -> list[str]:
    """Runs in the worker: the modules its first requests imported."""
    before = set(sys.modules)
    for signal, body in bodies.items():
        _convert_in_worker(signal, body, PROTOBUF, None, 1 << 20, AttributeLimits())
    return sorted(set(sys.modules) - before)


def test_a_fresh_worker_imports_nothing_on_its_first_requests():
    settings = Settings()
    bodies = {"traces": span_request([{"name": "first", "attributes": {"gen_ai.request.model": "m"}}])
              .SerializeToString(),
              "logs": log_request([{"note": "first"}]).SerializeToString()}
    pool = ConversionPool(1, settings.content_policy(), settings.redaction(), settings.max_body_bytes)
    try:
        assert pool._pool is not None
        assert pool._pool.submit(imports_during_first_requests, bodies).result(120) == []
    finally:
        pool.close()
