"""Frame work: pandas, polars and numpy on the shapes aiwatch has, for README's polars decision.

1. Category codes for the drift tests (analysis/stats.py): object arrays of strings, as the drift
   samples hold them -> pandas.factorize, polars (strings built from the objects, categorical
   codes made dense) and numpy's sort-based unique.
2. Distinct count of a float column: pandas.unique, numpy.unique, polars n_unique.
3. The dashboard's metric shaping (dashboard/frames.py `series`): pick a metric from the tall
   `metrics` table and sum it per bucket, in pandas and in polars plus the conversion back to the
   pandas frame plotly 5 takes (Evidently pins plotly < 6, which has no polars input).

CPU time of this process, best of 5 (the machine is shared, wall time is not the library's).

Run: .venv/bin/python bench/frames.py
"""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import polars as pl


def best_ms(fn: Callable[[], object], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best * 1000


def polars_codes(values: np.ndarray) -> np.ndarray:
    physical = pl.Series(values, dtype=pl.String).cast(pl.Categorical).to_physical().to_numpy()
    return np.unique(physical, return_inverse=True)[1]


def main() -> None:
    rng = np.random.default_rng(0)
    routes = np.array([f"/route-{i}" for i in range(40)], dtype=object)
    print("category codes of object strings (drift tests)")
    for n in (2_000, 50_000, 1_000_000):
        values = routes[rng.integers(0, len(routes), n)]
        print(f"  {n:>9,}: pandas {best_ms(lambda v=values: pd.factorize(v)):8.2f} ms   "
              f"polars {best_ms(lambda v=values: polars_codes(v)):8.2f} ms   "
              f"numpy {best_ms(lambda v=values: np.unique(v, return_inverse=True)):8.2f} ms")
    print("distinct floats")
    for n in (2_000, 1_000_000):
        floats = rng.normal(size=n)
        print(f"  {n:>9,}: pandas {best_ms(lambda f=floats: pd.unique(f)):8.2f} ms   "
              f"numpy {best_ms(lambda f=floats: np.unique(f)):8.2f} ms   "
              f"polars {best_ms(lambda f=floats: pl.Series(f).n_unique()):8.2f} ms")
    print("dashboard: one metric summed per bucket from the tall metrics table")
    for n in (5_000, 200_000):
        t0 = datetime(2026, 1, 1)
        table = {"time": [t0 + timedelta(minutes=int(i)) for i in rng.integers(0, 1440, n)],
                 "metric": rng.choice(["requests", "errors", "cost_usd", "latency_p95_ms"], n),
                 "service_name": rng.choice(["a", "b", "c"], n), "value": rng.random(n)}
        pdf, plf = pd.DataFrame(table), pl.DataFrame(table)

        def with_pandas(pdf: pd.DataFrame = pdf) -> pd.DataFrame:
            return pdf[pdf["metric"] == "requests"].groupby("time", as_index=False)["value"].sum()

        def with_polars(plf: pl.DataFrame = plf) -> pd.DataFrame:
            return plf.filter(pl.col("metric") == "requests").group_by("time").agg(pl.col("value").sum()) \
                .sort("time").to_pandas()
        print(f"  {n:>9,} rows: pandas {best_ms(with_pandas):8.2f} ms   "
              f"polars + to_pandas {best_ms(with_polars):8.2f} ms")


if __name__ == "__main__":
    main()
