"""SIGHUP reloads the alert rules of a running server: the rules in force change without a restart,
a file that fails validation keeps them and says why (log line, `aiwatch_reloads_total`), and the
evaluator takes the new rules from its next run with the alert state it had."""
from __future__ import annotations

import os
import signal
import time
from types import SimpleNamespace

import httpx
import pytest
from server_harness import start_server, stop_server

ONE = """
rules:
  - name: ServiceErrors
    severity: P2
    condition: {metric: error_rate, grain: 5m, match: {service_name: "*"}, op: ">", threshold: 0.2}
"""
TWO = ONE + """
  - name: ServiceDown
    severity: P1
    condition: {metric: error_rate, grain: 5m, match: {service_name: "*"}, op: ">", threshold: 0.9}
"""
BROKEN = TWO.replace("threshold: 0.9", "threshold: 0.9, treshold: 0.5")


def _names(url: str) -> list[str]:
    return [r["name"] for r in httpx.get(f"{url}/v1/query/alert_rules", timeout=10).json()["data"]]


def _reloads(url: str, result: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("aiwatch_reloads_total{") and f'result="{result}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _until(check, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reloaded in time"
        time.sleep(0.1)


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signal")
def test_sighup_reloads_the_rules_and_a_broken_file_keeps_them(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(ONE)
    srv = start_server(tmp_path / "data", env={"AIWATCH_ALERTS_RULES": str(rules)})
    try:
        assert _names(srv.url) == ["ServiceErrors"]
        rules.write_text(TWO)
        os.kill(srv.process.pid, signal.SIGHUP)
        _until(lambda: _names(srv.url) == ["ServiceDown", "ServiceErrors"])      # P1 first
        assert _reloads(srv.url, "success") == 1
        assert str(tmp_path) not in httpx.get(f"{srv.url}/metrics", timeout=10).text      # no path in a label
        rules.write_text(BROKEN)
        os.kill(srv.process.pid, signal.SIGHUP)
        _until(lambda: _reloads(srv.url, "failure") == 1)
        assert _names(srv.url) == ["ServiceDown", "ServiceErrors"]               # still in force
        log = srv.log_path.read_text()
        assert "not reloaded" in log and "treshold" in log and "ServiceDown" in log
        assert srv.process.poll() is None                                          # and still serving
    finally:
        stop_server(srv)


def test_the_evaluator_takes_reloaded_rules_from_its_next_run_and_keeps_its_alerts(tmp_path, store):
    """A runtime evaluates, its rules file changes and is reloaded: the next run evaluates the new
    rules with the same engine (the alert state in memory and in the store goes on)."""
    from alerts.register import AlertsRuntime, reload_rules, rules_in_force

    rules = tmp_path / "rules.yaml"
    rules.write_text(ONE)
    runtime = AlertsRuntime(rules=str(rules))
    ctx = SimpleNamespace(store=store, settings=None)
    runtime.evaluate(ctx)
    engine = runtime.engine
    assert engine is not None and [r.name for r in engine.config.rules] == ["ServiceErrors"]
    rules.write_text(TWO)
    reload_rules()                                 # every file in force in this process
    assert not rules_in_force(str(rules)).error
    runtime.evaluate(ctx)
    assert runtime.engine is engine and [r.name for r in engine.config.rules] == ["ServiceErrors", "ServiceDown"]
    assert runtime.config is rules_in_force(str(rules)).config
    rules.write_text(BROKEN)
    [why] = [why for what, ok, why in reload_rules() if what == "alert_rules" and str(rules) in why]
    assert "treshold" in why and rules_in_force(str(rules)).error == why
    runtime.evaluate(ctx)
    assert [r.name for r in engine.config.rules] == ["ServiceErrors", "ServiceDown"]
