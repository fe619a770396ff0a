"""CLI commands (check, test, backtest, backfill, silence), the silence HTTP routes and the named
read queries through a real server."""
from __future__ import annotations

import json
import subprocess
from types import SimpleNamespace

import pytest
from fakes.receivers import FakeReceivers
from harness import MIN, T0, make_config, series, write_metrics
from starlette.applications import Starlette
from starlette.testclient import TestClient

from alerts.api import ROUTES
from alerts.backtest import run_backtest
from store.db import Store


def aiwatch(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `aiwatch ...` in this process (a subprocess would pay every stage's imports each time)."""
    import contextlib
    import io
    import os

    from aiwatch.cli import main

    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:
                code = exc.code
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_check_passes_the_shipped_file_and_names_problems(tmp_path):
    import yaml

    # the summary counts what the shipped file holds (the rules themselves are pinned in test_rules.py)
    rules = yaml.safe_load(open("alerts/default_rules.yaml").read())["rules"]
    per = {sev: sum(r["severity"] == sev for r in rules) for sev in ("P1", "P2", "P3")}
    ok = aiwatch("alerts", "check", "alerts/default_rules.yaml")
    summary = f"{len(rules)} rules ({per['P1']} P1, {per['P2']} P2, {per['P3']} P3)"
    assert ok.returncode == 0 and summary in ok.stdout, ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: X\n    severity: P1\n    condition: {metric: error_rate, op: '>>', threshold: 1}\n")
    out = aiwatch("alerts", "check", str(bad))
    assert out.returncode == 1
    assert f"{bad}: rule 'X': key 'condition.op'" in out.stderr


def test_alerts_test_sends_to_the_receiver():
    with FakeReceivers() as rx:
        out = aiwatch("alerts", "test", "--receiver", "slack", env={"AIWATCH_SLACK_WEBHOOK_URL": rx.url("slack")})
        assert out.returncode == 0, out.stderr
        assert rx.payloads("slack")[0]["blocks"][0]["type"] == "header"
        rx.script("slack", "404_channel_not_found")
        out = aiwatch("alerts", "test", "--receiver", "slack", env={"AIWATCH_SLACK_WEBHOOK_URL": rx.url("slack")})
        assert out.returncode == 1 and "channel_not_found" in out.stderr
    out = aiwatch("alerts", "test", "--receiver", "pagerduty", env={"AIWATCH_PAGERDUTY_ROUTING_KEY": ""})
    assert out.returncode == 1 and "routing key" in out.stderr


def seed(path):
    """One route: half its calls fail in minutes 10-19, and again in 40-44 (a flap of the same alert)."""
    store = Store(path, writer_max_delay_ms=1)
    bad = lambda i: 50.0 if 10 <= i < 20 or 40 <= i < 45 else 0.0  # noqa: E731
    write_metrics(store, series("error_rate", T0, 60, lambda i: bad(i) / 100)
                  + series("errors", T0, 60, bad) + series("requests", T0, 60, 100.0)
                  + series("route_errors", T0, 60, bad) + series("route_calls", T0, 60, 100.0)
                  + series("route_error_baseline", T0 - 60 * MIN, 2, 0.01, grain="1h", step=60 * MIN))
    store.close()


def test_backtest_prints_the_timeline_and_json(tmp_path):
    data = tmp_path / "data"
    seed(data / "aiwatch.duckdb")
    args = ("alerts", "backtest", "--since", T0.isoformat(), "--until", (T0 + 60 * MIN).isoformat(),
            "--data-dir", str(data))
    out = aiwatch(*args)
    assert out.returncode == 0, out.stderr
    assert "FIRING    P1 RouteErrorBurst" in out.stdout and "RESOLVED" in out.stdout
    assert "NOTIFY" in out.stdout and "service=checkout" in out.stdout
    # values in the rule's unit on every line, pending ones too: 50 of 500 calls failed is 10%
    lines = [line for line in out.stdout.splitlines() if "P1 RouteErrorBurst" in line]
    assert lines and all("value=10%" in line for line in lines[:2]), lines[:2]
    marks = ("--clean", f"{T0.isoformat()}/{(T0 + 10 * MIN).isoformat()}",
             "--clean", f"{(T0 + 30 * MIN).isoformat()}/{(T0 + 60 * MIN).isoformat()}",
             "--incident", f"{(T0 + 10 * MIN).isoformat()}/{(T0 + 20 * MIN).isoformat()}/P1",
             "--incident", f"{(T0 + 50 * MIN).isoformat()}/{(T0 + 55 * MIN).isoformat()}/P2")
    table = aiwatch(*args, *marks).stdout
    row = next(line for line in table.splitlines() if line.startswith("RouteErrorBurst"))
    assert row.split()[1:] == ["P1", "2", "48.0", "1", "1"]      # 2 firings, 48/day, 1 flap, 1 in clean
    assert "P1: detected in 1.0 min by RouteErrorBurst" in table and "P2: not detected (deadline 15 min)" in table
    doc = json.loads(aiwatch(*args, *marks, "--json").stdout)
    states = [e["to_state"] for e in doc["events"] if e["rule"] == "RouteErrorBurst"]
    assert states[:3] == ["pending", "firing", "resolved"]
    assert doc["summary"]["RouteErrorBurst"]["firing"] == 2
    assert doc["report"]["incidents"][0]["time_to_detect_s"] == 60 and not doc["report"]["incidents"][1]["in_time"]
    first = doc["alerts"][0]     # Alertmanager v2 alert shape
    assert first["labels"]["alertname"] == "RouteErrorBurst" and first["labels"]["route"] == "/answer"
    assert first["startsAt"] == (T0 + 11 * MIN).isoformat() + "Z" and first["endsAt"].endswith("Z")
    assert "50 of 500 calls failed in 5 minutes" in first["annotations"]["summary"]
    assert aiwatch(*args, "--incident", "yesterday/P1").returncode == 2
    # notifies nobody, writes nothing
    store = Store(data / "aiwatch.duckdb")
    try:
        assert store.scalar("SELECT count(*) FROM alert_outbox") == 0
        assert store.scalar("SELECT count(*) FROM alert_history") == 0
    finally:
        store.close()


def test_backtest_detection_times_in_process(store):
    write_metrics(store, series("error_rate", T0, 60, lambda i: 0.5 if 10 <= i < 20 else 0.0)
                  + series("requests", T0, 60, 100.0))
    result = run_backtest(store, make_config(), T0, T0 + 60 * MIN)
    onset = T0 + 10 * MIN
    assert onset < result.first_firing("P1") <= onset + 5 * MIN
    assert result.notifications and all(n["receiver"] == "ops" for n in result.notifications)


def test_backfill_keeps_history(tmp_path):
    data = tmp_path / "data"
    seed(data / "aiwatch.duckdb")
    out = aiwatch("alerts", "backfill", "--since", T0.isoformat(), "--until", (T0 + 60 * MIN).isoformat(),
                  "--data-dir", str(data))
    assert out.returncode == 0, out.stderr
    store = Store(data / "aiwatch.duckdb")
    try:
        rows = store.query("SELECT rule, to_state FROM alert_history ORDER BY time").to_pylist()
        assert {"rule": "RouteErrorBurst", "to_state": "firing"} in rows
        assert store.scalar("SELECT count(*) FROM alert_outbox") == 0
    finally:
        store.close()


def test_silence_cli_on_a_stopped_servers_database(tmp_path):
    data = tmp_path / "data"
    out = aiwatch("silence", "add", "service=checkout", "alertname=~Cost.*", "--duration", "1h",
                  "--author", "ana", "--comment", "load test", "--data-dir", str(data))
    assert out.returncode == 0, out.stderr
    sid = out.stdout.strip()
    listed = aiwatch("silence", "list", "--data-dir", str(data))
    assert sid[:12] in listed.stdout and "service=checkout" in listed.stdout and "ana: load test" in listed.stdout
    assert aiwatch("silence", "expire", sid[:8], "--data-dir", str(data)).returncode == 0
    assert "no silences" in aiwatch("silence", "list", "--data-dir", str(data)).stdout
    assert aiwatch("silence", "expire", sid, "--data-dir", str(data)).returncode == 1
    bad = aiwatch("silence", "add", "service", "--comment", "x", "--data-dir", str(data))
    assert bad.returncode == 1 and "not a matcher" in bad.stderr


@pytest.fixture
def api(store):
    app = Starlette(routes=ROUTES)
    app.state.aiwatch = SimpleNamespace(store=store, settings=SimpleNamespace(api_token="t0k"))
    return TestClient(app)


def test_silence_routes(api, store):
    auth = {"Authorization": "Bearer t0k"}
    assert api.post("/v1/silences", json={}).status_code == 401
    r = api.post("/v1/silences", headers=auth, json={
        "matchers": [{"name": "service_name", "op": "=", "value": "checkout"}], "duration": "2h",
        "created_by": "dash", "comment": "from the dashboard"})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    row = store.query("SELECT matchers, created_by FROM alert_silences").to_pylist()[0]
    assert json.loads(row["matchers"]) == [{"name": "service", "op": "=", "value": "checkout"}]
    assert api.delete(f"/v1/silences/{sid}", headers=auth).status_code == 200
    assert api.delete(f"/v1/silences/{sid}", headers=auth).status_code == 404
    r = api.post("/v1/alerts/silences", headers=auth, json={"matchers": ["severity=P2"], "ends_at": "-1h",
                                                             "created_by": "a", "comment": "c"})
    assert r.status_code == 400 and "end after" in r.json()["error"]["message"]
    r = api.post("/v1/alerts/silences", headers=auth, json={"matchers": ["x=~("], "duration": "1h",
                                                             "created_by": "a", "comment": "c"})
    assert r.status_code == 400 and "regex" in r.json()["error"]["message"]


def test_named_queries_through_the_server(empty_server):
    for name in ("alerts", "alert_history", "silences", "notifications", "alert_outbox", "alert_review"):
        assert empty_server.query(name) == []
    names = {q["name"] for q in __import__("httpx").get(f"{empty_server.url}/v1/queries").json()["queries"]}
    assert {"alerts", "alert_history", "silences", "notifications"} <= names


def test_a_backtest_through_a_server_that_cuts_its_answers_replays_every_row(tmp_path):
    """The server caps an answer at max_response_bytes (X-Truncated). The backtest asks again for
    halves of the window until every answer is whole, so it fires exactly what a backtest of the
    file fires; before, it replayed the first ~64 MB as if they were all (a 3-day demo's cost spike
    went unseen)."""
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    from server_harness import start_server, stop_server

    data = tmp_path / "data"
    path = data / "aiwatch.duckdb"
    data.mkdir()
    store = Store(path, writer_max_delay_ms=1)    # 40 quiet routes stored before the failing one: ~1 MB
    for r in range(40):
        write_metrics(store, series("route_errors", T0, 60, 0.0, route=f"/r{r}")
                      + series("route_calls", T0, 60, 100.0, route=f"/r{r}"))
    store.close()
    seed(path)
    store = Store(path, writer_max_delay_ms=1)
    from alerts.rules import load_config

    want = [(e["time"].isoformat(), e["rule"], e["to_state"])
            for e in run_backtest(store, load_config(None, env={}), T0, T0 + 60 * MIN).events]
    store.close()
    assert "firing" in {s for *_, s in want}
    server = start_server(data, env={"AIWATCH_MAX_RESPONSE_BYTES": "65536"})
    try:
        import httpx

        cut = httpx.get(f"{server.url}/v1/query/alert_source_metrics",
                        params={"start": (T0 - 60 * MIN).isoformat(), "end": (T0 + 60 * MIN).isoformat(),
                                "format": "arrow"})
        assert cut.headers["x-truncated"] == "true"      # one answer would not hold them
        out = aiwatch("alerts", "backtest", "--since", T0.isoformat(), "--until", (T0 + 60 * MIN).isoformat(),
                      "--server", server.url, "--json")
        assert out.returncode == 0, out.stderr
        got = [(e["time"], e["rule"], e["to_state"]) for e in json.loads(out.stdout)["events"]]
        assert got == want
    finally:
        stop_server(server)
