"""Override-rate windows: the hourly rule alone against the hourly rule plus a 6-hour one, by simulation.

`OverrideRateIncrease` tests the last hour's reviews against the route's reviews of the day before
(Fisher's exact test, one-sided, the rise at least 5 points). On a route reviewed every few minutes
an hour holds a dozen reviews, and a sustained 20% -> 40% rise can go unseen for its whole 12 hours.
`OverrideRateIncrease6h` runs the same test over 6 hours. This draws reviews as a Poisson stream at
a few rates, evaluates every minute exactly as the rule does (alerts/conditions.py, `fisher`), and
reports for each candidate p of the 6-hour window:

- chance firings a route-day on 20% all along (an episode: firings less than an hour apart);
- for a rise to 40% lasting 12 hours: caught within 60 minutes (the P3 deadline), within 3 hours,
  never, and the median minutes to the first firing.

The rules' windows, p-values and margins come from the rules file (one source).

    .venv/bin/python bench/override_windows.py [--days 400] [--rises 100] [--seed 3]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

BASE, RISE, RISE_MIN = 0.20, 0.40, 720
RATES = (0.25, 0.5, 0.9)                        # reviews a minute
CANDIDATES = (5e-4, 2e-4, 1e-4)                 # the 6-hour window's p (the shipped one is added)
Spec = tuple[int, int, float, float, float, int]     # window and baseline minutes, p, delta, min_bad, recent


def _shipped() -> dict[str, Spec]:
    """rule -> (window minutes, baseline minutes, p, delta, min_bad, recent minutes or 0) of the
    shipped override rules."""
    from alerts.rules import load_config

    out = {}
    for r in load_config(None, env={}).rules:
        ev, over = r.condition.evidence, r.condition.over
        if ev is not None and over is not None and ev.bad == "overrides":
            assert ev.test == "fisher" and ev.factor == 1.0, r.name
            out[r.name] = (int(over.total_seconds() // 60), int(ev.baseline_window.total_seconds() // 60),
                           ev.p_value, ev.delta, ev.min_bad, int(ev.recent.total_seconds() // 60) if ev.recent else 0)
    return out


def _fires(reviews: np.ndarray, overrides: np.ndarray, spec: Spec, start: int) -> np.ndarray:
    """Per minute from `start`: does the rule fire (Fisher's test of the window against the baseline,
    and with `recent` the newest minutes over the tolerated rate)?"""
    from scipy.stats import hypergeom

    window, baseline, p, delta, min_bad, recent = spec
    c_r, c_o = np.concatenate([[0], np.cumsum(reviews)]), np.concatenate([[0], np.cumsum(overrides)])
    t = np.arange(start, len(reviews) + 1)
    n, k = c_r[t] - c_r[t - window], c_o[t] - c_o[t - window]
    m, x = c_r[t - window] - c_r[t - window - baseline], c_o[t - window] - c_o[t - window - baseline]
    test = (k >= max(min_bad, 1)) & (n > 0) & (m > 0)
    test[test] &= k[test] / n[test] > x[test] / m[test] + delta
    if recent:
        n_r, k_r = c_r[t] - c_r[t - recent], c_o[t] - c_o[t - recent]
        test &= n_r > 0
        test[test] &= k_r[test] / n_r[test] > x[test] / m[test] + delta
    out = np.zeros(len(t), dtype=bool)
    out[test] = hypergeom.sf(k[test] - 1, m[test] + n[test], x[test] + k[test], n[test]) < p
    return out


def _episodes(firing: np.ndarray, gap: int = 60) -> int:
    idx = np.flatnonzero(firing)
    return 0 if not len(idx) else 1 + int((np.diff(idx) > gap).sum())


def _runs(reviews: np.ndarray, overrides: np.ndarray, rises: list, hourly: Spec, six: Spec, p: float | None,
          lead: int, days: int) -> tuple[float, np.ndarray]:
    """Chance episodes a route-day, and minutes to the first firing of each rise: the hourly rule,
    or the hourly rule or the 6-hour one at p."""
    def fire(rv: np.ndarray, ov: np.ndarray, start: int) -> np.ndarray:
        f = _fires(rv, ov, hourly, start)
        return f if p is None else f | _fires(rv, ov, (six[0], six[1], p, *six[3:]), start)
    chance = _episodes(fire(reviews, overrides, lead)) / days
    first = [np.flatnonzero(fire(r, o, lead + 1)) for r, o in rises]
    return chance, np.array([f[0] + 1 if len(f) else np.inf for f in first])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=400, help="clean route-days per rate (default 400)")
    parser.add_argument("--rises", type=int, default=100, help="12-hour rises per rate (default 100)")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    rules = _shipped()
    hourly = rules["OverrideRateIncrease"]
    w6, b6, p6, *_ = rules["OverrideRateIncrease6h"]
    rng = np.random.default_rng(args.seed)
    lead = b6 + w6                                   # history before the first evaluation
    print(f"hourly rule p < {hourly[2]:g}; shipped 6-hour p < {p6:g}; base {BASE:.0%}, rise to {RISE:.0%}")
    print("| reviews/min | 6h p | chance firings / route-day | in 60 min | in 3 h | never in 12 h | median min |")
    print("|---|---|---|---|---|---|---|")
    for rate in RATES:
        reviews = rng.poisson(rate, lead + args.days * 1440)
        overrides = rng.binomial(reviews, BASE)
        rises = []
        for _ in range(args.rises):
            r = rng.poisson(rate, lead + RISE_MIN)
            o = rng.binomial(r, np.where(np.arange(len(r)) >= lead, RISE, BASE))
            rises.append((r, o))

        for p in (None, *sorted({*CANDIDATES, p6}, reverse=True)):
            chance, delay = _runs(reviews, overrides, rises, hourly, rules["OverrideRateIncrease6h"], p, lead,
                                  args.days)
            label = "hourly only" if p is None else f"{p:g}" + (" (shipped)" if p == p6 else "")
            print(f"| {rate} | {label} | {chance:.3f} | {np.mean(delay <= 60):.0%} | {np.mean(delay <= 180):.0%} "
                  f"| {np.mean(np.isinf(delay)):.0%} | {np.median(delay):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
