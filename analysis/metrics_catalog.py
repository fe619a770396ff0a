"""Every metric the analyzers write to analysis_metrics: name -> (unit, one-line description).

Labels: service_name, model, model_version, route, arm; NULL means the rollup over all values and
'(none)' a call that lacked the label. Grains: '1m' and '1h' buckets (time = bucket start, UTC);
burn rates use the burn window as grain and the evaluated minute as time. Names ending in ':'
are families with the column or SLO name appended. Traffic rollups: per minute all, service,
service+route and service+model; per hour also service+model+version+arm and the full detail. The
open hour's traffic rows are refreshed every 5 minutes (exact once the hour closes).
"""
from __future__ import annotations

# what pages and alerts call a route_shift row over all the route's models (it has no model label)
ALL_MODELS = "all models"
_ALL_MODELS_ROWS = " A route with two models or more also has rows with no model: the sums over them."

CATALOG: dict[str, tuple[str, str]] = {
    # traffic (analyzer: traffic; model-call spans, shadow calls excluded)
    "requests": ("count", "Model calls started in the bucket."),
    "rps": ("1/s", "Calls per second (requests / bucket seconds)."),
    "errors": ("count", "Calls with status error."),
    "error_rate": ("ratio", "errors / requests."),
    "error_rate_4xx": ("ratio", "Share of calls answered with HTTP 4xx."),
    "error_rate_5xx": ("ratio", "Share of calls answered with HTTP 5xx."),
    "model_failure_rate": ("ratio", "Share of calls that timed out, were content-filtered or failed the format check."),
    "timeouts": ("count", "Calls whose error type says timeout, or HTTP 408/504."),
    "content_filtered": ("count", "Calls stopped by a content filter (error type or finish reason)."),
    "format_failures": ("count", "Successful calls whose output failed the format check (format_ok false)."),
    "latency_p50_ms": ("ms", "Exact median duration of successful calls."),
    "latency_p95_ms": ("ms", "Exact 95th percentile duration of successful calls."),
    "latency_p99_ms": ("ms", "Exact 99th percentile duration of successful calls."),
    "latency_mean_ms": ("ms", "Mean duration of successful calls."),
    "retries": ("count", "Sum of retry_count."),
    "breaker_opens": ("count", "Calls that saw the circuit breaker open."),
    "fallback_rate": ("ratio", "Share of calls not answered by the primary model."),
    "fallback_secondary": ("ratio", "Share answered by the fallback model."),
    "fallback_rule_based": ("ratio", "Share answered by the rule-based fallback."),
    "fallback_human": ("ratio", "Share handed to a human."),
    "input_tokens": ("tokens", "Sum of input tokens."),
    "output_tokens": ("tokens", "Sum of output tokens."),
    "cost_usd": ("USD", "Cost: the span's cost, else tokens x the price table (NULL for unpriced models)."),
    "cost_per_request_usd": ("USD", "cost_usd / requests."),
    "format_ok_rate": ("ratio", "Share of checked outputs of successful calls that passed the format check."),
    "quality_mean": ("score", "Mean quality score."),
    "confidence_mean": ("score", "Mean confidence."),
    # confidence (analyzer: confidence; 1h; labels service, model, model_version)
    "confidence_p10": ("score", "10th percentile of confidence in the hour."),
    "confidence_p50": ("score", "Median confidence in the hour."),
    "confidence_p90": ("score", "90th percentile of confidence in the hour."),
    "confidence_ks_stat": ("statistic", "Two-sample KS statistic, hour vs reference."),
    "confidence_ks_pvalue": ("p-value", "KS two-sided p-value, hour vs reference."),
    "confidence_psi": ("index", "Population stability index on 10 bins of [0, 1], hour vs reference."),
    "confidence_wasserstein": ("score", "Wasserstein distance, hour vs reference."),
    "confidence_shift": ("flag", "1 when PSI >= 0.2 or (KS p < 0.001 and KS >= 0.1), else 0."),
    "confidence_trend_slope": ("score/h", "Slope of hourly mean confidence over the trailing 24 h."),
    "confidence_trend_pvalue": ("p-value", "p-value of that slope (declining mean when slope < 0 and p small)."),
    # drift (analyzer: drift; 1h; labels service, route)
    "drift_share": ("ratio", "Share of watched input columns that drifted: Evidently's default test says so and "
                             "the hour differs from the reference beyond chance (p < drift_alpha)."),
    "dataset_drift": ("flag", "1 when drift_share >= drift_share setting (0.5: Evidently's dataset drift)."),
    "drift_score:": ("score", "Per column: the default test's score (p-value for ks/chisquare/z, distance for "
                              "wasserstein/jensenshannon); the test is in the drift report."),
    "drift_detected:": ("flag", "Per column: 1 when Evidently's test says drift and drift_pvalue < drift_alpha."),
    "drift_pvalue:": ("p-value", "Per column: two-sample test of the hour against the reference (KS; chi-square "
                                 "of homogeneity for categories): how likely chance alone makes such a difference."),
    # human review (analyzer: overrides; labels service, model, model_version, route)
    "reviewed": ("count", "Human review events."),
    "overrides": ("count", "Reviews that modified or rejected the answer."),
    "override_rate": ("ratio", "(modified + rejected) / reviewed."),
    "override_rate_modified": ("ratio", "modified / reviewed."),
    "override_rate_rejected": ("ratio", "rejected / reviewed."),
    # resources (analyzer: resources; labels service)
    "cpu_utilization": ("as reported", "Mean CPU utilisation points (usually a 0-1 ratio)."),
    "gpu_utilization": ("as reported", "Mean GPU utilisation points."),
    "memory_utilization": ("as reported", "Mean memory utilisation points."),
    "queue_depth": ("items", "Mean queue depth."),
    # SLOs (analyzer: slo; labels service, route when the SLO has one)
    "slo_total:": ("count", "Per SLO name, 1m: calls counted by the SLO."),
    "slo_bad:": ("count", "Per SLO name, 1m: calls that missed it (errors, or slower than the threshold)."),
    "burn_rate_availability": ("x budget", "(bad / total over the window) / (1 - objective); grain = window."),
    "burn_rate_latency": ("x budget", "Same for latency SLOs."),
    "slo_attainment": ("ratio", "1h: good / total for the availability SLO."),
    "slo_attainment_latency": ("ratio", "1h: good / total for the latency SLO."),
    "slo_objective": ("ratio", "1h: the availability SLO's objective in force (beside slo_attainment)."),
    "slo_objective_latency": ("ratio", "1h: the latency SLO's objective in force."),
    # route health (analyzer: route_health; labels service, route, model: the requested model)
    "route_calls": ("count", "1m: model calls of the route and model."),
    "route_errors": ("count", "1m: failed calls of the route and model."),
    "route_slow_calls": ("count", "1m: successful calls slower than route_slow_threshold_ms (none before the "
                                  "route has a threshold)."),
    "route_slow_threshold_ms": ("ms", "1h: the slow-call threshold in force: the route's latency SLO, else the "
                                      "median of its hourly p99s over the trailing route_baseline_hours, once "
                                      "500 successful calls are behind it."),
    "route_slow_budget": ("ratio", "1h: share of calls allowed over the threshold (1 - SLO objective; for a "
                                   "learned p99 the share expected over it, 1% for busy hours, more for hours of few "
                                   "calls: analysis/route_health.py learned_budget)."),
    "route_error_baseline": ("ratio", "1h: failures / calls of the route and model over the trailing hours."),
    "route_baseline_hours": ("hours", "1h: hours with calls behind the baseline (immature under "
                                      "the rule's evidence.min_history)."),
    "route_baseline_ok_calls": ("count", "1h: successful calls behind the learned p99 (none is learned under 500)."),
    # route shift (analyzer: route_shift; labels service, route, model): per-call percentiles among the
    # route's trailing calls, for the rank test (alerts `evidence.test: rank`); on a route served by
    # two models or more the 1m sums also over all of them, with no model (ALL_MODELS)
    "route_conf_scored": ("count", "1m: successful calls with a confidence, ranked against the route's reference." + _ALL_MODELS_ROWS),
    "route_conf_low_score": ("sum of percentiles", "1m: sum over those calls of their lower-tail percentile of "
                                                   "confidence in the reference ((#ref <= x + 1) / (m + 1))."),
    "route_out_scored": ("count", "1m: successful calls with output tokens, ranked against the route's reference." + _ALL_MODELS_ROWS),
    "route_out_high_score": ("sum of percentiles", "1m: sum over those calls of their upper-tail percentile of "
                                                   "output tokens in the reference ((#ref >= x + 1) / (m + 1))."),
    "route_conf_reference_calls": ("count", "1h: calls in the confidence reference (trailing route_baseline_hours; "
                                            "calls are scored from 500 on)."),
    "route_conf_reference_held_hours": ("count", "1h: hours left out of the confidence reference because "
                                                 "their own calls ranked as shifted (route_shift.SHIFT_MEAN, "
                                                 "SHIFT_P): a shift that goes on is judged against the calls "
                                                 "from before it while 500 are left."),
    "route_out_reference_calls": ("count", "1h: calls in the output-token reference (scored from 500 on)."),
    "route_out_reference_held_hours": ("count", "1h: hours left out of the output-token reference as shifted "
                                       "(as route_conf_reference_held_hours)."),
    "route_in_scored": ("count", "1m: successful calls with input tokens, ranked against the route's reference." + _ALL_MODELS_ROWS),
    "route_in_low_score": ("sum of percentiles", "1m: sum over those calls of their lower-tail percentile of "
                                                 "input tokens in the reference ((#ref <= x + 1) / (m + 1))."),
    "route_in_high_score": ("sum of percentiles", "1m: sum over those calls of their upper-tail percentile of "
                                                  "input tokens in the reference ((#ref >= x + 1) / (m + 1))."),
    "route_in_reference_calls": ("count", "1h: calls in the input-token reference (scored from 500 on)."),
    "route_in_reference_held_hours": ("count", "1h: hours left out of the input-token reference as shifted "
                                      "(as route_conf_reference_held_hours)."),
    "route_mix_scored": ("count", "1m: successful calls scored on their mix of categorical drift columns." + _ALL_MODELS_ROWS),
    "route_mix_low_score": ("sum of percentiles", "1m: sum over those calls of how typical their combination of "
                                                  "categorical drift columns is in the reference (conformal: "
                                                  "(#ref calls in combinations with <= k + 1 calls + 1) / (m + 1))."),
    "route_mix_reference_calls": ("count", "1h: calls in the input-mix reference (scored from 500 on)."),
    "route_mix_reference_held_hours": ("count", "1h: hours left out of the input-mix reference as shifted "
                                       "(as route_conf_reference_held_hours)."),
    "route_cost2x_scored": ("count", "1m: successful calls with a cost (their own, else tokens x price), ranked "
                                     "against the route's reference." + _ALL_MODELS_ROWS),
    "route_cost2x_high_score": ("sum of percentiles", "1m: sum over those calls of the upper-tail percentile of "
                                                      "HALF the call's cost in the reference ((#ref >= x / 2 + 1) / "
                                                      "(m + 1)): low only when calls cost over twice the usual."),
    "route_cost2x_reference_calls": ("count", "1h: calls in the cost reference (scored from 500 on)."),
    "route_cost2x_reference_held_hours": ("count", "1h: hours left out of the cost reference as shifted "
                                          "(as route_conf_reference_held_hours)."),
    "route_in2x_scored": ("count", "1m: successful calls with input tokens, ranked at half against the route's "
                                   "reference." + _ALL_MODELS_ROWS),
    "route_in2x_high_score": ("sum of percentiles", "1m: sum over those calls of the upper-tail percentile of HALF "
                                                    "the call's input tokens in the reference: low only when prompts "
                                                    "are over twice as long as usual."),
    "route_in2x_reference_calls": ("count", "1h: calls in the input-token reference (scored from 500 on)."),
    "route_in2x_reference_held_hours": ("count", "1h: hours left out of the input-token reference as shifted "
                                        "(as route_conf_reference_held_hours)."),
    # canary and shadow
    "canary_verdict": ("verdict", "1h, arm canary: 1 pass, 0 inconclusive, -1 fail (evidence: `canary` query)."),
    "canary_failed_checks": ("count", "Checks where the candidate is significantly and materially worse."),
    "canary_samples": ("count", "Candidate calls in the comparison."),
    "shadow_agreement_rate": ("ratio", "arm shadow: share of shadow outputs that agree with the primary's."),
    "shadow_pairs": ("count", "Shadow calls paired with a primary output."),
    # aiwatch's own health (the runner; service_name 'aiwatch', route = the analyzer)
    "analyzer_failures": ("count", "1m: the analyzer's failed runs plus minutes it quarantined in that minute's tick."),
}


# The metrics whose value over a window is the sum of its buckets' values (counts, sums of tokens,
# cost and tail percentiles); every other metric is a rate, mean or percentile, averaged over a
# window weighted by its denominator. A reference's size (`*_reference_calls`, `*_reference_held_hours`) is a
# count but a snapshot per hour, not additive.
ADDITIVE = frozenset({"requests", "errors", "timeouts", "retries", "breaker_opens", "input_tokens",
                      "output_tokens", "cost_usd", "reviewed", "overrides", "content_filtered",
                      "format_failures", "analyzer_failures", "route_calls", "route_errors",
                      "route_slow_calls", "route_conf_scored", "route_conf_low_score", "route_out_scored",
                      "route_out_high_score", "route_in_scored", "route_in_low_score", "route_in_high_score",
                      "route_mix_scored", "route_mix_low_score", "route_cost2x_scored", "route_cost2x_high_score", "route_in2x_scored",
                      "route_in2x_high_score"})

# Which dashboard page (dashboard/views/<page>.py) shows each metric: alert links open it with the
# alert's labels as filters. Every catalog metric is on exactly one page (tests/analysis/test_seams.py).
PAGES: dict[str, tuple[str, ...]] = {
    "overview": ("requests", "rps", "slo_total:", "slo_bad:", "burn_rate_availability", "slo_attainment",
                 "slo_objective", "route_calls", "analyzer_failures"),
    "latency": ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "latency_mean_ms", "burn_rate_latency",
                "slo_attainment_latency", "slo_objective_latency", "route_slow_calls", "route_slow_threshold_ms",
                "route_slow_budget", "route_baseline_hours", "route_baseline_ok_calls"),
    "errors": ("errors", "error_rate", "error_rate_4xx", "error_rate_5xx", "model_failure_rate", "timeouts",
               "content_filtered", "retries", "breaker_opens", "fallback_rate", "fallback_secondary",
               "fallback_rule_based", "fallback_human", "route_errors", "route_error_baseline"),
    "cost": ("input_tokens", "output_tokens", "cost_usd", "cost_per_request_usd", "route_out_scored",
             "route_out_high_score", "route_out_reference_calls", "route_out_reference_held_hours", "route_cost2x_scored", "route_cost2x_high_score",
             "route_cost2x_reference_calls", "route_cost2x_reference_held_hours", "route_in2x_scored", "route_in2x_high_score", "route_in2x_reference_calls", "route_in2x_reference_held_hours"),
    "quality": ("format_failures", "format_ok_rate", "quality_mean", "confidence_mean", "confidence_p10",
                "confidence_p50", "confidence_p90", "confidence_ks_stat", "confidence_ks_pvalue", "confidence_psi",
                "confidence_wasserstein", "confidence_shift", "confidence_trend_slope", "confidence_trend_pvalue",
                "route_conf_scored", "route_conf_low_score", "route_conf_reference_calls", "route_conf_reference_held_hours"),
    "drift": ("drift_share", "dataset_drift", "drift_score:", "drift_detected:", "drift_pvalue:", "route_in_scored",
              "route_in_low_score", "route_in_high_score", "route_in_reference_calls", "route_in_reference_held_hours", "route_mix_scored",
              "route_mix_low_score", "route_mix_reference_calls", "route_mix_reference_held_hours"),
    "review": ("reviewed", "overrides", "override_rate", "override_rate_modified", "override_rate_rejected"),
    "resources": ("cpu_utilization", "gpu_utilization", "memory_utilization", "queue_depth"),
    "canary": ("canary_verdict", "canary_failed_checks", "canary_samples", "shadow_agreement_rate", "shadow_pairs"),
}
_PAGE_OF = {metric: page for page, metrics in PAGES.items() for metric in metrics}


def page_of(metric: str) -> str:
    """The dashboard page that shows a metric (a family member by its family), else the overview."""
    return _PAGE_OF.get(metric) or _PAGE_OF.get(metric.split(":", 1)[0] + ":", "overview")


def describe(metric: str) -> tuple[str, str] | None:
    """Unit and description of a metric name, including family members like drift_score:input_tokens."""
    if metric in CATALOG:
        return CATALOG[metric]
    family = metric.split(":", 1)[0] + ":"
    return CATALOG.get(family)


def reference_held_metric(scored: str) -> str | None:
    """For a route_shift count of scored calls (`route_mix_scored`), the metric that says how many
    shifted hours its reference leaves out (`route_mix_reference_held_hours`); None for any other."""
    name = scored.removesuffix("_scored") + "_reference_held_hours"
    return name if scored.endswith("_scored") and name in CATALOG else None
