"""The live demo's calls are drawn as the sample draws its routes where it ends: the answer route is
in the sample's input-drift incident to its end (longer prompts, other languages and topics), the
summarize route is not."""
from __future__ import annotations

import numpy as np

from sample_data.generate import BASE_LANGUAGE_P, LANGUAGES, draw_one
from sample_data.scenario import load_scenario


def test_draw_one_continues_the_sample_where_it_ends() -> None:
    scenario = load_scenario()
    end = int(scenario.days * 24 * 60) - 1
    rng = np.random.default_rng(5)
    answer = [draw_one(scenario, "support-bot", "answer", end, rng) for _ in range(3000)]
    summarize = [draw_one(scenario, "support-bot", "summarize", end, rng) for _ in range(3000)]
    routes = {r.name: r for s in scenario.services if s.name == "support-bot" for r in s.routes}
    # lognormal around the route's median; x1.8 on the drifted route
    assert np.median([c["input_tokens"] for c in answer]) / routes["answer"].prompt_tokens_median > 1.6
    assert 0.9 < np.median([c["input_tokens"] for c in summarize]) / routes["summarize"].prompt_tokens_median < 1.1
    english = BASE_LANGUAGE_P[list(LANGUAGES).index("en")]
    assert abs(np.mean([c["language"] == "en" for c in summarize]) - english) < 0.03
    assert np.mean([c["language"] == "en" for c in answer]) < english - 0.2
    assert all(0 <= c["confidence"] <= 1 for c in summarize if c["ok"])
