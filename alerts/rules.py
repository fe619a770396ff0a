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
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

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
                   "bad", "total", "p_value", "history_hours", "maturity", "mean_percentile"}


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
                           "route_slow_calls", "route_conf_scored", "route_conf_low_score", "route_out_scored",
                           "route_out_high_score"})
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
    # test "fisher": the window's bad / total against the counts over `baseline_window` before it
    # (Fisher's exact test, one-sided; the rate must also exceed the tolerated one); needs no `rate`.
    # test "rank": `bad` sums the calls' tail percentiles among the route's reference and `total`
    # counts them (analysis/route_shift.py); it holds when the sum's Irwin-Hall lower tail is under
    # p_value and the calls sit on average within the `max_mean` tail (a shift large enough to matter)
    test: str = "binomial"
    max_mean: float = 0.25

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


# --- the rule schema ---------------------------------------------------------------------------
# A rule is validated as a pydantic model: types, ranges, unknown keys, and metric names and grains
# checked against the analyzers' catalog and grains (never a list kept here). Checks that span keys
# (grain or grains, what goes with evidence, ...) read the raw mapping, so every problem is listed.

def _metric_name(name: str) -> str:
    if not is_metric(name):
        raise ValueError(f"{name!r} is not an analyzer metric")
    return name


def _count_name(name: str) -> str:
    if _metric_name(name) not in COUNT_METRICS:
        raise ValueError(f"{name!r} is not a count")
    return name


def _one_of(choices: Any, sep: str = ", ") -> Any:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"{value!r} is not one of {sep.join(choices)}")
        return value
    return AfterValidator(check)


def _as_duration(value: Any) -> Any:
    return value if isinstance(value, timedelta) else parse_duration(value)


Metric = Annotated[str, Strict(), AfterValidator(_metric_name)]
CountMetric = Annotated[str, Strict(), AfterValidator(_count_name)]
Grain = Annotated[str, Strict(), _one_of(GRAIN_SECONDS)]
Op = Annotated[str, Strict(), _one_of(OPS, " ")]
Number = Annotated[float, Strict()]
Duration = Annotated[timedelta, BeforeValidator(_as_duration)]
Label = Annotated[str, _one_of(SERIES_LABELS)]
Scalar = str | int | float | None


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_notes(cls, data: Any) -> Any:   # x-...: YAML anchors and notes
        return {k: v for k, v in data.items() if not str(k).startswith("x-")} if isinstance(data, dict) else data


class BaselineSpec(_Spec):
    window: Duration
    factor: Number = 1.0
    delta: Number = 0.0
    min_baseline: Number = 0.0


class ClauseSpec(_Spec):
    metric: Metric
    op: Op = ">"
    threshold: Number


class EvidenceSpec(_Spec):
    bad: CountMetric
    total: CountMetric
    rate: Metric | None = None
    factor: Number = 1.0
    delta: Number = 0.0
    floor: Number = 0.0
    p_value: Number = Field(1e-4, gt=0, lt=1)
    min_bad: Number = 1.0
    baseline_window: Duration = timedelta(days=1)
    min_history: Duration = timedelta(hours=3)
    test: Annotated[str, Strict(), _one_of(("binomial", "fisher", "rank"))] = "binomial"
    max_mean: Number = Field(0.25, gt=0, lt=1)


class ConditionSpec(_Spec):
    metric: Metric | None = None
    grain: Grain | None = None
    grains: list[Grain] | None = Field(None, min_length=1)
    op: Op = ">"
    threshold: Number | None = None
    match: dict[Label, Scalar | list[Scalar]] | None = None
    baseline: BaselineSpec | None = None
    min_requests: Number = 0.0
    absent: Annotated[str, _one_of(("requests",))] | None = None
    window: Duration = timedelta(minutes=5)
    had_traffic_within: Duration = timedelta(hours=1)
    min_expected: Number = 10.0
    over: Duration | None = None
    also: list[ClauseSpec] = []
    evidence: EvidenceSpec | None = None


class RuleSpec(_Spec):
    name: Annotated[str, Strict(), Field(pattern=r"^[A-Za-z_][A-Za-z0-9_:-]*$")]
    severity: Annotated[str, Strict(), _one_of(SEVERITIES)]
    condition: ConditionSpec
    for_: Duration = Field(timedelta(0), alias="for")
    keep_firing_for: Duration = timedelta(0)
    labels: dict[str, str | int | float] = {}
    summary: Annotated[str, Strict()] = "{alertname} on {service}"
    description: Annotated[str, Strict()] = ""
    runbook: Annotated[str, Strict()] = ""

    @field_validator("runbook")
    @classmethod
    def _http(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value


_SCHEMA_MESSAGES = {"missing": "is required", "extra_forbidden": "unknown key", "float_type": "{input} is not a number",
                    "string_type": "must be a string", "model_type": "must be a mapping", "dict_type": "must be a mapping",
                    "list_type": "must be a list", "too_short": "must be a non-empty list",
                    "string_pattern_mismatch": "is required: letters, digits, _ : -",
                    "greater_than": "{input} must be between 0 and 1", "less_than": "{input} must be between 0 and 1"}


def _schema_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """(key path, message) of each problem, e.g. ('condition.also[0].metric', "'x' is not an analyzer metric")."""
    out = []
    for err in exc.errors(include_url=False):
        parts = [p for p in err["loc"] if p != "[key]"]
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".") or "-"
        if err["type"] == "value_error":
            message = str((err.get("ctx") or {}).get("error", err["msg"]))
        else:
            given = err.get("input")
            message = _SCHEMA_MESSAGES.get(err["type"], err["msg"]).format(input="null" if given is None else repr(given))
        out.append((key, message))
    return out


def _cross_problems(raw: dict) -> list[tuple[str, str]]:
    """Rules that span keys, read from the raw mapping so they are listed next to the schema's."""
    out: list[tuple[str, str]] = []
    c = raw.get("condition")
    if isinstance(c, dict):
        if "evidence" in c:
            out += [(f"condition.{k}", "does not go with evidence (the count test is the comparison)")
                    for k in ("metric", "grain", "grains", "threshold", "baseline", "min_requests", "also", "op")
                    if k in c]
            if "over" not in c:
                out.append(("condition.over", "is required with evidence (the test window of 1m buckets)"))
            ev = c.get("evidence")
            if isinstance(ev, dict) and ev.get("test") == "fisher" and "rate" in ev:
                out.append(("condition.evidence.rate", "does not go with test fisher (it learns from the counts)"))
            if isinstance(ev, dict) and ev.get("test") == "rank":
                out += [(f"condition.evidence.{k}", "does not go with test rank (the reference is the route's own calls)")
                        for k in ("rate", "factor", "delta", "floor", "min_bad", "baseline_window", "min_history")
                        if k in ev]
        elif "absent" not in c:
            if "metric" not in c:
                out.append(("condition.metric", "is required"))
            if "grain" in c and "grains" in c:
                out.append(("condition.grains", "give grain or grains, not both"))
            grains = c.get("grains", [c.get("grain", "1m")])
            if "baseline" in c:
                if isinstance(grains, list) and len(grains) > 1:
                    out.append(("condition.baseline", "a baseline compares one grain, not several"))
            elif c.get("threshold") is None and "threshold" not in c:
                out.append(("condition.threshold", "is required (or give a baseline)"))
            if "over" in c:
                if grains != ["1m"]:
                    out.append(("condition.over", "aggregates 1m buckets: use it with grain 1m"))
                if "baseline" in c and window_weight(str(c.get("metric"))) is None:
                    out.append(("condition.over", "a summed count over a window cannot be compared with a "
                                                  "per-minute baseline"))
    given = raw.get("labels")
    labels: dict = given if isinstance(given, dict) else {}
    out += [(f"labels.{k}", "is set by aiwatch") for k in ("alertname", "severity") if k in labels]
    for key in ("summary", "description"):
        if isinstance(raw.get(key), str) and (problem := _template_problems(raw[key], {str(k) for k in labels})):
            out.append((key, problem))
    return out


def _match(raw: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    if raw is None:
        return (("arm", None),)
    out = tuple((name, tuple(None if v is None else str(v) for v in value) if isinstance(value, list)
                 else None if value is None else str(value)) for name, value in raw.items())
    return out if any(k == "arm" for k, _ in out) else out + (("arm", None),)


def _build(spec: RuleSpec) -> Rule:
    c = spec.condition
    match = _match(c.match)
    if c.evidence is not None:
        e = c.evidence
        condition = Condition(metric=e.bad, grains=("1m",), op=">", match=match, over=c.over or timedelta(minutes=5),
                              evidence=Evidence(e.bad, e.total, e.rate, e.factor, e.delta, e.floor, e.p_value,
                                                e.min_bad, e.baseline_window, e.min_history, e.test, e.max_mean))
    elif c.absent is not None:
        condition = Condition(metric="requests", grains=("1m",), op="==", threshold=0.0, match=match, absent=True,
                              window=c.window, had_traffic_within=c.had_traffic_within, min_expected=c.min_expected)
    else:
        b = c.baseline
        condition = Condition(
            metric=str(c.metric), grains=tuple(c.grains or [c.grain or "1m"]), op=c.op, threshold=c.threshold or 0.0,
            match=match, baseline=Baseline(b.window, b.factor, b.delta, b.min_baseline) if b else None,
            min_requests=c.min_requests, over=c.over, also=tuple(Clause(a.metric, a.op, a.threshold) for a in c.also))
    return Rule(name=spec.name, severity=spec.severity, condition=condition, for_=spec.for_,
                keep_firing_for=spec.keep_firing_for, labels=tuple(sorted((k, str(v)) for k, v in spec.labels.items())),
                summary=spec.summary, description=spec.description, runbook=spec.runbook)


def _rule(raw: Any, index: int, p: _Problems) -> Rule | None:
    """One rule through the schema; every problem is added to `p` naming the rule and the key."""
    if not isinstance(raw, dict):
        p.add(f"rule #{index + 1}", "-", "must be a mapping")
        return None
    name = raw.get("name")
    where = f"rule {name!r}" if name and isinstance(name, str) else f"rule #{index + 1}"
    problems = _cross_problems(raw)
    spec = None
    try:
        spec = RuleSpec.model_validate(raw)
    except ValidationError as exc:
        problems = _schema_problems(exc) + problems
    for key, message in problems:
        p.add(where, key, message)
    return _build(spec) if spec is not None and not problems else None


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
        name = raw.get("name") if isinstance(raw, dict) else None
        if isinstance(name, str) and name:
            if name in seen:
                p.add(f"rule {name!r}", "name", "is used by another rule")
            seen.add(name)
        if rule is not None:
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
