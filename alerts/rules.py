"""The alerting configuration: rules, receivers, routes and inhibitions, loaded from YAML.

A rule is a condition over the analyzers' `analysis_metrics` table (metric + label matchers + op +
threshold, optionally against a trailing baseline, over one or several windows, or the absence of
traffic) plus `for`, `keep_firing_for`, severity and templates. `load_config` validates everything
up front and raises `RulesError` listing each problem as `file: rule 'name': key 'k': message`.
"""
from __future__ import annotations

import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from analysis.metrics_catalog import describe
from core.durations import parse_duration
from core.grains import GRAIN_SECONDS

DEFAULT_RULES = Path(__file__).with_name("default_rules.yaml")
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"

# Derived from the analyzers' own catalog and grains, so a rule can name exactly what they write.
GRAINS = dict(GRAIN_SECONDS)
BUCKET_GRAINS = ("1m", "1h")          # time = bucket start; the other grains are trailing burn windows
SERIES_LABELS = ("service_name", "model", "model_version", "route", "arm")
# analysis_metrics column -> alert label name
LABEL_NAMES = {"service_name": "service", "model": "model", "model_version": "model_version",
               "route": "route", "arm": "arm"}
OPS = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
       "<=": lambda a, b: a <= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}
SEVERITIES = ("P1", "P2", "P3")
# apprise: Teams, Opsgenie, Discord, email and the rest of apprise's services
RECEIVER_TYPES = ("pagerduty", "slack", "webhook", "apprise", "review")
TEMPLATE_FIELDS = {"value", "threshold", "baseline", "metric", "grain", "for", "rule", "severity",
                   "alertname", "service", "model", "model_version", "route", "arm",
                   "bad", "total", "p_value", "history_hours", "maturity"}


class RulesError(ValueError):
    """The rules file is invalid; `problems` lists every error, each naming file, rule and key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Baseline:
    window: timedelta                 # trailing window the baseline is the mean over
    factor: float = 1.0               # compare value against factor * baseline + delta
    delta: float = 0.0
    min_baseline: float = 0.0         # below this the baseline is too small to compare against


# Counts add up over a window; rates, means and percentiles are averaged weighted by their denominator.
COUNT_METRICS = frozenset({"requests", "errors", "timeouts", "retries", "breaker_opens", "input_tokens",
                           "output_tokens", "cost_usd", "reviewed", "overrides", "content_filtered",
                           "format_failures", "analyzer_failures", "route_calls", "route_errors",
                           "route_slow_calls"})
WEIGHTS = {"override_rate": "reviewed"}


def is_metric(name: Any) -> bool:
    """A catalog metric, or a member of a catalog family (`drift_score:input_tokens`, `slo_bad:availability`)."""
    return isinstance(name, str) and not name.endswith(":") and describe(name) is not None


def window_weight(metric: str) -> str | None:
    return None if metric in COUNT_METRICS else WEIGHTS.get(metric, "requests")


@dataclass(frozen=True)
class Clause:
    """An extra comparison on the same series, e.g. errors >= 3 next to error_rate > 5%."""
    metric: str
    op: str
    threshold: float


@dataclass(frozen=True)
class Evidence:
    """A count test: `bad` of `total` calls over the window against the series' normal rate.

    It holds when P(X >= bad | total calls, tolerated rate) < p_value (binomial tail) and at least
    `min_bad` calls were bad, where tolerated = max(factor x normal, normal + delta, floor). The
    normal rate is the 1h metric `rate` in force for the series (an analyzer's learned baseline or
    an SLO budget), else learned here: bad / total over the trailing `baseline_window` before the
    test window, reported immature under `min_history`."""
    bad: str
    total: str
    rate: str | None = None
    factor: float = 1.0
    delta: float = 0.0
    floor: float = 0.0
    p_value: float = 1e-4
    min_bad: float = 1.0
    baseline_window: timedelta = timedelta(days=1)
    min_history: timedelta = timedelta(hours=3)

    def tolerated(self, normal: float) -> float:
        return min(max(self.factor * normal, normal + self.delta, self.floor), 1.0)


@dataclass(frozen=True)
class Condition:
    metric: str
    grains: tuple[str, ...] = ("1m",)   # every grain (window) must satisfy the comparison
    op: str = ">"
    threshold: float = 0.0
    match: tuple[tuple[str, Any], ...] = (("arm", None),)
    baseline: Baseline | None = None
    min_requests: float = 0.0           # ignore buckets with fewer requests (same labels and grain)
    absent: bool = False                # fire when a series that had traffic sends none
    window: timedelta = timedelta(minutes=5)
    had_traffic_within: timedelta = timedelta(hours=1)
    min_expected: float = 10.0          # absence: silent long enough to have expected this many requests
    over: timedelta | None = None       # aggregate the trailing window of 1m buckets instead of the newest
    also: tuple[Clause, ...] = ()
    evidence: Evidence | None = None

    def matches(self, series: dict[str, Any]) -> bool:
        for name, want in self.match:
            have = series.get(name)
            if isinstance(want, tuple):
                if have not in want:
                    return False
            elif want == "*":
                if have is None:
                    return False
            elif have != want:
                return False
        return True

    def compare(self, value: float, threshold: float) -> bool:
        return OPS[self.op](value, threshold)


@dataclass(frozen=True)
class Rule:
    name: str
    severity: str
    condition: Condition
    for_: timedelta = timedelta(0)
    keep_firing_for: timedelta = timedelta(0)
    labels: tuple[tuple[str, str], ...] = ()
    summary: str = "{alertname} on {service}"
    description: str = ""
    runbook: str = ""


@dataclass(frozen=True)
class Receiver:
    name: str
    type: str
    url: str = field(default="", repr=False)           # webhook URLs and keys are credentials: never in a repr
    routing_key: str = field(default="", repr=False)
    send_resolved: bool = True
    timeout_s: float = 10.0

    @property
    def configured(self) -> bool:
        if self.type == "review":
            return True
        if self.type == "pagerduty":
            return bool(self.url and self.routing_key)
        return bool(self.url)


@dataclass(frozen=True)
class Route:
    name: str
    match: tuple[tuple[str, str], ...]
    receivers: tuple[str, ...]
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match)


@dataclass(frozen=True)
class Inhibition:
    source: tuple[tuple[str, str], ...]
    target: tuple[tuple[str, str], ...]
    equal: tuple[str, ...]


@dataclass(frozen=True)
class Digest:
    receiver: str
    every: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class Watchdog:
    """Alertmanager's Watchdog: an always-firing heartbeat sent every `every` while evaluation runs,
    for a dead man's switch that pages when the heartbeats stop."""
    receiver: str
    every: timedelta = timedelta(minutes=1)


@dataclass(frozen=True)
class AlertsConfig:
    rules: tuple[Rule, ...]
    receivers: dict[str, Receiver]
    routes: tuple[Route, ...]
    inhibitions: tuple[Inhibition, ...] = ()
    digest: Digest | None = None
    watchdog: Watchdog | None = None
    dashboard_url: str = "http://127.0.0.1:8501"
    source: str = "<memory>"

    def route_for(self, labels: dict[str, str]) -> Route | None:
        return next((r for r in self.routes if r.matches(labels)), None)

    @property
    def metrics(self) -> frozenset[str]:
        """Every analyzer metric a rule reads (what a backtest needs to copy)."""
        out = {"requests"}
        for r in self.rules:
            c = r.condition
            out.update((c.metric, *(a.metric for a in c.also)))
            if c.evidence:
                out.update(m for m in (c.evidence.bad, c.evidence.total, c.evidence.rate) if m)
        out.update(w for m in list(out) if (w := window_weight(m)))
        return frozenset(out | {"route_baseline_hours"})

    @property
    def max_lookback(self) -> timedelta:
        spans = [timedelta(hours=2)]
        for r in self.rules:
            c = r.condition
            if c.baseline:
                spans.append(c.baseline.window + timedelta(hours=2))
            if c.absent:
                spans.append(c.had_traffic_within + c.window)
            if c.evidence:
                spans.append(c.evidence.baseline_window + (c.over or timedelta(0)) + timedelta(hours=2))
        return max(spans)


# --- parsing helpers ---------------------------------------------------------------------------

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-((?:[^{}]|\$\{[^{}]*\})*))?\}")


def expand_env(text: str, env: Mapping[str, str] | None = None) -> str:
    """`${VAR}` and `${VAR:-default}` from the environment (receiver URLs and keys stay out of the file)."""
    environ = os.environ if env is None else env
    return _ENV.sub(lambda m: environ.get(m.group(1)) or expand_env(m.group(2) or "", environ), text)


class _Problems:
    def __init__(self, source: str) -> None:
        self.source, self.items = source, list[str]()

    def add(self, where: str, key: str, message: str) -> None:
        self.items.append(f"{self.source}: {where}: key '{key}': {message}")


def _template_problems(text: Any, extra_labels: set[str]) -> str | None:
    if not isinstance(text, str):
        return "must be a string"
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        return f"bad template: {exc}"
    for _, name, _spec, _ in parsed:
        if name is None:
            continue
        root = re.split(r"[.\[]", name, maxsplit=1)[0]
        if root not in TEMPLATE_FIELDS | extra_labels:
            return f"unknown template field {{{name}}} (known: {', '.join(sorted(TEMPLATE_FIELDS))})"
    return None


def _matchers(raw: Any, where: str, key: str, p: _Problems, allowed: tuple[str, ...] | None = None
              ) -> tuple[tuple[str, Any], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        p.add(where, key, "must be a mapping of label to value")
        return ()
    out = []
    for name, value in raw.items():
        if allowed and name not in allowed:
            p.add(where, f"{key}.{name}", f"unknown label (one of {', '.join(allowed)})")
            continue
        if isinstance(value, list):
            value = tuple(None if v is None else str(v) for v in value)
        elif value is not None:
            value = str(value)
        out.append((str(name), value))
    return tuple(out)


def _number(raw: dict, key: str, where: str, path: str, p: _Problems, default: float | None = None) -> float | None:
    value = raw.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        p.add(where, path, f"{value!r} is not a number")
        return default
    return float(value)


def _number_or(raw: dict, key: str, where: str, path: str, p: _Problems, default: float) -> float:
    """A number that has a default: an explicit null is an error, not None."""
    if key in raw and raw[key] is None:
        p.add(where, path, "null is not a number")
    value = _number(raw, key, where, path, p, default)
    return default if value is None else value


def _duration(raw: dict, key: str, where: str, path: str, p: _Problems, default: timedelta) -> timedelta:
    if key not in raw:
        return default
    try:
        return parse_duration(raw[key])
    except ValueError as exc:
        p.add(where, path, str(exc))
        return default


def _check_keys(raw: dict, allowed: set[str], where: str, prefix: str, p: _Problems) -> None:
    for key in raw:
        if key not in allowed and not str(key).startswith("x-"):   # x-...: YAML anchors and notes
            p.add(where, f"{prefix}{key}", f"unknown key (expected one of {', '.join(sorted(allowed))})")


def _condition(raw: Any, where: str, p: _Problems) -> Condition | None:
    if not isinstance(raw, dict):
        p.add(where, "condition", "is required and must be a mapping")
        return None
    _check_keys(raw, {"metric", "grain", "grains", "op", "threshold", "match", "baseline", "min_requests",
                      "absent", "window", "had_traffic_within", "over", "also", "min_expected", "evidence"},
                where, "condition.", p)
    match = _matchers(raw.get("match", {"arm": None}), where, "condition.match", p, SERIES_LABELS)
    if "match" in raw and not any(k == "arm" for k, _ in match):
        match = match + (("arm", None),)
    if "evidence" in raw:
        return _evidence_condition(raw, match, where, p)
    if "absent" in raw:
        metric = raw["absent"]
        if metric != "requests":
            p.add(where, "condition.absent", "only 'requests' can be absent")
        window = _duration(raw, "window", where, "condition.window", p, timedelta(minutes=5))
        had = _duration(raw, "had_traffic_within", where, "condition.had_traffic_within", p, timedelta(hours=1))
        expected = _number(raw, "min_expected", where, "condition.min_expected", p, 10.0)
        return Condition(metric="requests", grains=("1m",), op="==", threshold=0.0, match=match, absent=True,
                         window=window, had_traffic_within=had, min_expected=expected or 0.0)
    metric = raw.get("metric")
    if not is_metric(metric):
        p.add(where, "condition.metric", f"{metric!r} is not an analyzer metric" if metric else "is required")
    if "grain" in raw and "grains" in raw:
        p.add(where, "condition.grains", "give grain or grains, not both")
    grains = raw.get("grains", [raw.get("grain", "1m")])
    if not isinstance(grains, list) or not grains:
        p.add(where, "condition.grains", "must be a non-empty list")
        grains = ["1m"]
    for g in grains:
        if g not in GRAINS:
            p.add(where, "condition.grain", f"{g!r} is not one of {', '.join(GRAINS)}")
    op = raw.get("op", ">")
    if op not in OPS:
        p.add(where, "condition.op", f"{op!r} is not one of {' '.join(OPS)}")
    threshold = _number(raw, "threshold", where, "condition.threshold", p)
    baseline = None
    if "baseline" in raw:
        b = raw["baseline"]
        if not isinstance(b, dict):
            p.add(where, "condition.baseline", "must be a mapping (window, factor, delta, min_baseline)")
        else:
            _check_keys(b, {"window", "factor", "delta", "min_baseline"}, where, "condition.baseline.", p)
            if "window" not in b:
                p.add(where, "condition.baseline.window", "is required")
            baseline = Baseline(
                window=_duration(b, "window", where, "condition.baseline.window", p, timedelta(days=7)),
                factor=_number_or(b, "factor", where, "condition.baseline.factor", p, 1.0),
                delta=_number_or(b, "delta", where, "condition.baseline.delta", p, 0.0),
                min_baseline=_number_or(b, "min_baseline", where, "condition.baseline.min_baseline", p, 0.0))
            if len(grains) > 1:
                p.add(where, "condition.baseline", "a baseline compares one grain, not several")
    elif threshold is None:
        p.add(where, "condition.threshold", "is required (or give a baseline)")
    min_requests = _number(raw, "min_requests", where, "condition.min_requests", p, 0.0)
    over = None
    if "over" in raw:
        over = _duration(raw, "over", where, "condition.over", p, timedelta(minutes=5))
        if grains != ["1m"]:
            p.add(where, "condition.over", "aggregates 1m buckets: use it with grain 1m")
        if baseline is not None and window_weight(str(metric)) is None:
            p.add(where, "condition.over", "a summed count over a window cannot be compared with a per-minute baseline")
    also = []
    for i, clause in enumerate(raw.get("also") or []):
        key = f"condition.also[{i}]"
        if not isinstance(clause, dict) or set(clause) - {"metric", "op", "threshold"}:
            p.add(where, key, "must be a mapping of metric, op, threshold")
            continue
        if not is_metric(clause.get("metric")):
            p.add(where, f"{key}.metric", f"{clause.get('metric')!r} is not an analyzer metric")
        if clause.get("op", ">") not in OPS:
            p.add(where, f"{key}.op", f"{clause.get('op')!r} is not one of {' '.join(OPS)}")
        value = _number(clause, "threshold", where, f"{key}.threshold", p)
        if value is None:
            p.add(where, f"{key}.threshold", "is required")
        also.append(Clause(str(clause.get("metric")), str(clause.get("op", ">")), value or 0.0))
    return Condition(metric=str(metric), grains=tuple(str(g) for g in grains), op=str(op),
                     threshold=threshold or 0.0, match=match, baseline=baseline, min_requests=min_requests or 0.0,
                     over=over, also=tuple(also))


_EVIDENCE_KEYS = {"bad", "total", "rate", "factor", "delta", "floor", "p_value", "min_bad", "baseline_window",
                  "min_history"}


def _evidence_condition(raw: dict, match: tuple, where: str, p: _Problems) -> Condition | None:
    e = raw["evidence"]
    if not isinstance(e, dict):
        p.add(where, "condition.evidence", "must be a mapping (bad, total, rate, factor, floor, p_value, ...)")
        return None
    _check_keys(e, _EVIDENCE_KEYS, where, "condition.evidence.", p)
    for key in ("metric", "grain", "grains", "threshold", "baseline", "min_requests", "also", "op"):
        if key in raw:
            p.add(where, f"condition.{key}", "does not go with evidence (the count test is the comparison)")
    for key in ("bad", "total", "rate"):
        if key in e and not is_metric(e[key]):
            p.add(where, f"condition.evidence.{key}", f"{e[key]!r} is not an analyzer metric")
    for key in ("bad", "total"):
        if key not in e:
            p.add(where, f"condition.evidence.{key}", "is required")
        elif e[key] not in COUNT_METRICS:
            p.add(where, f"condition.evidence.{key}", f"{e[key]!r} is not a count")
    if "over" not in raw:
        p.add(where, "condition.over", "is required with evidence (the test window of 1m buckets)")
    p_value = _number(e, "p_value", where, "condition.evidence.p_value", p, 1e-4)
    if p_value is not None and not 0 < p_value < 1:
        p.add(where, "condition.evidence.p_value", "must be between 0 and 1")
    ev = Evidence(
        bad=str(e.get("bad")), total=str(e.get("total")), rate=str(e["rate"]) if e.get("rate") else None,
        factor=_number(e, "factor", where, "condition.evidence.factor", p, 1.0) or 0.0,
        delta=_number(e, "delta", where, "condition.evidence.delta", p, 0.0) or 0.0,
        floor=_number(e, "floor", where, "condition.evidence.floor", p, 0.0) or 0.0,
        p_value=p_value or 1e-4, min_bad=_number(e, "min_bad", where, "condition.evidence.min_bad", p, 1.0) or 0.0,
        baseline_window=_duration(e, "baseline_window", where, "condition.evidence.baseline_window", p,
                                  timedelta(days=1)),
        min_history=_duration(e, "min_history", where, "condition.evidence.min_history", p, timedelta(hours=3)))
    return Condition(metric=ev.bad, grains=("1m",), op=">", match=match,
                     over=_duration(raw, "over", where, "condition.over", p, timedelta(minutes=5)), evidence=ev)


def _rule(raw: Any, index: int, p: _Problems) -> Rule | None:
    if not isinstance(raw, dict):
        p.add(f"rule #{index + 1}", "-", "must be a mapping")
        return None
    name = raw.get("name")
    where = f"rule {name!r}" if name else f"rule #{index + 1}"
    if not name or not isinstance(name, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_:-]*$", name):
        p.add(where, "name", "is required: letters, digits, _ : -")
    _check_keys(raw, {"name", "severity", "condition", "for", "keep_firing_for", "labels", "summary",
                      "description", "runbook"}, where, "", p)
    severity = raw.get("severity")
    if severity not in SEVERITIES:
        p.add(where, "severity", f"{severity!r} is not one of {', '.join(SEVERITIES)}")
    condition = _condition(raw.get("condition"), where, p)
    labels = raw.get("labels") or {}
    if not isinstance(labels, dict):
        p.add(where, "labels", "must be a mapping")
        labels = {}
    for reserved in ("alertname", "severity"):
        if reserved in labels:
            p.add(where, f"labels.{reserved}", "is set by aiwatch")
    extra = {str(k) for k in labels}
    for key in ("summary", "description"):
        if key in raw:
            problem = _template_problems(raw[key], extra)
            if problem:
                p.add(where, key, problem)
    runbook = raw.get("runbook", "")
    if runbook and not str(runbook).startswith(("http://", "https://")):
        p.add(where, "runbook", "must be an http(s) URL")
    if condition is None:
        return None
    return Rule(name=str(name), severity=str(severity), condition=condition,
                for_=_duration(raw, "for", where, "for", p, timedelta(0)),
                keep_firing_for=_duration(raw, "keep_firing_for", where, "keep_firing_for", p, timedelta(0)),
                labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
                summary=str(raw.get("summary", "{alertname} on {service}")),
                description=str(raw.get("description", "")), runbook=str(runbook))


def parse_config(data: Any, source: str = "<memory>", env: Mapping[str, str] | None = None) -> AlertsConfig:
    p = _Problems(source)
    if not isinstance(data, dict):
        raise RulesError([f"{source}: the file must be a mapping with a 'rules' list"])
    _check_keys(data, {"defaults", "receivers", "routes", "inhibit_rules", "weekly_digest", "watchdog", "rules"},
                "top level", "", p)
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        p.add("defaults", "defaults", "must be a mapping")
        defaults = {}
    _check_keys(defaults, {"group_by", "group_wait", "group_interval", "repeat_interval", "dashboard_url"},
                "defaults", "defaults.", p)
    d_wait = _duration(defaults, "group_wait", "defaults", "group_wait", p, timedelta(seconds=30))
    d_interval = _duration(defaults, "group_interval", "defaults", "group_interval", p, timedelta(minutes=5))
    d_repeat = _duration(defaults, "repeat_interval", "defaults", "repeat_interval", p, timedelta(hours=4))
    d_group_by = tuple(defaults.get("group_by", ["alertname", "service"]))

    receivers: dict[str, Receiver] = {}
    for name, r in (data.get("receivers") or {}).items():
        where = f"receiver {name!r}"
        if not isinstance(r, dict):
            p.add(where, "-", "must be a mapping")
            continue
        _check_keys(r, {"type", "url", "apprise", "routing_key", "send_resolved", "timeout"}, where, "", p)
        if "apprise" in r:      # `apprise: "workflows://..."` is short for type: apprise + url
            if r.get("type", "apprise") != "apprise" or "url" in r:
                p.add(where, "apprise", "give either `apprise: <url>` or `type` and `url`, not both")
            r = {**r, "type": "apprise", "url": r["apprise"]}
        rtype = r.get("type")
        if rtype not in RECEIVER_TYPES:
            p.add(where, "type", f"{rtype!r} is not one of {', '.join(RECEIVER_TYPES)}")
            continue
        url = expand_env(str(r.get("url", "")), env)
        if url and rtype == "apprise":
            from alerts.apprise_receiver import url_problem  # apprise loads only when one is configured
            if problem := url_problem(url):
                p.add(where, "apprise" if "apprise" in r else "url", problem)
        elif url and not url.startswith(("http://", "https://")):   # the URL itself is a secret: not echoed
            p.add(where, "url", "is not an http(s) URL")
        receivers[str(name)] = Receiver(
            name=str(name), type=rtype, url=url, routing_key=expand_env(str(r.get("routing_key", "")), env),
            send_resolved=bool(r.get("send_resolved", True)),
            timeout_s=_duration(r, "timeout", where, "timeout", p, timedelta(seconds=10)).total_seconds())
    if "review" not in receivers:
        receivers["review"] = Receiver("review", "review")

    routes: list[Route] = []
    raw_routes = data.get("routes") or [{"match": {}, "receivers": ["review"]}]
    for i, r in enumerate(raw_routes):
        where = f"route #{i + 1}"
        if not isinstance(r, dict):
            p.add(where, "-", "must be a mapping")
            continue
        _check_keys(r, {"match", "receivers", "group_by", "group_wait", "group_interval", "repeat_interval"},
                    where, "", p)
        names = r.get("receivers") or []
        for n in names:
            if n not in receivers:
                p.add(where, "receivers", f"no receiver named {n!r}")
        routes.append(Route(
            name=f"route{i + 1}", match=_matchers(r.get("match"), where, "match", p), receivers=tuple(names),
            group_by=tuple(r.get("group_by", d_group_by)),
            group_wait=_duration(r, "group_wait", where, "group_wait", p, d_wait),
            group_interval=_duration(r, "group_interval", where, "group_interval", p, d_interval),
            repeat_interval=_duration(r, "repeat_interval", where, "repeat_interval", p, d_repeat)))

    inhibitions = []
    for i, r in enumerate(data.get("inhibit_rules") or []):
        where = f"inhibit rule #{i + 1}"
        if not isinstance(r, dict) or "source" not in r or "target" not in r:
            p.add(where, "source/target", "both are required")
            continue
        inhibitions.append(Inhibition(_matchers(r["source"], where, "source", p),
                                      _matchers(r["target"], where, "target", p), tuple(r.get("equal", []))))

    digest = None
    if data.get("weekly_digest"):
        d = data["weekly_digest"]
        if not isinstance(d, dict) or d.get("receiver") not in receivers:
            p.add("weekly_digest", "receiver", "must name a receiver")
        else:
            digest = Digest(d["receiver"], _duration(d, "every", "weekly_digest", "every", p, timedelta(days=7)))

    watchdog = None
    if data.get("watchdog"):
        w = data["watchdog"]
        if not isinstance(w, dict) or w.get("receiver") not in receivers:
            p.add("watchdog", "receiver", "must name a receiver")
        else:
            _check_keys(w, {"receiver", "every"}, "watchdog", "watchdog.", p)
            watchdog = Watchdog(w["receiver"], _duration(w, "every", "watchdog", "every", p, timedelta(minutes=1)))

    rules: list[Rule] = []
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list):
        p.add("top level", "rules", "must be a list of rules")
        raw_rules = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules):
        rule = _rule(raw, i, p)
        if rule is None:
            continue
        if rule.name in seen:
            p.add(f"rule {rule.name!r}", "name", "is used by another rule")
        seen.add(rule.name)
        rules.append(rule)
    if p.items:
        raise RulesError(p.items)
    return AlertsConfig(rules=tuple(rules), receivers=receivers, routes=tuple(routes),
                        inhibitions=tuple(inhibitions), digest=digest, watchdog=watchdog,
                        dashboard_url=expand_env(str(defaults.get("dashboard_url", "http://127.0.0.1:8501")), env),
                        source=source)


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> AlertsConfig:
    """Load and validate a rules file (default: the shipped rules; the server passes [alerts] rules)."""
    path = Path(path or DEFAULT_RULES)
    try:
        text = path.read_text()
    except OSError as exc:
        raise RulesError([f"{path}: cannot read: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError([f"{path}: not valid YAML: {exc}"]) from None
    return parse_config(data, str(path), env)


class _SafeDict(dict):
    def __missing__(self, key: str) -> str:
        return ""


def render(template: str, fields: dict[str, Any]) -> str:
    """Fill a summary/description template; missing labels render empty, bad specs leave it raw."""
    try:
        return string.Formatter().vformat(template, (), _SafeDict(fields))
    except (ValueError, TypeError, KeyError, IndexError):
        return template
