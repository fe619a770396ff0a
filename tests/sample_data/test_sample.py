"""The sample generator: seeded, realistic, with its incidents where the scenario says."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from aiwatch.config import Settings
from sample_data.commands import COMMITTED_SAMPLE, generated_messages, recorded_messages
from sample_data.generate import draw, period_start
from sample_data.loader import HttpSink, StoreSink, deliver
from sample_data.scenario import EXPECTED_SEVERITY, INCIDENT_KINDS, load_scenario

START = datetime(2026, 11, 1)


@pytest.fixture(scope="module")
def scenario():
    return load_scenario()


@pytest.fixture(scope="module")
def requests(scenario):
    return draw(scenario, START, seed=7)


def test_same_seed_same_data_other_seed_other_data(scenario, requests):
    again = draw(scenario, START, seed=7)
    assert np.array_equal(again.latency_ms, requests.latency_ms)
    assert not np.array_equal(draw(scenario, START, seed=8).latency_ms[:100], requests.latency_ms[:100])


def test_every_incident_kind_is_in_the_default_scenario(scenario):
    assert {i.kind for i in scenario.incidents} == set(INCIDENT_KINDS) == set(EXPECTED_SEVERITY)


def test_incidents_change_the_data_inside_their_window_only(scenario, requests):
    minutes = (requests.t_ns // 10**9 - int(START.replace(tzinfo=UTC).timestamp())) // 60
    for inc in scenario.incidents:
        target = (requests.service == inc.service) & ((requests.route == inc.route) if inc.route else True)
        inside = target & (minutes >= inc.start_min) & (minutes < inc.end_min)
        before = target & (minutes >= inc.start_min - 600) & (minutes < inc.start_min)
        assert inside.sum() > 10 and before.sum() > 10, inc.kind
        if inc.kind == "latency_spike":
            assert np.median(requests.latency_ms[inside]) > 4 * np.median(requests.latency_ms[before])
        elif inc.kind in ("error_burst", "total_outage"):
            assert (~requests.ok[inside]).mean() > 0.2 and (~requests.ok[before]).mean() < 0.05
        elif inc.kind == "cost_spike":
            assert requests.cost[inside].mean() > 3 * requests.cost[before].mean()
        elif inc.kind == "confidence_drop":
            assert np.nanmean(requests.confidence[before]) - np.nanmean(requests.confidence[inside]) > 0.2
        elif inc.kind == "format_drop":
            assert requests.format_ok[inside].mean() < 0.75 < requests.format_ok[before].mean()
        elif inc.kind == "input_drift":
            assert (requests.language[inside] == "en").mean() < 0.6 < (requests.language[before] == "en").mean()
        elif inc.kind == "override_rise":
            reviewed_in = inside & (requests.review != "")
            reviewed_before = before & (requests.review != "")
            rate_in = np.isin(requests.review[reviewed_in], ["modified", "rejected"]).mean()
            rate_before = np.isin(requests.review[reviewed_before], ["modified", "rejected"]).mean()
            assert rate_in > 0.2 > rate_before


def test_latency_is_lognormal_and_costs_follow_the_price_table(scenario, requests):
    ok = requests.ok & (requests.model == "gpt-4o")
    expected = requests.input_tokens[ok] / 1000 * 0.0025 + requests.output_tokens[ok] / 1000 * 0.01
    assert np.allclose(requests.cost[ok], expected)
    log_lat = np.log(requests.latency_ms[ok])
    assert abs(np.median(requests.latency_ms[ok]) - 1600) < 200 and 0.2 < log_lat.std() < 0.6


def test_generated_sample_loads_into_a_store_with_all_signals(tmp_path, scenario):
    small = replace(scenario, days=0.05)
    sink = StoreSink(Settings(data_dir=str(tmp_path)).db_path)
    total = deliver(generated_messages(small, START, 7), sink)
    store = sink.store
    assert total > 0
    assert store.scalar("SELECT count(*) FROM spans WHERE is_llm") == store.scalar("SELECT count(*) FROM audit_events")
    assert store.scalar("SELECT count(DISTINCT service_name) FROM spans") == 3
    assert store.scalar("SELECT count(*) FROM feedback") > 0
    assert store.scalar("SELECT count(*) FROM resource_metrics") > 0
    assert store.scalar("SELECT count(*) FROM spans WHERE is_llm AND parent_span_id IS NULL") == 0
    sink.close()


def test_committed_sample_is_moved_to_end_now_and_sent_over_otlp(fresh_server):
    end = datetime(2026, 11, 25, 12, 0)
    header, messages = recorded_messages(COMMITTED_SAMPLE, end)
    assert header.days == 3
    first = []
    for signal, msg in messages:
        if signal == 1:
            first.append(msg)
            if len(first) == 3:
                break
    sink = HttpSink(fresh_server.url)
    deliver(((1, m) for m in first), sink)
    sink.close()
    rows = fresh_server.query("spans", start=(end - timedelta(days=3)).isoformat(), end=end.isoformat(),
                              limit=100_000)
    assert len(rows) == sum(len(ss.spans) for m in first for rs in m.resource_spans for ss in rs.scope_spans)
    assert min(r["start_time"] for r in rows) >= (end - timedelta(days=3)).isoformat()


def test_period_start_ends_at_the_given_time(scenario):
    assert period_start(scenario, datetime(2026, 11, 25, 12, 0, 30)) == datetime(2026, 11, 22, 12, 0)
