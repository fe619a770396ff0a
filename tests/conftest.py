"""Shared fixtures: a real aiwatch server on a free loopback port, and an in-process store."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Appended, not prepended: the real packages (repo root, via pytest's pythonpath) must win over the
# test folders named after them.
sys.path.append(str(Path(__file__).resolve().parent))  # tests/fakes as `fakes`, test helper modules

from server_harness import RunningServer, start_server, stop_server  # noqa: E402


@pytest.fixture(scope="session")
def aiwatch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real server for the session; tests isolate themselves by service name or trace id."""
    srv = start_server(tmp_path_factory.mktemp("aiwatch-server"))
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def server(aiwatch_server: RunningServer) -> RunningServer:
    return aiwatch_server


@pytest.fixture(scope="session")
def empty_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real server whose database stays empty for the session: tests only read from it."""
    srv = start_server(tmp_path_factory.mktemp("empty-server"))
    yield srv
    stop_server(srv)


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A real server with its own empty database, for tests that need one."""
    srv = start_server(tmp_path / "data")
    yield srv
    stop_server(srv)


@pytest.fixture
def store(tmp_path: Path):
    from store.db import Store

    s = Store(tmp_path / "test.duckdb")
    yield s
    s.close()
