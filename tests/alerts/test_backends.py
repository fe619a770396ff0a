"""The alert stage on both store backends (DuckDB, and ClickHouse's engine in-process with chdb):
evaluation -> firing -> delivery to loopback receivers, retries, resolve ordering and silences run
the same tests, with the `store` fixture opened the way the server opens each backend."""
from __future__ import annotations

import pytest
from test_delivery import (  # noqa: F401 - collected here again, over both backends
    rx,
    test_4xx_is_not_retried_and_the_body_is_logged,
    test_gives_up_after_max_attempts,
    test_page_slack_and_webhook_then_resolve,
    test_resolve_waits_for_its_trigger,
    test_retries_5xx_and_honours_retry_after,
)
from test_timing import (  # noqa: F401
    test_silence_mutes_until_it_expires,
    test_silence_window_in_the_future_does_not_mute,
)

from tests.backends import BACKENDS, opened


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    yield from opened(request.param, tmp_path)
