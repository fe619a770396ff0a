"""The benchmark world looks like production traffic: snapshots, long tails, quiet routes, four
providers, 0.5-0.8% background failures, a clean first day and incidents confined to their target."""
from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from sample_data.generate import draw
from sample_data.realistic import CLEAN_MINUTES, realistic_scenario

START = datetime(2026, 11, 1)


@pytest.fixture(scope="module")
def world():
    scenario = realistic_scenario(11, level=1.0)
    return scenario, draw(scenario, START, seed=11)


def test_traffic_shape(world):
    scenario, req = world
    minutes = (req.t_ns // 10**9 - int(START.replace(tzinfo=UTC).timestamp())) // 60
    clean = minutes < CLEAN_MINUTES
    assert 1.6 < clean.sum() / 86_400 < 2.6                      # about 2 calls/s over the day
    assert len(set(req.provider)) == 4 and "vllm" in set(req.provider)
    pairs = {(s, r, m) for s, r, m in zip(req.service, req.route, req.model)}
    assert len(pairs) == 9
    assert 0.004 < (~req.ok[clean]).mean() < 0.009
    # failures carry no response model; answers carry the provider's snapshot name
    assert set(req.response_model[~req.ok]) == {""}
    assert "gpt-4o-mini-2024-07-18" in set(req.response_model[req.ok & (req.model == "gpt-4o-mini")])
    per_route = {}
    for route in set(req.route):
        m = clean & (req.route == route)
        per_route[route] = (m.sum() / CLEAN_MINUTES, np.percentile(req.latency_ms[m & req.ok], 99))
    assert min(rate for rate, _ in per_route.values()) < 5                      # routes at a few calls a minute
    assert 5_000 < max(p99 for _, p99 in per_route.values()) < 30_000          # long-output routes


def test_incidents_start_after_the_clean_day_and_stay_on_their_target(world):
    scenario, req = world
    minutes = (req.t_ns // 10**9 - int(START.replace(tzinfo=UTC).timestamp())) // 60
    assert len(scenario.incidents) == 7
    for inc in scenario.incidents:
        assert inc.start_min >= CLEAN_MINUTES
        inside = (minutes >= inc.start_min) & (minutes < inc.end_min)
        target = np.array([inc.targets(s, r, m) for s, r, m in zip(req.service, req.route, req.model)])
        if inc.kind == "latency_spike":
            other = inside & ~target
            assert np.median(req.latency_ms[inside & target & req.ok]) > 3 * np.median(
                req.latency_ms[target & ~inside & req.ok & (minutes >= CLEAN_MINUTES - 600)])
            assert other.sum() > 0 and (~req.ok[other]).mean() < 0.02
        if inc.kind == "error_burst":
            assert 0.1 < (~req.ok[inside & target]).mean() < 0.25
            assert (~req.ok[inside & ~target]).mean() < 0.02
