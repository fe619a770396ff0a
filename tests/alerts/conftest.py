"""Fixtures for alert tests (helpers live in harness.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import alerts  # noqa: F401 - the real package first, before tests/ (which holds tests/alerts) joins sys.path

sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402
from harness import FakeClock, Script  # noqa: E402

from alerts.engine import AlertEngine, StoreBackend  # noqa: E402
from alerts.rules import AlertsConfig  # noqa: E402


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def script_for(store, clock):
    def make(config: AlertsConfig) -> Script:
        return Script(AlertEngine(config, StoreBackend(store), store, clock), clock)
    return make


@pytest.fixture
def store(tmp_path):
    """A store whose writer commits at once (the 20 ms group-commit wait would dominate tick loops)."""
    from store.db import Store

    s = Store(tmp_path / "test.duckdb", writer_max_delay_ms=1)
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _rules_read_afresh(monkeypatch):
    """A server process shares the rules it has read (alerts.register.rules_in_force); each test
    here is its own process-to-be, so it reads its rules itself."""
    import alerts.register as reg

    monkeypatch.setattr(reg, "_IN_FORCE", {})
