"""Statistics the analyzers use, in numpy / scipy, each checked against scipy or Evidently in tests.

The drift tests reproduce Evidently's defaults (test choice by reference size and cardinality,
thresholds, binning) so the scheduled fast path gives Evidently's verdicts without importing it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance


def ks(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and two-sided p-value (scipy's exact/asymptotic choice)."""
    res = stats.ks_2samp(reference, current)
    return float(res.statistic), float(res.pvalue)


def wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    return float(stats.wasserstein_distance(reference, current))


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10, lo: float | None = None,
        hi: float | None = None, eps: float = 1e-4) -> float:
    """Population stability index over `bins` equal-width bins (on [lo, hi], default the data range)."""
    lo = float(min(reference.min(), current.min())) if lo is None else lo
    hi = float(max(reference.max(), current.max())) if hi is None else hi
    if hi <= lo:
        return 0.0
    edges = np.linspace(lo, hi, bins + 1)
    ref = np.histogram(np.clip(reference, lo, hi), edges)[0] / len(reference)
    cur = np.histogram(np.clip(current, lo, hi), edges)[0] / len(current)
    ref, cur = np.maximum(ref, eps), np.maximum(cur, eps)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def two_proportion_test(x1: int, n1: int, x2: int, n2: int, alternative: str = "greater") -> float:
    """p-value that proportion 2 (candidate) is greater than proportion 1 (baseline), pooled z-test."""
    if n1 == 0 or n2 == 0:
        return float("nan")
    p = (x1 + x2) / (n1 + n2)
    if p in (0.0, 1.0):
        return 1.0
    z = (x2 / n2 - x1 / n1) / np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    if alternative == "greater":
        return float(stats.norm.sf(z))
    if alternative == "less":
        return float(stats.norm.cdf(z))
    return float(2 * stats.norm.sf(abs(z)))


def mann_whitney(baseline: np.ndarray, candidate: np.ndarray, alternative: str = "greater") -> float:
    """p-value that candidate values tend to be greater ('greater') or smaller ('less') than baseline."""
    if len(baseline) == 0 or len(candidate) == 0:
        return float("nan")
    return float(stats.mannwhitneyu(candidate, baseline, alternative=alternative).pvalue)


def linear_trend(y: np.ndarray) -> tuple[float, float]:
    """Slope per step and its two-sided p-value (least squares over equally spaced points)."""
    if len(y) < 3 or np.all(y == y[0]):
        return 0.0, 1.0
    res = stats.linregress(np.arange(len(y), dtype=float), y)
    return float(res.slope), float(res.pvalue)


# --- Evidently-compatible drift tests -------------------------------------------------------


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str               # num | cat
    stattest: str           # ks | chisquare | z | wasserstein | jensenshannon
    score: float
    threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int

    def as_dict(self) -> dict:
        return {"column": self.column, "kind": self.kind, "stattest": self.stattest, "score": self.score,
                "threshold": self.threshold, "drifted": self.drifted,
                "reference_rows": self.reference_rows, "current_rows": self.current_rows}


def _clean(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return values[np.isfinite(values)]
    return values[pd.notna(values)] if values.dtype == object else values


def _category_counts(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # hash-based factorize: linear time, unlike sorting a million strings
    codes, keys = pd.factorize(np.concatenate([reference, current]))
    ref = np.bincount(codes[: len(reference)], minlength=len(keys)).astype(float)
    cur = np.bincount(codes[len(reference):], minlength=len(keys)).astype(float)
    return ref, cur


def _chisquare(reference: np.ndarray, current: np.ndarray) -> float:
    ref, cur = _category_counts(reference, current)
    f_exp = ref * (len(current) / len(reference))
    return float(stats.chisquare(cur, f_exp)[1])


def _z_test(reference: np.ndarray, current: np.ndarray) -> float:
    keys = np.unique(np.concatenate([reference, current]).astype(str))
    if len(keys) == 1:
        return 1.0
    first = keys[0]
    ref = (reference.astype(str) != first).astype(float)
    cur = (current.astype(str) != first).astype(float)
    n1, n2 = len(ref), len(cur)
    p1, p2 = ref.sum() / n1, cur.sum() / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return float(2 * (1 - stats.norm.cdf(abs(z))))


def _jensenshannon(reference: np.ndarray, current: np.ndarray, kind: str) -> float:
    ref_unique = len(pd.unique(reference))
    if kind == "num" and ref_unique > 20:
        combined = np.concatenate([reference, current]).astype(float)
        bins = np.histogram_bin_edges(combined, bins="sturges")
        ref_pct = np.histogram(reference, bins)[0] / len(reference)
        cur_pct = np.histogram(current, bins)[0] / len(current)
    else:
        ref, cur = _category_counts(reference, current)
        ref_pct, cur_pct = ref / len(reference), cur / len(current)
    return float(distance.jensenshannon(ref_pct, cur_pct))


def column_drift(column: str, kind: str, reference: np.ndarray, current: np.ndarray) -> ColumnDrift | None:
    """Evidently's default drift test for one column (None when either side is empty)."""
    if kind == "num":
        reference = _clean(np.asarray(reference, dtype=float))
        current = _clean(np.asarray(current, dtype=float))
        n_values = len(pd.unique(np.concatenate([reference, current])))
    else:
        reference = _clean(np.asarray(reference, dtype=object))
        current = _clean(np.asarray(current, dtype=object))
        n_values = len(pd.unique(np.concatenate([reference, current])))
    if len(reference) == 0 or len(current) == 0:
        return None
    small = len(reference) <= 1000
    if small and (kind == "cat" or n_values <= 5):
        if n_values > 2:
            score, test = _chisquare(reference, current), "chisquare"
        else:
            score, test = _z_test(reference, current), "z"
        threshold, drifted = 0.05, score < 0.05
    elif small:
        score, test = ks(reference, current)[1], "ks"
        threshold, drifted = 0.05, score <= 0.05
    elif kind == "cat" or n_values <= 5:
        score, test = _jensenshannon(reference, current, kind), "jensenshannon"
        threshold, drifted = 0.1, score >= 0.1
    else:
        norm = max(float(np.std(reference)), 0.001)
        score, test = wasserstein(reference, current) / norm, "wasserstein"
        threshold, drifted = 0.1, score >= 0.1
    return ColumnDrift(column, kind, test, float(score), threshold, bool(drifted), len(reference), len(current))


def dataset_drift(columns: list[ColumnDrift], drift_share: float = 0.5) -> tuple[float, bool]:
    """Share of drifted columns and Evidently's dataset verdict (share >= drift_share)."""
    if not columns:
        return 0.0, False
    share = sum(c.drifted for c in columns) / len(columns)
    return share, share >= drift_share
