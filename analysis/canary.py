"""Canary analysis: each candidate version (arm 'canary') against the baseline arm of its service over
the same hour, one one-sided test per metric, and a pass / fail / inconclusive verdict with evidence.

A check fails when the candidate is significantly worse (p < alpha) *and* worse by more than its
tolerance; too few calls on either side is inconclusive; otherwise the canary passes.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl

from analysis import stats
from analysis.base import Result, Window
from analysis.settings import AnalysisSettings
from store import analytics
from store.base import Store
from store.prices import resolve_prices

VERDICT_VALUE = {"pass": 1.0, "inconclusive": 0.0, "fail": -1.0}


def _check(metric: str, test: str, p: float, baseline: float, candidate: float, effect: float,
           tolerance: float, alpha: float) -> dict:
    failed = bool(np.isfinite(p) and p < alpha and effect > tolerance)
    return {"metric": metric, "test": test, "p_value": None if not np.isfinite(p) else p, "baseline": baseline,
            "candidate": candidate, "worsening": effect, "tolerance": tolerance, "failed": failed}


def compare(base: pl.DataFrame, cand: pl.DataFrame, overrides: tuple[int, int, int, int] | None,
            s: AnalysisSettings) -> tuple[str, list[dict]]:
    """Verdict and per-metric evidence for one candidate against its baseline."""
    checks = []
    ok_b = base.filter(~pl.col("is_err"))["duration_ms"].drop_nulls().to_numpy()
    ok_c = cand.filter(~pl.col("is_err"))["duration_ms"].drop_nulls().to_numpy()
    if len(ok_b) and len(ok_c):
        mb, mc = float(np.median(ok_b)), float(np.median(ok_c))
        checks.append(_check("latency_p50_ms", "mann_whitney_u", stats.mann_whitney(ok_b, ok_c, "greater"),
                             mb, mc, mc / mb - 1 if mb else 0.0, s.canary_latency_tolerance, s.canary_alpha))
    eb, ec = int(base["is_err"].sum()), int(cand["is_err"].sum())
    checks.append(_check("error_rate", "two_proportion_z", stats.two_proportion_test(eb, base.height, ec, cand.height),
                         eb / base.height, ec / cand.height, ec / cand.height - eb / base.height,
                         s.canary_error_tolerance, s.canary_alpha))
    cb, cc = base["cost"].drop_nulls().to_numpy(), cand["cost"].drop_nulls().to_numpy()
    if len(cb) and len(cc):
        mb, mc = float(cb.mean()), float(cc.mean())
        checks.append(_check("cost_per_request_usd", "mann_whitney_u", stats.mann_whitney(cb, cc, "greater"),
                             mb, mc, mc / mb - 1 if mb else 0.0, s.canary_cost_tolerance, s.canary_alpha))
    for col, metric in (("quality_score", "quality_mean"), ("confidence", "confidence_mean")):
        qb, qc = base[col].drop_nulls().to_numpy(), cand[col].drop_nulls().to_numpy()
        if len(qb) and len(qc):
            checks.append(_check(metric, "mann_whitney_u", stats.mann_whitney(qb, qc, "less"), float(qb.mean()),
                                 float(qc.mean()), float(qb.mean() - qc.mean()), s.canary_quality_tolerance,
                                 s.canary_alpha))
    if overrides and overrides[0] and overrides[2]:
        nb, xb, nc, xc = overrides
        checks.append(_check("override_rate", "two_proportion_z", stats.two_proportion_test(xb, nb, xc, nc),
                             xb / nb, xc / nc, xc / nc - xb / nb, s.canary_override_tolerance, s.canary_alpha))
    if base.height < s.canary_min_samples or cand.height < s.canary_min_samples:
        return "inconclusive", checks
    return ("fail" if any(c["failed"] for c in checks) else "pass"), checks


class CanaryAnalyzer:
    name = "canary"
    source = "spans"
    owns = ("canary_verdict", "canary_failed_checks", "canary_samples")

    def __init__(self, store: Store, settings: AnalysisSettings | None = None) -> None:
        self.store = store
        self.settings = settings or AnalysisSettings()

    def replaces(self, window: Window) -> list:
        return [("1h", *window.aligned("1h"))]

    def run(self, window: Window) -> Result:
        """One sample query and one feedback query for all hour buckets of the window."""
        rows: list[dict[str, Any]] = []
        reports: list[dict[str, Any]] = []
        first, last = window.aligned("1h")
        prices = resolve_prices(analytics.distinct_models(self.store, first, last))
        sample = analytics.canary_sample(self.store, first, last, prices, self.settings.sample_cap,
                                        self.settings.canary_baseline_ratio)
        if sample.num_rows == 0:
            return Result(analytics.metrics_table(rows), analytics.reports_table(reports))
        feedback_all = pl.DataFrame(analytics.feedback_by_version(self.store, first, last))
        for (bucket, service), spans in pl.DataFrame(sample).partition_by(
                ["hour", "service_name"], as_dict=True, maintain_order=True).items():
            end = bucket + timedelta(hours=1)
            feedback = feedback_all.filter(pl.col("hour") == bucket)
            base = spans.filter(pl.col("arm") == "baseline")
            if base.height == 0:
                continue
            base_versions = base["model_version"].unique().to_list()
            for (model, version), cand in spans.filter(pl.col("arm") == "canary").partition_by(
                    ["model", "model_version"], as_dict=True).items():
                fb = feedback.filter(pl.col("service_name") == service)
                fb_base = fb.filter(pl.col("model_version").is_in(base_versions))
                fb_cand = fb.filter(pl.col("model_version") == version)
                overrides = (int(fb_base["reviewed"].sum()), int(fb_base["overrides"].sum()),
                             int(fb_cand["reviewed"].sum()), int(fb_cand["overrides"].sum()))
                verdict, checks = compare(base, cand, overrides, self.settings)
                labels = {"service_name": service, "model": model, "model_version": version,
                          "route": None, "arm": "canary"}
                common = {"time": bucket, "grain": "1h", "computed_at": window.computed_at, **labels}
                rows += [{**common, "metric": "canary_verdict", "value": VERDICT_VALUE[verdict]},
                         {**common, "metric": "canary_failed_checks", "value": float(sum(c["failed"] for c in checks))},
                         {**common, "metric": "canary_samples", "value": float(cand.height)}]
                reports.append({"time": bucket, "window_end": end, "analyzer": self.name, "kind": "canary_evidence",
                                **labels, "verdict": verdict, "computed_at": window.computed_at,
                                "body": {"baseline_versions": base_versions, "baseline_calls": base.height,
                                         "canary_calls": cand.height, "alpha": self.settings.canary_alpha,
                                         "checks": checks}})
        return Result(analytics.metrics_table(rows), analytics.reports_table(reports))
