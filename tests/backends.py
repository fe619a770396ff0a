"""Both store backends for parametrised tests: the embedded DuckDB file and ClickHouse's engine
in-process (chdb) on a temporary directory, opened the way the server opens them (the `store`
setting through aiwatch.storage.open_store)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aiwatch.config import Settings
from aiwatch.storage import open_store

BACKENDS = ("duckdb", "chdb")


def settings_for(backend: str, tmp_path: Path, **overrides: object) -> Settings:
    """Retention off unless asked for: test data lies in the past, and ClickHouse's TTL would drop
    it at insert."""
    store = "duckdb" if backend == "duckdb" else f"chdb://{tmp_path / 'clickhouse'}?database=aiwatch_test"
    return Settings.load(env={}, data_dir=str(tmp_path / "data"), store=store,
                         **{"retention_days": 0, "analysis_retention_days": 0, **overrides})


def opened(backend: str, tmp_path: Path, **overrides: object) -> Iterator:
    store = open_store(settings_for(backend, tmp_path, **overrides))
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(params=BACKENDS)
def any_store(request, tmp_path: Path):
    """A fresh store on each backend in turn."""
    yield from opened(request.param, tmp_path)
