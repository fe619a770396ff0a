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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

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

from analysis.metrics_catalog import ADDITIVE, describe
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
                   "bad", "total", "p_value", "history_hours", "maturity", "mean_percentile", "window", "windows",
                   "models"}


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


# Counts add up over a window (the catalog says which); rates, means and percentiles are averaged
# weighted by their denominator.
COUNT_METRICS = ADDITIVE
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

    @property
    def unit(self) -> str:
        """The unit of an alert's value and threshold: a share for evidence rules (bad / total
        against the tolerated rate, or a rank test's mean tail percentile against its bound), a
        number of calls for absence, else the metric's unit in analysis/metrics_catalog.py."""
        if self.evidence is not None:
            return "ratio"
        if self.absent:
            return "count"
        found = describe(self.metric)
        return found[0] if found else ""


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


def _matcher_items(raw: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Validated label matchers as (label, value or tuple of values) pairs, values as strings."""
    return tuple((name, tuple(None if v is None else str(v) for v in value) if isinstance(value, list)
                  else None if value is None else str(value)) for name, value in raw.items())


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


def _match_value(value: Any) -> Any:
    scalar = (str, int, float, type(None))
    if isinstance(value, scalar) or isinstance(value, list) and all(isinstance(v, scalar) for v in value):
        return value
    raise ValueError(f"{value!r} is not a label value (a string or number, or a list of them)")


MatchValue = Annotated[Any, AfterValidator(_match_value)]   # one message, not one per member of a union


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


class Evidence(_Spec):
    """A count test: `bad` of `total` calls over the window against the series' normal rate (one
    model for the rule schema and the engine).

    It holds when P(X >= bad | total calls, tolerated rate) < p_value (binomial tail) and at least
    `min_bad` calls were bad, where tolerated = max(factor x normal, normal + delta, floor). The
    normal rate is the 1h metric `rate` in force for the series (an analyzer's learned baseline or
    an SLO budget), else learned here: bad / total over the trailing `baseline_window` before the
    test window, reported immature under `min_history`."""
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
    # test "fisher": the window's bad / total against the counts over `baseline_window` before it
    # (Fisher's exact test, one-sided; the rate must also exceed the tolerated one); needs no `rate`.
    # test "rank": `bad` sums the calls' tail percentiles among the route's reference and `total`
    # counts them (analysis/route_shift.py); it holds when the sum's Irwin-Hall lower tail is under
    # p_value and the calls sit on average within the `max_mean` tail (a shift large enough to matter)
    test: Annotated[str, Strict(), _one_of(("binomial", "fisher", "rank"))] = "binomial"
    max_mean: Number = Field(0.25, gt=0, lt=1)
    # rank only: test every window of the newest 1..K minutes (K = over in minutes), so an onset is
    # judged on the calls since it, not diluted by the calls before it in a fixed window. The
    # whole window is tested at p_value / 2 (on a quiet route the onset K minutes back is the
    # deadline's case, and it needs the power), each shorter one at p_value / (2 (K - 1)), so
    # one evaluation still fires by chance with probability under p_value (Bonferroni)
    scan: Annotated[bool, Strict()] = False
    # count tests: the newest `recent` of the window must itself be over the tolerated rate, with no
    # test of its own (the short window of SRE multiwindow alerts): a long window's evidence
    # outlives the incident by up to its length, this lets the alert reset soon after it ends
    recent: Duration | None = None

    def windows(self, over: timedelta) -> int:
        """How many windows one evaluation tests: over / 1m with `scan`, else the one."""
        return max(int(over / timedelta(minutes=1)), 1) if self.scan else 1

    def window_p_value(self, over: timedelta, length: timedelta | None = None) -> float:
        """The p-value the window of `length` (default: the whole `over`) must be under: the rule's,
        shared among its scanned windows."""
        k = self.windows(over)
        if k == 1:
            return float(self.p_value)
        whole = length is None or length >= over
        return float(self.p_value) / 2 / (1 if whole else k - 1)

    def tolerated(self, normal: float) -> float:
        return min(max(self.factor * normal, normal + self.delta, self.floor), 1.0)


class ConditionSpec(_Spec):
    metric: Metric | None = None
    grain: Grain | None = None
    grains: list[Grain] | None = Field(None, min_length=1)
    op: Op = ">"
    threshold: Number | None = None
    match: dict[Label, MatchValue] | None = None
    baseline: BaselineSpec | None = None
    min_requests: Number = 0.0
    absent: Annotated[str, _one_of(("requests",))] | None = None
    window: Duration = timedelta(minutes=5)
    had_traffic_within: Duration = timedelta(hours=1)
    min_expected: Number = 10.0
    over: Duration | None = None
    also: list[ClauseSpec] = []
    evidence: Evidence | None = None


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


# --- receivers, routes and inhibitions: the same schema style as a rule -------------------------
# Checks that need the environment (a URL after ${VAR} expansion) or the other sections (a route's
# receiver names) run after the schema, on the validated spec.

MAX_RECEIVER_TIMEOUT = timedelta(minutes=2)   # a send past it holds the delivery loop too long


def _receiver_timeout(value: timedelta) -> timedelta:
    if not timedelta(0) < value <= MAX_RECEIVER_TIMEOUT:
        raise ValueError(f"must be more than 0 s and at most {MAX_RECEIVER_TIMEOUT.total_seconds():g} s")
    return value


Text = Annotated[str, Strict()]
Matchers = dict[Text, MatchValue]


class ReceiverSpec(_Spec):
    type: Annotated[str, Strict(), _one_of(RECEIVER_TYPES)] | None = None   # None: `apprise: <url>` gives it
    url: Text = ""
    apprise: Text | None = None     # `apprise: "workflows://..."` is short for type: apprise + url
    routing_key: Text = ""
    send_resolved: Annotated[bool, Strict()] = True
    timeout: Annotated[timedelta, BeforeValidator(_as_duration), AfterValidator(_receiver_timeout)] = (
        timedelta(seconds=10))


class RouteSpec(_Spec):
    match: Matchers = {}
    receivers: list[Text] = []
    group_by: list[Text] | None = None       # None: the defaults'
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None


class InhibitSpec(_Spec):
    source: Matchers
    target: Matchers
    equal: list[Text] = []


class DefaultsSpec(_Spec):
    group_by: list[Text] = ["alertname", "service"]
    group_wait: Duration = timedelta(seconds=30)
    group_interval: Duration = timedelta(minutes=5)
    repeat_interval: Duration = timedelta(hours=4)
    dashboard_url: Text = "http://127.0.0.1:8501"


class DigestSpec(_Spec):
    receiver: Text
    every: Duration = timedelta(days=7)


class WatchdogSpec(_Spec):
    receiver: Text
    every: Duration = timedelta(minutes=1)


_SCHEMA_MESSAGES = {"missing": "is required", "extra_forbidden": "unknown key", "float_type": "{input} is not a number",
                    "string_type": "must be a string", "model_type": "must be a mapping", "dict_type": "must be a mapping",
                    "list_type": "must be a list", "too_short": "must be a non-empty list",
                    "bool_type": "{input} is not true or false",
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
            if isinstance(ev, dict) and ev.get("scan") and ev.get("test") != "rank":
                out.append(("condition.evidence.scan", "goes with test rank only (a window scan of rank sums)"))
            if isinstance(ev, dict) and "recent" in ev:
                if ev.get("test") == "rank":
                    out.append(("condition.evidence.recent", "goes with count tests only (binomial, fisher)"))
                else:
                    try:
                        shorter = _as_duration(ev["recent"]) < _as_duration(c["over"])
                    except (KeyError, TypeError, ValueError):
                        shorter = True       # reported by the schema (a bad or missing duration)
                    if not shorter:
                        out.append(("condition.evidence.recent", "must be shorter than condition.over"))
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
    out = _matcher_items(raw)
    return out if any(k == "arm" for k, _ in out) else out + (("arm", None),)


def _build(spec: RuleSpec) -> Rule:
    c = spec.condition
    match = _match(c.match)
    if c.evidence is not None:
        e = c.evidence
        # the alert's value against its threshold: bad / total above the tolerated rate, or a rank
        # test's mean tail percentile at or under its bound
        condition = Condition(metric=e.bad, grains=("1m",), op="<=" if e.test == "rank" else ">", match=match,
                              over=c.over or timedelta(minutes=5), evidence=e)
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


S = TypeVar("S", bound=_Spec)


def _validated(model: type[S], raw: Any, where: str, p: _Problems,
               cross: Callable[[dict], list[tuple[str, str]]] | None = None) -> S | None:
    """`raw` through `model`; every problem (the schema's, then `cross`'s over the raw mapping) is
    added to `p` naming `where` and the key. None when there was any."""
    if not isinstance(raw, dict):
        p.add(where, "-", "must be a mapping")
        return None
    problems = cross(raw) if cross else []
    spec = None
    try:
        spec = model.model_validate(raw)
    except ValidationError as exc:
        problems = _schema_problems(exc) + problems
    for key, message in problems:
        p.add(where, key, message)
    return spec if not problems else None


def _rule(raw: Any, index: int, p: _Problems) -> Rule | None:
    """One rule through the schema; every problem is added to `p` naming the rule and the key."""
    name = raw.get("name") if isinstance(raw, dict) else None
    where = f"rule {name!r}" if name and isinstance(name, str) else f"rule #{index + 1}"
    spec = _validated(RuleSpec, raw, where, p, _cross_problems)
    return _build(spec) if spec is not None else None


def _receiver_cross(raw: dict) -> list[tuple[str, str]]:
    if "apprise" in raw:
        if raw.get("type", "apprise") != "apprise" or "url" in raw:
            return [("apprise", "give either `apprise: <url>` or `type` and `url`, not both")]
    elif "type" not in raw:
        return [("type", f"is required (one of {', '.join(RECEIVER_TYPES)})")]
    return []


def _receiver(name: str, raw: Any, env: Mapping[str, str] | None, p: _Problems) -> Receiver | None:
    where = f"receiver {name!r}"
    spec = _validated(ReceiverSpec, raw, where, p, _receiver_cross)
    if spec is None:
        return None
    rtype = "apprise" if spec.apprise is not None else str(spec.type)
    url = expand_env(spec.apprise if spec.apprise is not None else spec.url, env)
    if url and rtype == "apprise":
        from alerts.apprise_receiver import url_problem  # apprise loads only when one is configured
        if problem := url_problem(url):
            p.add(where, "apprise" if spec.apprise is not None else "url", problem)
            return None
    elif url and not url.startswith(("http://", "https://")):   # the URL itself is a secret: not echoed
        p.add(where, "url", "is not an http(s) URL")
        return None
    return Receiver(name=name, type=rtype, url=url, routing_key=expand_env(spec.routing_key, env),
                    send_resolved=spec.send_resolved, timeout_s=spec.timeout.total_seconds())


def _section(data: dict, key: str, kind: type, p: _Problems, what: str) -> Any:
    """A top-level section (a mapping or a list), empty when absent; a problem when of the wrong kind."""
    value = data.get(key)
    if value is None:
        return kind()
    if not isinstance(value, kind):
        p.add("top level", key, f"must be {what}")
        return kind()
    return value


def parse_config(data: Any, source: str = "<memory>", env: Mapping[str, str] | None = None) -> AlertsConfig:
    p = _Problems(source)
    if not isinstance(data, dict):
        raise RulesError([f"{source}: the file must be a mapping with a 'rules' list"])
    _check_keys(data, {"defaults", "receivers", "routes", "inhibit_rules", "weekly_digest", "watchdog", "rules"},
                "top level", "", p)
    defaults = _validated(DefaultsSpec, data.get("defaults") or {}, "defaults", p) or DefaultsSpec()

    receivers: dict[str, Receiver] = {}
    raw_receivers = _section(data, "receivers", dict, p, "a mapping of name to receiver")
    for name, raw in raw_receivers.items():
        if (receiver := _receiver(str(name), raw, env, p)) is not None:
            receivers[str(name)] = receiver
    receivers.setdefault("review", Receiver("review", "review"))
    declared = {str(name) for name in raw_receivers} | {"review"}   # a bad receiver is reported once, not per use

    def receiver_named(name: str, where: str, key: str) -> bool:
        if name not in declared:
            p.add(where, key, f"no receiver named {name!r}")
        return name in receivers

    routes: list[Route] = []
    raw_routes = _section(data, "routes", list, p, "a list of routes") or [{"match": {}, "receivers": ["review"]}]
    for i, raw in enumerate(raw_routes):
        where = f"route #{i + 1}"
        if (route := _validated(RouteSpec, raw, where, p)) is None:
            continue
        for name in route.receivers:
            receiver_named(name, where, "receivers")
        routes.append(Route(
            name=f"route{i + 1}", match=_matcher_items(route.match), receivers=tuple(route.receivers),
            group_by=tuple(defaults.group_by if route.group_by is None else route.group_by),
            group_wait=defaults.group_wait if route.group_wait is None else route.group_wait,
            group_interval=defaults.group_interval if route.group_interval is None else route.group_interval,
            repeat_interval=defaults.repeat_interval if route.repeat_interval is None else route.repeat_interval))

    inhibitions = []
    for i, raw in enumerate(_section(data, "inhibit_rules", list, p, "a list of inhibit rules")):
        if (inhibit := _validated(InhibitSpec, raw, f"inhibit rule #{i + 1}", p)) is not None:
            inhibitions.append(Inhibition(_matcher_items(inhibit.source), _matcher_items(inhibit.target),
                                          tuple(inhibit.equal)))

    digest = None
    if data.get("weekly_digest"):
        d = _validated(DigestSpec, data["weekly_digest"], "weekly_digest", p)
        if d is not None and receiver_named(d.receiver, "weekly_digest", "receiver"):
            digest = Digest(d.receiver, d.every)

    watchdog = None
    if data.get("watchdog"):
        w = _validated(WatchdogSpec, data["watchdog"], "watchdog", p)
        if w is not None and receiver_named(w.receiver, "watchdog", "receiver"):
            watchdog = Watchdog(w.receiver, w.every)

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
                        dashboard_url=expand_env(defaults.dashboard_url, env),
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
