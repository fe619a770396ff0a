"""Every page through the real router (AppTest): with data, with an empty server, and with no server."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from pathlib import Path

import numpy as np
import pytest
from otlp_data import (
    INCIDENT_ALERTS,
    N_SPANS,
    REQUEST_ID,
    SECRET_EMAIL,
    SHIM_REQUEST_ID,
    TRACE_ID,
    model_calls,
)
from streamlit.testing.v1 import AppTest

from dashboard import client

PAGES = {  # view file -> title
    "incident": "Incident",
    "overview": "Overview", "latency": "Latency", "errors": "Errors & reliability", "cost": "Cost & tokens",
    "resources": "Resources", "quality": "Quality & confidence", "drift": "Drift", "review": "Human review",
    "canary": "Canary & shadow", "alerts": "Alerts", "traces": "Traces", "weekly": "Weekly review",
}
LLM_CALLS = N_SPANS + 1            # the generated calls plus the traced request's model call
FAILED = N_SPANS // 10 * 2          # i % 10 in (3, 6)

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


def open_page(url: str, page: str, monkeypatch: pytest.MonkeyPatch, **query: str) -> AppTest:
    monkeypatch.setenv("AIWATCH_SERVER_URL", url)
    client.clear_cache()
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == [PAGES[page]]
    return at


def texts(at: AppTest) -> str:
    parts = [e.value for kind in (at.markdown, at.info, at.warning, at.error, at.success, at.caption, at.text)
             for e in kind]
    parts += [f"{m.label}={m.value}" for m in at.metric]
    return "\n".join(str(p) for p in parts)


def metric(at: AppTest, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r}; have {[m.label for m in at.metric]}"
    return found[0]


# Page-specific checks of the rendered values against the telemetry that was sent.
def ok_durations() -> np.ndarray:
    return np.array([c["duration_ms"] for c in model_calls() if not c["failed"]])


def _overview(at: AppTest) -> None:
    assert metric(at, "Requests") == f"{LLM_CALLS:,}"
    # exact p95 of the successful calls, against numpy on the calls that were sent
    assert metric(at, "p95 latency") == f"{np.percentile(ok_durations(), 95):,.0f} ms"
    assert metric(at, "Error rate") == f"{FAILED / LLM_CALLS:.2%}"
    assert metric(at, "Cost") == f"${N_SPANS * 0.0125 + 0.02:,.2f}"
    [tile] = [m for m in at.metric if m.label == "Availability"]
    assert tile.value == f"{1 - FAILED / LLM_CALLS:.2%}"
    # the analyzers ran: the budget uses the configured objective (98%), shown as overspent, never negative
    assert "objective 98.00%" in tile.proto.help
    spent = (FAILED / LLM_CALLS) / (1 - 0.98)
    assert metric(at, "Error budget") == f"exhausted ({spent:.1f}x over)"
    assert metric(at, "Burn rate") == f"{spent:.1f}"
    changes = next(df.value for df in at.dataframe if "error_rate_before" in df.value.columns)
    [row] = changes.to_dict("records")   # one service and model: no phantom '(none)' groups
    assert row["error_rate"] == pytest.approx(FAILED / LLM_CALLS)


def _latency(at: AppTest, closed_hour_with_calls: bool) -> None:
    for label, q in (("p50", 50), ("p95", 95), ("p99", 99)):
        assert metric(at, label) == f"{np.percentile(ok_durations(), q):,.0f} ms", label
    assert len(at.dataframe) >= 1
    baselines = [d.value for d in at.dataframe if "baseline" in d.value.columns]
    if closed_hour_with_calls:
        assert baselines and all(b.startswith("baseline: ") for b in baselines[0]["baseline"])
    else:   # all calls fell in the hour the backfill ran in: still open, so no baseline yet, and the page says so
        assert not baselines and "No route baselines yet" in texts(at)


def _errors(at: AppTest) -> None:
    assert metric(at, "Failed calls") == str(FAILED)
    # over every call (the otlp_data calls retry when i % 9 == 0 and fall back when i % 11 == 0)
    assert metric(at, "Retried calls") == str(sum(i % 9 == 0 for i in range(N_SPANS)))
    assert metric(at, "Served by a fallback") == f"{sum(i % 11 == 0 for i in range(N_SPANS)) / LLM_CALLS:.1%}"
    assert "RateLimitError" in at.dataframe[-1].value["error_type"].tolist()


def _cost(at: AppTest) -> None:
    assert metric(at, "Cost") == f"${N_SPANS * 0.0125 + 0.02:,.2f}"
    assert metric(at, "Cost per request") == f"${(N_SPANS * 0.0125 + 0.02) / LLM_CALLS:.4f}"


def _resources(at: AppTest) -> None:
    assert metric(at, "CPU") == "46.0%" and metric(at, "Queue depth") == "7.0"


def _quality(at: AppTest) -> None:
    # among the successful calls: the failed ones carry format_ok too, but have no output
    ok = [i for i in range(N_SPANS) if i % 10 not in (3, 6)]
    assert metric(at, "Format compliance") == f"{sum(i % 7 != 0 for i in ok) / len(ok):.1%}"


def _drift(at: AppTest) -> None:
    assert "drift" in texts(at).lower()


def _review(at: AppTest) -> None:
    assert metric(at, "Reviewed") == "30" and metric(at, "Override rate") == "50.0%"


def _canary(at: AppTest) -> None:
    arms = next(df.value for df in at.dataframe if "arm" in df.value.columns)
    assert {"baseline", "canary"} <= set(arms["arm"])


def _alerts(at: AppTest) -> None:
    # what otlp_data.write_incident stored: three state changes of two rules, one delivered notification
    found = [df.value for df in at.dataframe]
    history = next(f for f in found if "to_state" in f.columns)
    assert sorted(zip(history["rule"], history["to_state"])) == sorted(
        [(rule, "firing") for _, rule, *_ in INCIDENT_ALERTS]
        + [(rule, "resolved") for _, rule, _, _, resolved, *_ in INCIDENT_ALERTS if resolved is not None])
    # values in their rule's unit: a share of calls, a burn rate
    shown = set(zip(history["rule"], history["value"], history["threshold"]))
    assert shown == {("RouteErrorBurst", "20%", "5%"), ("ErrorBudgetSlowBurn", "4.5x budget", "3x budget")}
    sent = next(f for f in found if "outcome" in f.columns and "receiver" in f.columns)
    assert sent[["receiver", "outcome"]].values.tolist() == [["slack", "delivered"]]
    assert metric(at, "delivered") == "1"
    # the rules the server evaluates (the shipped ones here), P1 first, each linked to the page of its metric
    from alerts.rules import load_config
    from analysis.metrics_catalog import page_of

    rules = next(f for f in found if "condition" in f.columns)
    shipped = sorted(load_config(None, env={}).rules, key=lambda r: r.severity)
    assert rules["name"].tolist() == [r.name for r in shipped]
    assert rules["page"].tolist() == [page_of(r.condition.metric) for r in shipped]
    by_name = rules.set_index("name")
    assert by_name.loc["RouteErrorBurst", "view"] == "/errors?start=-6h"
    assert by_name.loc["RouteInputTokensShift", "view"].startswith("/drift?")
    assert by_name.loc["ServiceSilent", "view"] == "/?start=-6h"        # the overview lives at the root
    assert "p < 1e-04 against max(2x normal, 1%)" in by_name.loc["RouteErrorBurst", "condition"]
    assert by_name.loc["OverrideRateIncrease", "keep firing"] == "1h"


def _traces(at: AppTest) -> None:
    assert metric(at, "Spans") == "3"
    body = texts(at)
    assert "[REDACTED:email]" in body and SECRET_EMAIL not in body
    assert REQUEST_ID in body and TRACE_ID in body
    assert "route:primary>primary:ok" in body  # the audit record


def _weekly(at: AppTest) -> None:
    assert {b.label for b in at.get("download_button")} >= {"Download HTML", "Download Markdown"}
    sections = ["SLOs and error budget", "Incidents (P1 / P2)", "Cost", "Quality, drift and overrides",
                "Canary outcomes", "Top failing routes"]
    assert [h.value for h in at.subheader if h.value in sections] == sections
    # the failing routes are routes that were sent, with no more errors than were sent
    failing = next((df.value for df in at.dataframe if {"route", "errors", "error_rate"} <= set(df.value.columns)),
                   None)
    if failing is not None and len(failing):
        assert set(failing["route"]) <= {c["route"] for c in model_calls()}
        assert failing["errors"].sum() <= FAILED and failing["requests"].sum() <= LLM_CALLS
        assert failing["error_rate"].tolist() == pytest.approx((failing["errors"] / failing["requests"]).tolist())


WITH_DATA: dict[str, Callable[[AppTest], None]] = {
    "overview": _overview, "errors": _errors, "cost": _cost, "resources": _resources,
    "quality": _quality, "drift": _drift, "review": _review, "canary": _canary, "alerts": _alerts,
    "traces": _traces, "weekly": _weekly, "incident": lambda at: _incident_list(at),
}


def _incident_list(at: AppTest) -> None:
    listing = next(df.value for df in at.dataframe if "rules" in df.value.columns)
    [row] = listing.to_dict("records")   # two overlapping alerts: one incident
    assert row["alerts"] == 2 and row["rules"] == "ErrorBudgetSlowBurn, RouteErrorBurst" and row["state"] == "open"
    assert row["open"].startswith("/incident?id=checkout-assistant%40")


def test_incident_page_from_an_alert_link(data_server, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime, timedelta

    # what an alert message links to: the service and a moment of the alert
    at_time = (datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=25)).isoformat(timespec="seconds")
    at = open_page(data_server.url, "incident", monkeypatch, service="checkout-assistant", at=at_time)
    assert metric(at, "Severity") == "P1" and metric(at, "State") == "open"
    frames_ = {tuple(df.value.columns): df.value for df in at.dataframe}
    sent = next(v for k, v in frames_.items() if "receiver" in k)
    assert sent["receiver"].tolist() == ["slack"]
    events = next(v for k, v in frames_.items() if "to_state" in k)
    assert set(zip(events["rule"], events["value"])) >= {("RouteErrorBurst", "20%"), ("ErrorBudgetSlowBurn", "4.5x budget")}
    routes = next(v for k, v in frames_.items() if "route" in k and "requests" in k)
    assert set(routes["route"]) <= {"/summarize", "/classify"} and routes["errors"].sum() > 0
    failing = next(v for k, v in frames_.items() if "trace_id" in k and "error_type" in k)
    assert len(failing) and all(t.startswith("/traces?id=") for t in failing["trace_id"])
    assert len(at.get("plotly_chart")) >= 1   # the timeline


@pytest.mark.parametrize("page", list(PAGES))
def test_page_with_data(page: str, data_server, monkeypatch: pytest.MonkeyPatch) -> None:
    query = {"id": REQUEST_ID} if page == "traces" else {}
    at = open_page(data_server.url, page, monkeypatch, **query)
    if page == "latency":   # what it shows depends on where the clock's hour fell when the backfill ran
        _latency(at, data_server.closed_hour_with_calls)
    else:
        WITH_DATA[page](at)


@pytest.mark.parametrize("page", list(PAGES))
def test_page_empty_says_what_to_do(page: str, empty_server, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(empty_server.url, page, monkeypatch)
    assert not at.error, [e.value for e in at.error]
    body = texts(at)
    if page == "weekly":
        assert "no data this week" in body.lower() or "not available" in body.lower()
    else:
        assert "No data for" in body or "Not available yet" in body, body
        assert "`" in body  # the hint names a command, setting or endpoint to act on


@pytest.mark.parametrize("page", list(PAGES))
def test_page_server_down_is_a_clear_message(page: str, down_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(down_url, page, monkeypatch)
    assert len(at.error) == 1
    assert f"Cannot reach the aiwatch server at {down_url}" in at.error[0].value
    assert "aiwatch serve" in at.error[0].value


def test_trace_lookup_by_trace_id_shows_the_waterfall(data_server, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(data_server.url, "traces", monkeypatch, id=TRACE_ID)
    assert metric(at, "Spans") == "3"
    spans = next(df.value for df in at.dataframe if "role" in df.value.columns)
    # Depth is shown by indentation: root, its model call, the tool call under the model call.
    assert [label.count("\u2003") for label in spans["span"]] == [0, 1, 2]
    assert spans["role"].tolist()[1] == "model call"


def test_unknown_trace_id_says_so(data_server, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(data_server.url, "traces", monkeypatch, id="f" * 32)
    assert any("No spans found" in w.value for w in at.warning)


def test_create_and_expire_a_silence(data_server, monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    if "silences" not in {q["name"] for q in httpx.get(f"{data_server.url}/v1/queries").json()["queries"]}:
        pytest.skip("this checkout has no alerting stage yet")
    at = open_page(data_server.url, "alerts", monkeypatch, service="checkout-assistant")
    form_area = next(t for t in at.text_area if t.label.startswith("Matchers"))
    assert form_area.value == "service_name=checkout-assistant"  # prefilled from the filters
    form_area.set_value("service=checkout-assistant\nroute=/summarize")
    next(t for t in at.text_input if t.label == "Created by").set_value("sre-on-call")
    next(t for t in at.text_input if t.label == "Comment").set_value("deploying a fix")
    next(b for b in at.button if b.label == "Create silence").click()
    at.run()
    assert not at.exception and any("Silence created" in s.value for s in at.success), [e.value for e in at.error]
    silences = httpx.get(f"{data_server.url}/v1/query/silences").json()["data"]
    assert any("sre-on-call" == s.get("created_by") for s in silences)
    at.run()  # the table and the expire form now list it
    next(b for b in at.button if b.label == "Expire now").click()
    at.run()
    assert any("expired" in s.value for s in at.success), [e.value for e in at.error]


def test_shim_request_id_opens_the_failing_call_with_its_details(data_server, monkeypatch: pytest.MonkeyPatch) -> None:
    call = next(c for c in model_calls() if c["request_id"] == SHIM_REQUEST_ID)   # i = 3: a failed call
    at = open_page(data_server.url, "traces", monkeypatch, id=SHIM_REQUEST_ID)
    assert not any("No spans found" in w.value for w in at.warning)
    details = next(df.value for df in at.dataframe if "role" in df.value.columns)
    [row] = details.to_dict("records")
    assert row["role"] == "model call" and row["status"] == "error"
    assert row["http_status"] == call["http_status"] == 429 and row["error_type"] == "RateLimitError"
    attrs = next(df.value for df in at.dataframe if "attribute" in df.value.columns)
    assert dict(zip(attrs["attribute"], attrs["value"]))["request_id"] == SHIM_REQUEST_ID


@pytest.mark.parametrize("page", ["latency", "errors", "cost", "overview"])
def test_a_model_filter_alone_shows_data(page: str, data_server, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(data_server.url, page, monkeypatch, model="gpt-4o-mini")
    body = texts(at).replace("No data for alerts", "")
    assert "No data for" not in body and "aiwatch analyze" not in body, body
    if page == "overview":
        assert "objective 98.00%" in next(m for m in at.metric if m.label == "Availability").proto.help


def test_trace_list_filters_by_status_and_links_every_trace(data_server, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(data_server.url, "traces", monkeypatch, route="/summarize")
    listing = next(df.value for df in at.dataframe if "trace_id" in df.value.columns)
    assert set(listing["route"]) == {"/summarize"}
    assert all(link.startswith("/traces?id=") for link in listing["trace_id"])
    at.get("button_group")[0].set_value("error").run()
    listing = next(df.value for df in at.dataframe if "trace_id" in df.value.columns)
    assert set(listing["status_code"]) == {"error"} and len(listing) == sum(
        c["failed"] and c["route"] == "/summarize" for c in model_calls())


def test_empty_state_hint_works_as_printed(empty_server, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(empty_server.url, "latency", monkeypatch)
    # `--since=-24h` (a bare -24h is read as an option) and the folder this server really uses
    assert f"`aiwatch analyze --since=-24h --data-dir {empty_server.data_dir}`" in texts(at)
