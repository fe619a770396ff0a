"""Servers for the dashboard tests: one with data (the empty one is tests/conftest.py's) and a closed port (server down)."""
from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # otlp_data, browser helpers

from otlp_data import FIRST_CALL_AGO_NS, SERVICE, send_all, write_incident  # noqa: E402
from server_harness import RunningServer, free_port, start_server, stop_server  # noqa: E402,F401

ROOT = Path(__file__).resolve().parents[2]
APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


def _analyze(data_dir: Path, until: datetime) -> tuple[bool, str]:
    """Backfill the analyzers over the sent telemetry up to `until` (naive UTC), offline: the server
    must be stopped. An explicit end, not `now`: which hours it closes is then known to the test.
    `aiwatch analyze` runs in this process (its stages are imported already; a subprocess pays that again)."""
    from aiwatch.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = main(["--log-level", "WARNING", "analyze", f"--since={(until - timedelta(hours=3)).isoformat()}",
                         f"--until={until.isoformat()}", "--data-dir", str(data_dir)])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code == 0, out.getvalue()[-4000:]


@pytest.fixture(scope="session")
def data_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server holding the telemetry of `otlp_data`, with the analyzers' outputs backfilled when
    this checkout has them (pages are checked on raw data either way)."""
    data_dir = tmp_path_factory.mktemp("dash-data")
    # an objective other than the page's default, so the page shows that it reads the configured one
    (data_dir / "analysis.toml").write_text(
        '[[analysis.slos]]\nname = "availability"\nkind = "availability"\nobjective = 0.98\n')
    srv = start_server(data_dir)
    sent_ns = send_all(srv.url)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not httpx.get(
            f"{srv.url}/v1/query/summary", params={"service": SERVICE}, timeout=10).json()["data"]:
        time.sleep(0.1)
    analyzed = False
    if importlib.util.find_spec("analysis.register") is not None:
        stop_server(srv)
        analyzed_until = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)
        analyzed, output = _analyze(data_dir, analyzed_until)
        if not analyzed:
            warnings.warn(f"aiwatch analyze failed; analyzer-fed charts are not checked:\n{output}", stacklevel=2)
        write_incident(data_dir / "aiwatch.duckdb")
        srv = start_server(data_dir)
    srv.analyzed = analyzed
    srv.sent_ns = sent_ns   # what the telemetry's times count back from (otlp_data.model_calls(sent_ns))
    # Route baselines: the analyzers write one for each hour bucket their window [since, until) touches
    # (the newest is until's own hour, or the one before when until is on the hour), from calls in
    # earlier hours. So one shows iff the first call (50 min before `sent_ns`) is before that newest
    # hour: the clock decides, so the test reads the end it gave the backfill (`--until=now` would
    # read a later clock, and an end at hh:00 closes no hour the calls after (hh-1):00 came in).
    srv.closed_hour_with_calls = False
    if analyzed:
        newest_hour = analyzed_until.replace(minute=0) - timedelta(hours=1 if analyzed_until.minute == 0 else 0)
        first_call = datetime(1970, 1, 1) + timedelta(microseconds=(sent_ns - FIRST_CALL_AGO_NS) // 1000)
        srv.closed_hour_with_calls = first_call < newest_hour
    yield srv
    stop_server(srv)


@pytest.fixture
def down_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there
