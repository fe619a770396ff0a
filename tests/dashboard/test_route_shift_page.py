"""The route alerts' evidence on the pages an alert links to, through a real server and the real
router (AppTest): the Drift page's newest window per route is what the shipped rules evaluate at
that minute (alerts.conditions.evaluate on the same store is the oracle), on a route whose inputs
drifted and one that did not; the Quality page shows the confidence rule's windows, none firing."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

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
END = ONSET + 25 * MIN          # the page's window end: the alert evaluated at this minute is the oracle
INPUT_RULES = ("RouteInputTokensShift", "RouteInputTokensDrop", "RouteInputMixShift")


@pytest.fixture(scope="module")
def shifted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, dict]]:
    """7 hours of two routes at 4 calls a minute; from ONSET the search route's inputs are 1.8x as
    long and in a language it never saw. Scored by route_shift; the shipped rules evaluated at END
    before the server takes the database."""
    from store.db import Store

    data_dir = tmp_path_factory.mktemp("shift")
    store = Store(data_dir / "aiwatch.duckdb")
    try:
        shifts = (Shift(ONSET, T0 + 7 * HOUR, "input_tokens", 1.8, route="search"),
                  Shift(ONSET, T0 + 7 * HOUR, "language", "ja", route="search"))
        write(store, spans(T0, 7 * 60, 4, seed=12, shifts=shifts))
        runner.analyze(store, RouteShiftAnalyzer(store, AnalysisSettings(route_baseline_hours=5)),
                       Window(T0, T0 + 7 * HOUR, T0))
        samples, failed = evaluate(store, load_config(None, env={}), END)
        assert not failed
        fired = {(s.rule.name, s.labels["route"]): s for s in samples.values()}
    finally:
        store.close()
    srv = start_server(data_dir)
    yield srv, fired
    stop_server(srv)


def tables(at: AppTest, page: str) -> dict[str, Any]:
    """The page's route-shift tables by rule: one per shipped rank rule of the page, in rule order."""
    from dashboard.evidence import rank_rules

    shown = [df.value for df in at.dataframe if "mean_percentile" in df.value.columns]
    names = [r.name for r in rank_rules(page)]
    assert len(shown) == len(names), (names, len(shown))
    return dict(zip(names, shown, strict=True))


def test_drift_page_shows_the_input_rules_evidence_as_the_alerts_evaluate_it(shifted, monkeypatch) -> None:
    srv, fired = shifted
    at = open_page(srv.url, "drift", monkeypatch, start=(T0 + 4 * HOUR).isoformat(), end=END.isoformat(),
                   service="svc")
    charts = [c for c in at.get("plotly_chart")]
    assert len(charts) >= len(INPUT_RULES)
    found = tables(at, "drift")
    assert set(found) == set(INPUT_RULES)
    for rule in INPUT_RULES:
        t = found[rule].set_index("route")
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
    # the drifted route fires on its length and its language; the clean one on nothing
    assert {k for k in fired if k[0] in INPUT_RULES} == {("RouteInputTokensShift", "search"),
                                                         ("RouteInputMixShift", "search")}
    assert found["RouteInputTokensShift"].set_index("route").loc["chat", "mean_percentile"] > 0.3


def test_quality_page_shows_the_confidence_rule_quiet_on_unshifted_routes(shifted, monkeypatch) -> None:
    srv, fired = shifted
    at = open_page(srv.url, "quality", monkeypatch, start=(T0 + 5 * HOUR).isoformat(), end=END.isoformat(),
                   service="svc", route="chat")
    t = tables(at, "quality")["RouteConfidenceDrop"]
    assert t["route"].tolist() == ["chat"] and t["test"].tolist() == ["-"]
    assert ("RouteConfidenceDrop", "chat") not in fired
    assert 0.3 < t["mean_percentile"].iloc[0] < 0.7     # as usual: about the middle of the route's calls


def test_an_incident_links_first_to_the_pages_of_its_rules() -> None:
    from dashboard.evidence import rule_pages

    assert rule_pages(["RouteInputTokensShift", "RouteErrorBurst", "RouteInputMixShift", "MyOwnRule"]) == [
        "drift", "errors"]
    assert rule_pages(["RouteConfidenceDrop", "RouteOutputTokensSpike", "ServiceSilent"]) == [
        "quality", "cost", "overview"]
