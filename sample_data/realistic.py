"""A world drawn the way production traffic looks, for the alert detection benchmark.

Three services, nine route x model pairs on four providers (two hosted APIs, Google, a
self-hosted vLLM model); snapshot response names; long-output routes with p99 of 5-30 s; routes at
a few calls a minute; diurnal load of about 2 calls/s at level 1; 0.5-0.8% background failures;
a clean control period (a first day whose baselines are learned from its first hours, and by
choice more clean days, on which the hourly drift and confidence tests have a reference), then
seven incidents confined to one route, model or service, placed by the seed.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sample_data.scenario import Scenario, scenario_from_dict

CLEAN_MINUTES = 24 * 60     # one clean day
# (service, requests/minute at level 1 before the daily cycle (mean factor 0.65), routes:
#  (route, weight, prompt tokens, output tokens, [(model, snapshot, provider, median ms, sigma, share)]))
WORLD: tuple[tuple[str, float, tuple], ...] = (
    ("support-bot", 95.0, (
        ("answer", 0.70, 650, 180, [("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "openai", 1100, 0.45, 1.0)]),
        ("summarize", 0.26, 1800, 900, [("gpt-4o", "gpt-4o-2024-08-06", "openai", 6000, 0.55, 1.0)]),
        ("escalate", 0.04, 1200, 400, [("claude-3-5-sonnet", "claude-3-5-sonnet-20241022", "anthropic", 3500, 0.5,
                                        1.0)]),
    )),
    ("search-assist", 70.0, (
        ("rerank", 0.55, 900, 40, [("llama-3.1-70b", "", "vllm", 450, 0.35, 1.0)]),
        ("extract", 0.35, 1200, 120, [("llama-3.1-70b", "", "vllm", 800, 0.4, 1.0)]),
        ("report", 0.10, 2500, 1500, [("gemini-1.5-pro", "gemini-1.5-pro-002", "google", 9000, 0.45, 1.0)]),
    )),
    ("claims-triage", 26.0, (
        ("classify", 0.75, 1400, 60, [("claude-3-5-haiku", "claude-3-5-haiku-20241022", "anthropic", 1300, 0.4, 0.8),
                                      ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "openai", 900, 0.4, 0.2)]),
        ("draft-letter", 0.25, 1600, 1100, [("gpt-4o", "gpt-4o-2024-08-06", "openai", 7000, 0.5, 1.0)]),
    )),
)
PRICES = {"gpt-4o-mini": (0.00015, 0.0006), "gpt-4o": (0.0025, 0.01), "claude-3-5-sonnet": (0.003, 0.015),
          "claude-3-5-haiku": (0.0008, 0.004), "llama-3.1-70b": (0.0004, 0.0004), "gemini-1.5-pro": (0.00125, 0.005)}
# A 15% burst over 5 minutes is only distinguishable from 0.8% background failures with enough calls:
# error bursts go to routes with at least this many calls a minute on average.
MIN_BURST_RPM = 8.0
COST_CAUSE = {"input": "retrieval stuffs the prompt", "output": "prompt change"}


def _pairs(world: list[dict[str, Any]]) -> list[tuple[str, str, str, float]]:
    """(service, route, model, mean calls a minute) of every route x model pair."""
    return [(s["name"], r["name"], m["name"], s["requests_per_minute"] * 0.65 * r["weight"] * m["traffic_share"])
            for s in world for r in s["routes"] for m in r["models"]]


def realistic_scenario(seed: int, level: float = 1.0, incident_hours: float = 12.0, clean_days: int = 1) -> Scenario:
    """The world at `level` x the traffic of level 1 (about 2 calls/s), incidents placed by `seed`
    after `clean_days` clean days; the recording lasts those plus `incident_hours`. The seed draws
    the same world and incidents whatever the number of clean days."""
    if clean_days < 1:
        raise ValueError(f"clean_days must be at least 1, not {clean_days}")
    clean_minutes = clean_days * CLEAN_MINUTES
    rng = np.random.default_rng(seed)
    services: list[dict[str, Any]] = []
    for name, rpm, routes in WORLD:
        svc_routes = []
        for route, weight, prompt, output, models in routes:
            svc_routes.append({
                "name": route, "weight": weight * rng.uniform(0.85, 1.15), "prompt_tokens_median": prompt,
                "output_tokens_median": output, "override_rate": float(rng.uniform(0.05, 0.12)),
                "models": [{"name": m, "snapshot": snap, "provider": prov, "version": f"{prov}-{seed % 3 + 1}",
                            "input_per_1k": PRICES[m][0], "output_per_1k": PRICES[m][1],
                            "latency_median_ms": float(med * rng.uniform(0.8, 1.25)), "latency_sigma": sig,
                            "traffic_share": share}
                           for m, snap, prov, med, sig, share in models]})
        services.append({"name": name, "version": "1.0.0", "requests_per_minute": rpm * level,
                         "background_errors": float(rng.uniform(0.005, 0.008)), "routes": svc_routes})
    pairs = _pairs(services)
    incidents = []
    t0 = clean_minutes

    def pick(candidates: list) -> Any:
        return candidates[int(rng.integers(len(candidates)))]

    # Slow P3 incidents start early in the incident period on routes of their own.
    drift = pick(pairs)
    incidents.append({"kind": "input_drift", "service": drift[0], "route": drift[1], "magnitude": 1,
                      "start_min": t0 + int(rng.integers(0, 60)), "duration": 360,
                      "description": "new campaign: longer prompts, other languages and topics"})
    override = pick([p for p in pairs if p[:2] != drift[:2] and p[3] >= 5.0])
    for s in services:
        for r in s["routes"]:
            if (s["name"], r["name"]) == override[:2]:
                r["override_rate"] = 0.20     # the route reviewers already override often
    incidents.append({"kind": "override_rise", "service": override[0], "route": override[1], "magnitude": 0.40,
                      "start_min": t0 + int(rng.integers(0, 60)), "duration": 720,
                      "description": "reviewers override 40% instead of 20%"})
    three_route = [p for p in pairs if p[0] in ("support-bot", "search-assist")]
    spike = pick(three_route)
    burst = pick([p for p in pairs if p[3] >= MIN_BURST_RPM] or [max(pairs, key=lambda p: p[3])])
    outage = pick([s["name"] for s in services])
    cost = pick(pairs)
    # longer prompts (a retrieval bug stuffing context) or runaway outputs, from a stream of its own
    # so every other draw of the seed is what it was before cost spikes came in two kinds
    cost_tokens = str(np.random.default_rng([seed, 1]).choice(["input", "output"]))
    conf = pick(pairs)
    short = [
        {"kind": "latency_spike", "service": spike[0], "route": spike[1], "model": spike[2], "magnitude": 4,
         "duration": 20, "description": "4x latency on one route and model"},
        {"kind": "error_burst", "service": burst[0], "route": burst[1], "magnitude": 0.15, "duration": 25,
         "description": "15% of the route's calls fail (provider 5xx)"},
        {"kind": "total_outage", "service": outage, "duration": 10, "description": "every call of the service fails"},
        {"kind": "cost_spike", "service": cost[0], "route": cost[1], "magnitude": 5, "tokens": cost_tokens,
         "duration": 60, "description": f"5x {cost_tokens} tokens ({COST_CAUSE[cost_tokens]})"},
        {"kind": "confidence_drop", "service": conf[0], "route": conf[1], "magnitude": 0.25, "duration": 90,
         "description": "confidence falls by 0.25"},
    ]
    order = rng.permutation(len(short))
    start = t0 + 60
    for i in order:
        inc = short[i]
        start += int(rng.integers(30, 75))
        incidents.append({**inc, "start_min": start})
        start += inc["duration"]
    for inc in incidents:
        inc["end_min"] = inc["start_min"] + inc.pop("duration")
    days = max(clean_minutes / 1440 + incident_hours / 24, max(i["end_min"] for i in incidents) / 1440 + 1 / 24)
    return scenario_from_dict({"name": f"realistic-{seed}-x{level:g}", "days": days, "services": services,
                               "incidents": incidents, "clean_minutes": clean_minutes})
