"""A conversion worker does its lazy imports before it takes requests, then freezes what start-up
left alive (full garbage collections during a request's conversion scanned all of it).

Found by bench/hostile.py: the first request each worker converted imported pandas (pyarrow loads it
on its first table), seconds on a loaded machine, and the requests queued behind it waited too.
"""
from __future__ import annotations

import gc
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


def gc_state(body: bytes) -> tuple[int, int]:
    """Runs in the worker: (objects frozen at start-up, objects a full collection scans after a request)."""
    _convert_in_worker("traces", body, PROTOBUF, None, 1 << 20, AttributeLimits())
    return gc.get_freeze_count(), len(gc.get_objects())


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


def test_a_worker_freezes_its_start_up_objects():
    """Modules, compiled rules and the prefilter are out of the collector's reach in a worker
    (bench/ingest.py: about 10 of the ~60 CPU-us a span costs in a worker went to full collections
    scanning them); what a request allocates is still collected."""
    settings = Settings()
    body = span_request([{"name": "s", "attributes": {"gen_ai.request.model": "m"}}]).SerializeToString()
    pool = ConversionPool(1, settings.content_policy(), settings.redaction(), settings.max_body_bytes)
    try:
        assert pool._pool is not None
        frozen, tracked = pool._pool.submit(gc_state, body).result(120)
        assert frozen > 20_000 and tracked < frozen / 4
    finally:
        pool.close()
