"""The alert evaluator and dispatcher, on an injectable clock.

Each `tick(now)` evaluates every rule, moves alerts through inactive -> pending -> firing ->
resolved (Prometheus semantics for `for` and `keep_firing_for`), then runs Alertmanager's
dispatcher: alerts are aggregated into groups by route and `group_by`, a group is first flushed
`group_wait` after it appears and then every `group_interval`; a flush notifies a receiver only
when the notification log says something changed or `repeat_interval` has passed. Silenced and
inhibited alerts are left out. Decisions, the notification log and the outbox rows are written in
one transaction, so a restart neither repeats nor loses a notification.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import re2

from alerts.conditions import Sample, evaluate, render_annotations
from alerts.rules import AlertsConfig, Inhibition, Route
from core.clock import utcnow
from store import alerting
from store.base import Store

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


# --- silences ---------------------------------------------------------------------------------

MATCH_OPS = ("=", "!=", "=~", "!~")
MATCHER_MAX_CHARS = 4096
_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*\"?(.*?)\"?\s*$")


# Store column names people type for the alert labels they mean.
_LABEL_ALIASES = {"service_name": "service", "version": "model_version", "rule": "alertname"}


def parse_matcher(spec: str | dict[str, Any]) -> dict[str, str]:
    """`service=checkout`, `severity!=P3`, `alertname=~"Cost.*"` (or {name, op, value}) -> {name, op, value}."""
    if isinstance(spec, dict):
        name, op, value = str(spec.get("name", "")), str(spec.get("op", "=")), str(spec.get("value", ""))
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name) or op not in MATCH_OPS:
            raise ValueError(f"{spec!r} is not a matcher {{name, op (= != =~ !~), value}}")
    else:
        if len(spec) > MATCHER_MAX_CHARS:
            raise ValueError(f"a matcher is at most {MATCHER_MAX_CHARS} characters")
        m = _MATCHER.match(spec)
        if not m:
            raise ValueError(f"{spec!r} is not a matcher like name=value, name!=value, name=~regex")
        name, op, value = m.groups()
    if op in ("=~", "!~"):
        compile_matcher_regex(value)
    return {"name": _LABEL_ALIASES.get(name, name), "op": op, "value": value}


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False   # a bad pattern is the user's 400, not a line on the server's stderr


@functools.lru_cache(maxsize=1024)
def compile_matcher_regex(pattern: str) -> Any:
    """Alertmanager's regex matchers are RE2, fully anchored: linear time, so a silence such as
    `(a|a)*b` cannot pin evaluation; Python's backtracking `re` would."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(f"bad regex {pattern!r}: {reason}") from None


def matcher_matches(matcher: dict[str, str], labels: dict[str, str]) -> bool:
    have, op, want = labels.get(matcher["name"], ""), matcher["op"], matcher["value"]
    if op == "=":
        return have == want
    if op == "!=":
        return have != want
    try:
        pattern = compile_matcher_regex(want)
    except ValueError:                # stored before RE2 (e.g. a lookahead): the matcher holds for nothing
        return False
    full = pattern.fullmatch(have) is not None
    return full if op == "=~" else not full


def silenced_by(silences: list[dict[str, Any]], labels: dict[str, str]) -> str | None:
    for s in silences:
        if s["matchers"] and all(matcher_matches(m, labels) for m in s["matchers"]):
            return s["id"]
    return None


def _matches(matchers: tuple[tuple[str, Any], ...], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in matchers)


def inhibited(rules: tuple[Inhibition, ...], labels: dict[str, str], firing: list[dict[str, str]]) -> bool:
    for rule in rules:
        if not _matches(rule.target, labels):
            continue
        for source in firing:
            if source is labels or not _matches(rule.source, source):
                continue
            if all(source.get(k, "") == labels.get(k, "") for k in rule.equal):
                return True
    return False


# --- persistence ------------------------------------------------------------------------------

@dataclass
class Snapshot:
    states: dict[str, dict[str, Any]]
    groups: dict[str, dict[str, Any]]
    nflog: dict[tuple[str, str], dict[str, Any]]


@dataclass
class Changes:
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted_states: set[str] = field(default_factory=set)
    history: list[dict[str, Any]] = field(default_factory=list)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted_groups: set[str] = field(default_factory=set)
    nflog: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    kv: dict[str, str] = field(default_factory=dict)


class StateBackend(Protocol):
    def load(self) -> Snapshot: ...
    def save(self, changes: Changes, now: datetime) -> None: ...
    def silences(self, now: datetime) -> list[dict[str, Any]]: ...
    def get_kv(self, key: str) -> str | None: ...


class StoreBackend:
    """Alert state in the store: read with queries, written in one writer transaction per tick."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def load(self) -> Snapshot:
        states = {}
        for r in alerting.load_states(self.store):
            r["labels"], r["annotations"] = json.loads(r["labels"]), json.loads(r["annotations"])
            states[r["fingerprint"]] = r
        groups = {}
        for g in alerting.load_groups(self.store):
            g["group_labels"] = json.loads(g["group_labels"])
            groups[g["group_key"]] = g
        nflog = {}
        for n in alerting.load_nflog(self.store):
            n["firing"], n["resolved"] = set(json.loads(n["firing"])), set(json.loads(n["resolved"]))
            nflog[(n["group_key"], n["receiver"])] = n
        return Snapshot(states, groups, nflog)

    def save(self, changes: Changes, now: datetime) -> None:
        states = [{**s, "labels": json.dumps(s["labels"], sort_keys=True),
                   "annotations": json.dumps(s["annotations"], sort_keys=True, default=_nan_safe)}
                  for s in changes.states.values()]
        groups = [{**g, "group_labels": json.dumps(g["group_labels"], sort_keys=True)}
                  for g in changes.groups.values()]
        nflog = [{**n, "firing": json.dumps(sorted(n["firing"])), "resolved": json.dumps(sorted(n["resolved"]))}
                 for n in changes.nflog.values()]

        def write(con: Any) -> None:
            alerting.save_tick(con, states=states, deleted_states=sorted(changes.deleted_states),
                               history=changes.history, groups=groups, deleted_groups=sorted(changes.deleted_groups),
                               nflog=nflog, outbox=changes.outbox, kv=changes.kv, now=now)
            alerting.garbage_collect(con, now)
        self.store.writer.write(fn=write)

    def silences(self, now: datetime) -> list[dict[str, Any]]:
        return alerting.active_silences(self.store, now)

    def get_kv(self, key: str) -> str | None:
        return alerting.get_kv(self.store, key)


class MemoryBackend:
    """Alert state in memory: backtests and unit tests that need no store."""

    def __init__(self, silences: list[dict[str, Any]] | None = None) -> None:
        self.snapshot = Snapshot({}, {}, {})
        self.outbox: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self._silences = silences or []
        self.kv: dict[str, str] = {}

    def load(self) -> Snapshot:
        return Snapshot({k: dict(v) for k, v in self.snapshot.states.items()},
                        {k: dict(v) for k, v in self.snapshot.groups.items()},
                        {k: dict(v) for k, v in self.snapshot.nflog.items()})

    def save(self, changes: Changes, now: datetime) -> None:
        s = self.snapshot
        for fp in changes.deleted_states:
            s.states.pop(fp, None)
        s.states.update(changes.states)
        for key in changes.deleted_groups:
            s.groups.pop(key, None)
        s.groups.update(changes.groups)
        s.nflog.update(changes.nflog)
        self.outbox.extend(changes.outbox)
        self.history.extend(changes.history)
        self.kv.update(changes.kv)

    def silences(self, now: datetime) -> list[dict[str, Any]]:
        return [s for s in self._silences if s["starts_at"] <= now < s["ends_at"]]

    def get_kv(self, key: str) -> str | None:
        return self.kv.get(key)


def _nan_safe(value: Any) -> Any:
    return None


def _clean(value: float | None) -> float | None:
    return None if value is None or value != value else value


# --- the engine -------------------------------------------------------------------------------

@dataclass
class TickResult:
    now: datetime
    transitions: list[dict[str, Any]]
    notifications: list[dict[str, Any]]
    failed_rules: set[str]


def group_key_for(route: Route, labels: dict[str, str]) -> tuple[str, dict[str, str]]:
    group_labels = {k: labels.get(k, "") for k in route.group_by}
    return f"{route.name}:{json.dumps(group_labels, sort_keys=True)}", group_labels


def dedup_key(group_key: str) -> str:
    """Stable per aggregation group: PagerDuty folds every trigger/resolve of a group into one incident."""
    return "aiwatch-" + hashlib.sha256(group_key.encode()).hexdigest()[:32]


class AlertEngine:
    def __init__(self, config: AlertsConfig, backend: StateBackend, source: Any,
                 clock: Clock = utcnow, all_receivers: bool = False) -> None:
        self.config = config
        self.all_receivers = all_receivers  # backtests: show what every receiver would have been sent
        self.backend = backend
        self.source = source          # where analysis_metrics is read from
        self.clock = clock
        self._snap: Snapshot | None = None   # this process owns alert state: load once, write through
        self._cache: dict = {}

    def use(self, config: AlertsConfig) -> None:
        """Other rules from the next tick on (a reload): the state goes on, keyed by fingerprint."""
        self.config = config
        self._cache = {}      # baselines memoised for the old conditions

    def tick(self, now: datetime | None = None) -> TickResult:
        now = now or self.clock()
        if self._snap is None:
            self._snap = self.backend.load()
        snap = self._snap
        # an active alert's learned baseline is held where it was when the alert began (conditions)
        active = {fp: s["active_at"] for fp, s in snap.states.items() if s["state"] in ("pending", "firing")}
        samples, failed = evaluate(self.source, self.config, now, self._cache, active)
        changes = Changes()
        try:
            transitions = self._transition(now, samples, failed, snap, changes)
            notifications = self._dispatch(now, snap, changes)
            self._digest(now, changes)
            self._watchdog(now, changes)
            if _has_changes(changes):
                self.backend.save(changes, now)
        except BaseException:
            self._snap = None                 # reload what was really committed
            raise
        for state in changes.states.values():
            state["_persisted_at"] = now
        for fp, state in list(snap.states.items()):
            state.pop("_moved", None)
            if state["state"] == "resolved" and state.get("resolve_flushed") and now - state["resolved_at"] > FORGET_AFTER:
                del snap.states[fp]           # the store's garbage collection drops the row too
        return TickResult(now, transitions, notifications, failed)

    # -- state machine --
    def _transition(self, now: datetime, samples: dict[str, Sample], failed: set[str], snap: Snapshot,
                    changes: Changes) -> list[dict[str, Any]]:
        rules = {r.name: r for r in self.config.rules}
        out: list[dict[str, Any]] = []

        def move(state: dict[str, Any], to: str, value: float | None) -> None:
            event = {"time": now, "fingerprint": state["fingerprint"], "rule": state["rule"],
                     "severity": state["severity"], "labels": json.dumps(state["labels"], sort_keys=True),
                     "from_state": state.get("state") or "inactive", "to_state": to, "value": _clean(value),
                     "threshold": _clean(state.get("threshold"))}
            changes.history.append(event)
            out.append({**event, "labels": state["labels"], "annotations": state.get("annotations") or {}})
            state["state"] = to
            state["_moved"] = True

        for fp, sample in samples.items():
            rule = sample.rule
            state = snap.states.get(fp)
            notes = render_annotations(sample, self.config.dashboard_url, now)
            if state is None or state["state"] == "resolved":
                state = {"fingerprint": fp, "rule": rule.name, "severity": rule.severity, "labels": sample.labels,
                         "state": state["state"] if state else None, "active_at": now, "fired_at": None,
                         "resolved_at": None, "group_key": None, "resolve_flushed": False}
                move(state, "pending", sample.value)
            state.update(annotations=notes, last_true_at=now, last_eval_at=now, value=_clean(sample.value),
                         threshold=_clean(sample.threshold))
            if state["state"] == "pending" and now - state["active_at"] >= rule.for_:
                route = self.config.route_for(state["labels"])
                state["group_key"] = group_key_for(route, state["labels"])[0] if route else None
                state["fired_at"] = now
                move(state, "firing", sample.value)
            snap.states[fp] = state
            # Value and last-true refreshes are written at most once a minute; transitions at once.
            persisted = state.get("_persisted_at")
            if persisted is None or state.get("_moved") or now - persisted >= PERSIST_EVERY:
                changes.states[fp] = state
            state.pop("_moved", None)

        for fp, state in list(snap.states.items()):
            if fp in samples or state["state"] == "resolved" or state["rule"] in failed:
                continue
            known = rules.get(state["rule"])
            state["last_eval_at"] = now
            if state["state"] == "pending":
                move(state, "inactive", state.get("value"))
                del snap.states[fp]
                changes.states.pop(fp, None)
                changes.deleted_states.add(fp)
                continue
            keep = known.keep_firing_for if known else timedelta(0)
            if now - state["last_true_at"] < keep:
                continue
            state["resolved_at"] = now
            state["resolve_flushed"] = False
            move(state, "resolved", state.get("value"))
            changes.states[fp] = state
        return out

    # -- dispatcher (Alertmanager) --
    def _dispatch(self, now: datetime, snap: Snapshot, changes: Changes) -> list[dict[str, Any]]:
        routes = {r.name: r for r in self.config.routes}
        members: dict[str, list[dict[str, Any]]] = {}
        for state in snap.states.values():
            key = state.get("group_key")
            if not key or state["state"] not in ("firing", "resolved") or state.get("resolve_flushed"):
                continue
            if state["state"] == "resolved" and not state.get("fired_at"):
                continue
            members.setdefault(key, []).append(state)
        for key, alerts in members.items():
            if key not in snap.groups:
                route = routes.get(key.split(":", 1)[0])
                if route is None:
                    continue
                group: dict[str, Any] = {"group_key": key, "route": route.name,
                         "group_labels": group_key_for(route, alerts[0]["labels"])[1],
                         "created_at": now, "next_flush_at": now + route.group_wait, "last_flush_at": None}
                snap.groups[key] = group
                changes.groups[key] = group

        firing_labels = [s["labels"] for s in snap.states.values() if s["state"] == "firing"]
        silences = self.backend.silences(now)
        notifications: list[dict[str, Any]] = []
        for key, group in list(snap.groups.items()):
            if group["next_flush_at"] > now:
                continue
            route = routes.get(group["route"])
            alerts = members.get(key, [])
            if route is None or not alerts:
                del snap.groups[key]
                changes.groups.pop(key, None)
                changes.deleted_groups.add(key)
                continue
            visible = [a for a in alerts if not silenced_by(silences, a["labels"])
                       and not inhibited(self.config.inhibitions, a["labels"], firing_labels)]
            firing = [a for a in visible if a["state"] == "firing"]
            resolved = [a for a in visible if a["state"] == "resolved"]
            for name in route.receivers:
                receiver = self.config.receivers[name]
                if not receiver.configured and not self.all_receivers:
                    continue
                entry = snap.nflog.get((key, name))
                send_resolved = receiver.send_resolved
                if not _needs_update(entry, firing, resolved if send_resolved else [], send_resolved,
                                     route.repeat_interval, now):
                    continue
                log_entry = {"group_key": key, "receiver": name, "firing": {a["fingerprint"] for a in firing},
                             "resolved": {a["fingerprint"] for a in resolved}, "notified_at": now}
                snap.nflog[(key, name)] = log_entry
                changes.nflog[(key, name)] = log_entry
                sent = firing + (resolved if send_resolved else [])
                if not sent:
                    continue
                message = build_message(key, group, name, firing, resolved if send_resolved else [],
                                        self.config.dashboard_url)
                row = {"id": uuid.uuid4().hex, "created_at": now, "receiver": name, "receiver_type": receiver.type,
                       "group_key": key, "status": message["status"], "dedup_key": dedup_key(key),
                       "payload": json.dumps(message, default=str), "state": "pending", "attempts": 0,
                       "next_attempt_at": now}
                changes.outbox.append(row)
                notifications.append({**row, "message": message})
            for a in alerts:
                if a["state"] == "resolved":
                    a["resolve_flushed"] = True
                    changes.states[a["fingerprint"]] = a
            group["next_flush_at"] = now + route.group_interval
            group["last_flush_at"] = now
            if all(a["state"] == "resolved" for a in alerts):
                del snap.groups[key]
                changes.groups.pop(key, None)
                changes.deleted_groups.add(key)
            else:
                changes.groups[key] = group
        return notifications

    # -- weekly digest of P3 review items --
    def _digest(self, now: datetime, changes: Changes) -> None:
        digest = self.config.digest
        if not digest or not isinstance(self.backend, StoreBackend):
            return
        receiver = self.config.receivers.get(digest.receiver)
        last = self.backend.get_kv("digest_at")
        if last is None:
            changes.kv["digest_at"] = now.isoformat()
            return
        since = datetime.fromisoformat(last)
        if now - since < digest.every:
            return
        changes.kv["digest_at"] = now.isoformat()
        if receiver is None or not receiver.configured:
            return
        items = alerting.review_since(self.backend.store, since)
        message = {"type": "digest", "status": "digest", "since": since.isoformat(), "until": now.isoformat(),
                   "dashboard": self.config.dashboard_url,
                   "items": [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in i.items()}
                             for i in items if i["status"] == "firing"]}
        changes.outbox.append({"id": uuid.uuid4().hex, "created_at": now, "receiver": receiver.name,
                               "receiver_type": receiver.type, "group_key": f"digest:{since.isoformat()}",
                               "status": "digest", "dedup_key": None, "payload": json.dumps(message, default=str),
                               "state": "pending", "attempts": 0, "next_attempt_at": now})


    # -- dead man's switch --
    def _watchdog(self, now: datetime, changes: Changes) -> None:
        """Queue the always-firing Watchdog alert every `watchdog.every`. It is decided here, by the
        evaluator, so the heartbeats stop when evaluation stops (a crash, a hang, a stopped server)
        and the dead man's switch on the other end pages."""
        watchdog = self.config.watchdog
        if not watchdog or self.all_receivers:          # a backtest sends no heartbeats
            return
        receiver = self.config.receivers.get(watchdog.receiver)
        if receiver is None or not receiver.configured:
            return
        last = self.backend.get_kv("watchdog_at")
        if last is not None and now - datetime.fromisoformat(last) < watchdog.every:
            return
        changes.kv["watchdog_at"] = now.isoformat()
        labels = {"alertname": WATCHDOG, "severity": "none", "service": "aiwatch"}
        notes = {"summary": "aiwatch is evaluating alert rules (this alert always fires)",
                 "description": f"A heartbeat every {watchdog.every}. If it stops, aiwatch has stopped "
                                "evaluating alerts: check the server.",
                 "dashboard": self.config.dashboard_url}
        group = {"group_labels": {"alertname": WATCHDOG}}
        state = {"state": "firing", "labels": labels, "annotations": notes, "fired_at": now, "fingerprint": WATCHDOG}
        message = build_message(WATCHDOG, group, receiver.name, [state], [], self.config.dashboard_url)
        changes.outbox.append({"id": uuid.uuid4().hex, "created_at": now, "receiver": receiver.name,
                               "receiver_type": receiver.type, "group_key": WATCHDOG, "status": "firing",
                               "dedup_key": dedup_key(WATCHDOG), "payload": json.dumps(message, default=str),
                               "state": "pending", "attempts": 0, "next_attempt_at": now})


WATCHDOG = "Watchdog"
PERSIST_EVERY = timedelta(seconds=60)
FORGET_AFTER = timedelta(days=1)


def _has_changes(c: Changes) -> bool:
    return bool(c.states or c.deleted_states or c.history or c.groups or c.deleted_groups or c.nflog
                or c.outbox or c.kv)


def _needs_update(entry: dict[str, Any] | None, firing: list[dict], resolved: list[dict], send_resolved: bool,
                  repeat: timedelta, now: datetime) -> bool:
    """Alertmanager's DedupStage.needsUpdate over the notification log."""
    firing_fps = {a["fingerprint"] for a in firing}
    resolved_fps = {a["fingerprint"] for a in resolved}
    if entry is None:
        return bool(firing_fps)
    if not firing_fps <= entry["firing"]:
        return True
    if not firing_fps:
        return bool(entry["firing"])
    if send_resolved and not resolved_fps <= entry["resolved"]:
        return True
    return entry["notified_at"] + repeat <= now


def _iso(ts: datetime | None) -> str:
    return (ts.isoformat() + "Z") if ts else "0001-01-01T00:00:00Z"


def build_message(group_key: str, group: dict[str, Any], receiver: str, firing: list[dict], resolved: list[dict],
                  dashboard_url: str) -> dict[str, Any]:
    """The receiver-neutral notification: Alertmanager's webhook JSON (version 4)."""
    alerts = []
    for a in firing + resolved:
        alerts.append({"status": "firing" if a["state"] == "firing" else "resolved", "labels": a["labels"],
                       "annotations": {k: v for k, v in a["annotations"].items()},
                       "startsAt": _iso(a.get("fired_at") or a.get("active_at")),
                       "endsAt": _iso(a.get("resolved_at")) if a["state"] == "resolved" else "0001-01-01T00:00:00Z",
                       "generatorURL": a["annotations"].get("dashboard", dashboard_url),
                       "fingerprint": a["fingerprint"]})

    def common(key: str) -> dict[str, Any]:
        dicts = [a[key] for a in alerts]
        if not dicts:
            return {}
        return {k: v for k, v in dicts[0].items() if all(d.get(k) == v for d in dicts[1:])}

    return {"version": "4", "groupKey": group_key, "truncatedAlerts": 0,
            "status": "firing" if firing else "resolved", "receiver": receiver,
            "groupLabels": group["group_labels"], "commonLabels": common("labels"),
            "commonAnnotations": {k: v for k, v in common("annotations").items() if isinstance(v, str)},
            "externalURL": dashboard_url, "alerts": alerts}
