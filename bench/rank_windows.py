"""Rank-test windows: a scan of every window ending now against fixed windows, by simulation.

The 2x rules (`RouteCostSpike`, `RouteInputTokensSpike`) rank each call's cost at half its value
against the route's reference, so a usual call scores near 1 and a spike's calls near 0. Which
windows should one evaluation test? This draws routes at 0.2-5 calls a minute with lognormal
output tokens, a 4-8x output spike at an onset anywhere in a minute, scores the calls exactly as
analysis/route_shift.py does (upper-tail percentile of half the cost among 700 reference calls)
and evaluates every minute up to the P2 deadline (15 min) with alerts' own Irwin-Hall tail:

- `shipped`: every window of the newest 1..15 minutes at the shipped rule's share of p (the whole
  15 at p / 2, each shorter at p / 28: `Evidence.window_p_value` of `RouteCostSpike`);
- `flat 1-15`: every window at p / 15; other window sets at p / their size; fixed windows at p.

It also checks the scan's false-alarm rate where it can be measured: calls with uniform scores (the
exact null of a rank test) at p = 1e-2, the share of evaluations that fire, which must stay under p.

    .venv/bin/python bench/rank_windows.py [--seeds 20] [--p 1e-5]
"""
from __future__ import annotations

import argparse
import sys
from datetime import timedelta

import numpy as np

from analysis.rank_test import irwin_hall_lower


def _even(lengths: list[int]) -> dict[int, float]:
    """Window length (minutes) -> its share of p, even."""
    return {k: 1 / len(lengths) for k in lengths}


def _shipped() -> dict[int, float]:
    """The shipped scan's shares, from the rules file (one source)."""
    from alerts.rules import load_config

    rule = next(r for r in load_config(None, env={}).rules if r.name == "RouteCostSpike")
    ev, over = rule.condition.evidence, rule.condition.over
    assert ev is not None and over is not None and ev.scan
    return {k: ev.window_p_value(over, timedelta(minutes=k)) / ev.p_value for k in range(1, ev.windows(over) + 1)}


SETS = {"shipped": _shipped(), "flat 1-15": _even(list(range(1, 16))), "1,2,4,8,15": _even([1, 2, 4, 8, 15]),
        "3,7,15": _even([3, 7, 15]), "fixed 5": _even([5]), "fixed 10": _even([10]), "fixed 15": _even([15])}
RATES = (0.2, 0.3, 0.5, 1.0, 2.0, 5.0)                                      # calls a minute
SPIKES = ((0.3, 4), (0.3, 5), (0.4, 5), (0.5, 6), (0.6, 8))           # (token sigma, output factor)
DEADLINE = 15


def _fires(t: np.ndarray, u: np.ndarray, now: float, shares: dict[int, float], p: float) -> bool:
    """Any window [now - L, now) where the rank test holds (mean <= 0.5, p-value under p x L's share)."""
    for length, share in shares.items():
        inside = (t >= now - length) & (t < now)
        n, s = int(inside.sum()), float(u[inside].sum())
        each = p * share
        if n and s / n <= 0.5 and (s / n) ** n < each and irwin_hall_lower(s, n) < each:
            return True
    return False


def spike(seed: int, sigma: float, factor: float, rate: float, p: float) -> dict[str, int]:
    """Minutes from onset to the first firing per window set (absent: not within the deadline)."""
    rng = np.random.default_rng(seed)

    def cost(out: np.ndarray) -> np.ndarray:     # gpt-4o-mini-like: 500 input tokens, output-heavy
        return 500 * 0.15 + out * 0.6

    ref = cost(rng.lognormal(np.log(200), sigma, 700))
    offset = rng.uniform(0, 1)
    before = np.sort(rng.uniform(-DEADLINE, 0, rng.poisson(DEADLINE * rate))) + offset
    after = np.sort(rng.uniform(0, DEADLINE, rng.poisson(DEADLINE * rate))) + offset
    c = np.r_[cost(rng.lognormal(np.log(200), sigma, len(before))),
              cost(factor * rng.lognormal(np.log(200), sigma, len(after)))]
    t = np.r_[before, after]
    u = ((ref[None, :] >= c[:, None] / 2).sum(1) + 1) / (len(ref) + 1)
    out = {}
    for name, shares in SETS.items():
        first = next((i for i in range(1, DEADLINE + 1) if _fires(t, u, i, shares, p)), None)
        if first is not None:
            out[name] = first
    return out


def null_rate(seeds: int, p: float = 1e-2) -> dict[str, float]:
    """Share of evaluations that fire on uniform scores (1 call a minute, 200 evaluations a seed)."""
    fired = dict.fromkeys(SETS, 0)
    evaluations = 0
    for seed in range(seeds):
        rng = np.random.default_rng(10_000 + seed)
        t = np.sort(rng.uniform(0, 215, rng.poisson(215)))
        u = rng.uniform(size=len(t))
        for now in range(16, 216):
            evaluations += 1
            for name, shares in SETS.items():
                fired[name] += _fires(t, u, now, shares, p)
    return {k: v / evaluations for k, v in fired.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="spikes per rate and strength (default 20)")
    parser.add_argument("--p", type=float, default=1e-5, help="the rule's p-value (default 1e-5)")
    args = parser.parse_args()
    total = {k: [0, 0] for k in SETS}
    print(f"caught within {DEADLINE} min / mean minutes to fire, {len(SPIKES) * args.seeds} spikes per rate")
    for rate in RATES:
        row = {k: [0, 0] for k in SETS}
        for sigma, factor in SPIKES:
            for seed in range(args.seeds):
                for name, first in spike(seed * 7 + 1, sigma, factor, rate, args.p).items():
                    for acc in (row[name], total[name]):
                        acc[0] += 1
                        acc[1] += first
        print(f"{rate:>4g}/min  " + "  ".join(f"{k}: {v[0]} / {v[1] / max(v[0], 1):.1f}" for k, v in row.items()))
    print("all       " + "  ".join(f"{k}: {v[0]} / {v[1] / max(v[0], 1):.1f}" for k, v in total.items()))
    rates = null_rate(args.seeds)
    print("null (uniform scores, p = 1e-2), share of evaluations firing: "
          + "  ".join(f"{k}: {v:.4f}" for k, v in rates.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
