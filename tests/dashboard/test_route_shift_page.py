"""The route alerts' evidence on the pages an alert links to, through a real server and the real
router (AppTest): the Drift page's newest window per route is what the server's rules evaluate at
that minute (alerts.conditions.evaluate on the same store is the oracle), on a route whose inputs
drifted and one that did not, with the shipped rules and with a server's own rules file; the
Quality page shows the confidence rule's windows, none firing."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from server_harness import RunningServer, start_server, stop_server
from streamlit.testing.v1 import AppTest
from test_pages import open_page

from alerts.conditions import evaluate
from alerts.rules import load_config
from analysis import runner
from analysis.base import Window
from analysis.route_shift import RouteShiftAnalyzer
from analysis.settings import AnalysisSettings
from tests.analysis.gen import T0, Shift, spans, write

HOUR, MIN = timedelta(hours=1), timedelta(minutes=1)
ONSET = T0 + 5 * HOUR + 40 * MIN
ONSET2 = T0 + 31 * HOUR + 40 * MIN    # the two-model route's prompts 4x
END = ONSET + 25 * MIN          # the page's window end: the alert evaluated at this minute is the oracle
SPIKE = END - 10 * MIN          # chat's outputs 4x from here (cost 2.85x): a cost page 10 minutes old
INPUT_RULES = ("RouteInputTokensShift", "RouteInputTokensDrop", "RouteInputMixShift")
# a server's own rules: one input rule with its own window and thresholds, and a confidence rule
CUSTOM_RULES = """
rules:
  - name: LongerPrompts
    severity: P2
    condition:
      evidence: {test: rank, bad: route_in_high_score, total: route_in_scored, p_value: 1.0e-3, max_mean: 0.4}
      over: 20m
      match: {service_name: "*", route: "*", model: "*"}
  - name: ServiceErrors
    severity: P1
    condition: {metric: error_rate, grain: 5m, match: {service_name: "*"}, op: ">", threshold: 0.2}
"""


@pytest.fixture(scope="module")
def shifted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, dict]]:
    """7 hours of two routes at 4 calls a minute; from ONSET the search route's inputs are 1.8x as
    long and in a language it never saw, and 10 minutes before END chat's outputs turn 4x. Scored by route_shift; the shipped rules evaluated at END
    before the server takes the database."""
    from store.db import Store

    data_dir = tmp_path_factory.mktemp("shift")
    store = Store(data_dir / "aiwatch.duckdb")
    try:
        shifts = (Shift(ONSET, T0 + 7 * HOUR, "input_tokens", 1.8, route="search"),
                  Shift(ONSET, T0 + 7 * HOUR, "language", "ja", route="search"),
                  Shift(SPIKE, T0 + 7 * HOUR, "output_tokens", 4.0, route="chat"))
        write(store, spans(T0, 7 * 60, 4, seed=12, shifts=shifts))
        runner.analyze(store, RouteShiftAnalyzer(store, AnalysisSettings(route_baseline_hours=5)),
                       Window(T0, T0 + 7 * HOUR, T0))
        fired = fired_at_end(store, load_config(None, env={}))
        (data_dir / "rules.yaml").write_text(CUSTOM_RULES)
        fired.update(fired_at_end(store, load_config(data_dir / "rules.yaml", env={})))
    finally:
        store.close()
    shutil.copytree(data_dir, data_dir.with_name(data_dir.name + "-custom"))   # for a second server
    srv = start_server(data_dir)
    yield srv, fired
    stop_server(srv)


def fired_at_end(store: Any, config: Any) -> dict:
    samples, failed = evaluate(store, config, END)
    assert not failed
    return {(s.rule.name, s.labels["route"]): s for s in samples.values()}


def server_rules(url: str) -> pd.DataFrame:
    return pd.DataFrame(httpx.get(f"{url}/v1/query/alert_rules", timeout=10).json()["data"])


def tables(at: AppTest, url: str, page: str) -> dict[str, Any]:
    """The page's route-shift tables by rule: one per rank rule of the server's for the page, in its order."""
    rules = server_rules(url)
    names = rules[(rules["test"] == "rank") & (rules["page"] == page)]["name"].tolist()
    shown = [df.value for df in at.dataframe if "mean_percentile" in df.value.columns]
    assert len(shown) == len(names), (names, len(shown))
    return dict(zip(names, shown, strict=True))


def assert_as_evaluated(table: pd.DataFrame, rule: str, fired: dict) -> None:
    """Each route's newest window is the alert's: it fires where the rule fired, with its numbers."""
    t = table.set_index("route")
    assert set(t.index) == {"chat", "search"}
    for route in ("chat", "search"):
        row = t.loc[route]
        assert row["time"] == END, (rule, route)      # the newest window ends at the page's end
        sample = fired.get((rule, route))
        assert (row["test"] == "fires") == (sample is not None), (rule, route)
        if sample is not None:     # the very numbers the alert carries
            fields = dict(sample.fields)
            assert row["calls"] == fields["total"] and row["mean_percentile"] == pytest.approx(sample.value)
            assert row["p"] == pytest.approx(fields["p_value"], rel=1e-9)
            assert row["window"] == fields.get("window", row["window"])    # a scan names the window that decided


def test_drift_page_shows_the_input_rules_evidence_as_the_alerts_evaluate_it(shifted, monkeypatch) -> None:
    srv, fired = shifted
    at = open_page(srv.url, "drift", monkeypatch, start=(T0 + 4 * HOUR).isoformat(), end=END.isoformat(),
                   service="svc")
    charts = [c for c in at.get("plotly_chart")]
    assert len(charts) >= len(INPUT_RULES)
    found = tables(at, srv.url, "drift")
    assert set(found) == set(INPUT_RULES)
    for rule in INPUT_RULES:
        assert_as_evaluated(found[rule], rule, fired)
    # the drifted route fires on its length and its language; the clean one on nothing
    assert {k for k in fired if k[0] in INPUT_RULES} == {("RouteInputTokensShift", "search"),
                                                         ("RouteInputMixShift", "search")}
    assert found["RouteInputTokensShift"].set_index("route").loc["chat", "mean_percentile"] > 0.3


def test_quality_page_shows_the_confidence_rule_quiet_on_unshifted_routes(shifted, monkeypatch) -> None:
    srv, fired = shifted
    at = open_page(srv.url, "quality", monkeypatch, start=(T0 + 5 * HOUR).isoformat(), end=END.isoformat(),
                   service="svc", route="chat")
    t = tables(at, srv.url, "quality")["RouteConfidenceDrop"]
    assert t["route"].tolist() == ["chat"] and t["test"].tolist() == ["-"]
    assert ("RouteConfidenceDrop", "chat") not in fired
    assert 0.3 < t["mean_percentile"].iloc[0] < 0.7     # as usual: about the middle of the route's calls


def test_cost_page_shows_the_cost_rules_evidence_and_longer_prompts_are_no_cost_page(shifted, monkeypatch) -> None:
    """search's inputs are 1.8x as long (its calls cost 1.3x): the input rule fires on the Drift page,
    and the cost and prompt rules, which rank half of each call's cost and input, see nothing near twice
    the usual. chat's 4x outputs of the last 10 minutes page the cost rule, which scans its windows:
    the table names the window of the spike's calls, not the whole 15 minutes, with the alert's numbers."""
    srv, fired = shifted
    at = open_page(srv.url, "cost", monkeypatch, start=(T0 + 4 * HOUR).isoformat(), end=END.isoformat(),
                   service="svc")
    found = tables(at, srv.url, "cost")
    assert set(found) == {"RouteOutputTokensSpike", "RouteCostSpike", "RouteInputTokensSpike"}
    for rule, table in found.items():
        assert_as_evaluated(table, rule, fired)
    assert {k for k in fired if k[0] in found} == {("RouteCostSpike", "chat"), ("RouteOutputTokensSpike", "chat")}
    cost = found["RouteCostSpike"].set_index("route")
    assert cost.loc["search", "mean_percentile"] > 0.9 and cost.loc["search", "window"] == "15m"
    assert cost.loc["chat", "test"] == "fires" and cost.loc["chat", "window"] in {"9m", "10m"}


def test_a_server_with_its_own_rules_shows_their_windows_and_thresholds(shifted, monkeypatch) -> None:
    """The lines and verdicts are those of the rules the server evaluates, not the shipped ones."""
    srv, fired = shifted
    custom_dir = Path(str(srv.data_dir) + "-custom")
    custom = start_server(custom_dir, env={"AIWATCH_ALERTS_RULES": str(custom_dir / "rules.yaml")})
    try:
        rules = server_rules(custom.url)
        assert rules["name"].tolist() == ["ServiceErrors", "LongerPrompts"]    # P1 first
        row = rules.set_index("name").loc["LongerPrompts"]
        assert (row["page"], row["over_s"], row["p_value"], row["max_mean"]) == ("drift", 1200, 1e-3, 0.4)
        assert "url" not in " ".join(rules.columns)
        at = open_page(custom.url, "drift", monkeypatch, start=(T0 + 4 * HOUR).isoformat(), end=END.isoformat(),
                       service="svc")
        found = tables(at, custom.url, "drift")
        assert list(found) == ["LongerPrompts"]
        assert_as_evaluated(found["LongerPrompts"], "LongerPrompts", fired)
        assert ("LongerPrompts", "search") in fired and ("LongerPrompts", "chat") not in fired
        assert not [c for c in at.caption if "shipped" in c.value]
        quality = open_page(custom.url, "quality", monkeypatch, start=(T0 + 5 * HOUR).isoformat(),
                            end=END.isoformat(), service="svc")
        assert not [df for df in quality.dataframe if "mean_percentile" in df.value.columns]   # no rank rule
    finally:
        stop_server(custom)


class _Ctx:
    """What rule_pages reads of a page context: the server's `alert_rules`."""

    def __init__(self, config: Any) -> None:
        from alerts.rule_view import rules_table

        self.frame = rules_table(config).to_pandas()

    def query(self, name: str, **_: Any) -> Any:
        from dashboard.client import QueryResult

        assert name == "alert_rules"
        return QueryResult(name, "ok", self.frame)


def test_an_incident_links_first_to_the_pages_of_its_rules() -> None:
    from dashboard.evidence import rule_pages

    ctx: Any = _Ctx(load_config(None, env={}))
    assert rule_pages(ctx, ["RouteInputTokensShift", "RouteErrorBurst", "RouteInputMixShift", "MyOwnRule"]) == [
        "drift", "errors"]
    assert rule_pages(ctx, ["RouteConfidenceDrop", "RouteOutputTokensSpike", "ServiceSilent"]) == [
        "quality", "cost", "overview"]


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Any]]:
    """chat served by two models at a call every 3 minutes each, its prompts 4x from ONSET2; the
    shipped rules evaluated 12 minutes in, before the server takes the database."""
    import pyarrow as pa

    from store.db import Store

    data_dir = tmp_path_factory.mktemp("two-models")
    store = Store(data_dir / "aiwatch.duckdb")
    try:
        shift = (Shift(ONSET2, T0 + 33 * HOUR, "input_tokens", 4.0, route="chat"),)
        write(store, pa.concat_tables([
            spans(T0, 33 * 60, 1, seed=45, routes=("chat", "x", "y"), shifts=shift),
            spans(T0, 33 * 60, 1, seed=46, routes=("chat", "z", "w"), model="claude-3-5-haiku", ids="b",
                  shifts=shift)]))
        runner.analyze(store, RouteShiftAnalyzer(store, AnalysisSettings(route_baseline_hours=30)),
                       Window(T0, T0 + 33 * HOUR, T0))
        samples, failed = evaluate(store, load_config(None, env={}), ONSET2 + 12 * MIN)
        assert not failed
    finally:
        store.close()
    srv = start_server(data_dir)
    yield srv, samples
    stop_server(srv)


def test_the_cost_page_shows_a_two_model_route_over_all_its_models_as_the_alert(two_models, monkeypatch) -> None:
    """Neither model alone has the calls to page; the route over both does, and the Cost page's
    row for it ('all models') carries the alert's numbers."""
    srv, samples = two_models
    [alert] = [s for s in samples.values() if s.rule.name == "RouteCostSpike"]
    assert alert.labels["route"] == "chat" and "model" not in alert.labels
    at = open_page(srv.url, "cost", monkeypatch, start=(ONSET2 - 3 * HOUR).isoformat(),
                   end=(ONSET2 + 12 * MIN).isoformat(), service="svc", route="chat")
    t = tables(at, srv.url, "cost")["RouteCostSpike"].set_index("model")
    assert set(t.index) == {"gpt-4o-mini", "claude-3-5-haiku", "all models"}
    assert t.loc["gpt-4o-mini", "test"] == t.loc["claude-3-5-haiku", "test"] == "-"
    row, fields = t.loc["all models"], dict(alert.fields)
    assert row["test"] == "fires" and row["calls"] == fields["total"] and row["window"] == fields["window"]
    assert row["p"] == pytest.approx(fields["p_value"], rel=1e-9)
    assert row["mean_percentile"] == pytest.approx(alert.value)
