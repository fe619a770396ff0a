"""`alert_rules`: the read API answers with the rules the server evaluates (its rules file, else the
shipped one; none with alerting off), never a receiver's URL or key."""
from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from aiwatch.config import Settings
from aiwatch.server import AiwatchServer

OWN_RULES = """
receivers:
  team: {type: slack, url: "https://hooks.slack.test/services/T000/B000/SECRETSECRET"}
routes:
  - match: {severity: P2}
    receivers: [team]
rules:
  - name: SlowSummaries
    severity: P2
    condition: {metric: latency_p95_ms, grain: 5m, match: {service_name: "*", route: "/summarize"}, op: ">",
                threshold: 20000}
    for: 5m
    keep_firing_for: 15m
  - name: QuietRouteFailures
    severity: P1
    condition:
      evidence: {bad: route_errors, total: route_calls, rate: route_error_baseline, factor: 3, floor: 0.02,
                 p_value: 1.0e-5, min_bad: 4}
      over: 10m
      match: {service_name: "*", route: "*", model: "*"}
"""


def rules(tmp_path: Path, **alerts: object) -> tuple[int, list[dict], int]:
    """(status, rows) of `alert_rules`, and the status of a bad severity."""
    server = AiwatchServer(Settings(data_dir=str(tmp_path / "data"), scheduler_enabled=False, ingest_workers=0,
                                   alerts=alerts))
    with TestClient(server.app()) as client:
        r = client.get("/v1/query/alert_rules")
        bad = client.get("/v1/query/alert_rules", params={"severity": "P9"}).status_code
        p1 = client.get("/v1/query/alert_rules", params={"severity": "P1"}).json()["data"]
    assert all(row["severity"] == "P1" for row in p1)
    return r.status_code, r.json()["data"], bad


def test_a_servers_own_rules_file_is_what_it_answers_without_its_receivers(tmp_path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(OWN_RULES)
    status, rows, bad = rules(tmp_path, rules=str(path))
    assert status == 200 and bad == 400
    assert [r["name"] for r in rows] == ["QuietRouteFailures", "SlowSummaries"]     # P1 first
    slow, failures = rows[1], rows[0]
    assert (slow["page"], slow["scope"], slow["for_s"], slow["keep_firing_for_s"]) == (
        "latency", "per service, route=/summarize", 300, 900)
    assert slow["condition"] == "latency_p95_ms over 5m > 20000"
    assert (failures["page"], failures["over_s"], failures["test"], failures["p_value"]) == ("errors", 600, "binomial", 1e-5)
    assert failures["condition"] == ("route_errors of route_calls over 10m: binomial tail p < 1e-05 against "
                                     "max(3x normal, 2%) (normal: route_error_baseline), at least 4 bad")
    text = str(rows)
    assert "SECRET" not in text and "hooks.slack" not in text and "team" not in text


def test_the_shipped_rules_without_a_file_and_none_with_alerting_off(tmp_path) -> None:
    from alerts.rules import load_config

    _, rows, _ = rules(tmp_path)
    assert {r["name"] for r in rows} == {r.name for r in load_config(None, env={}).rules}
    assert [r["severity"] for r in rows] == sorted(r["severity"] for r in rows)
    _, off, _ = rules(tmp_path, enabled=False)
    assert off == []
