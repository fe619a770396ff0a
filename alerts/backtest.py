"""Backtest: replay stored analyzer outputs through the rules on a simulated clock.

The idea of `promtool test rules`, over real history: every `step` from `since` to `until` the
engine evaluates the rules against `analysis_metrics` as it looked then (a bucket is visible once
complete or computed), keeps state in memory and notifies nobody. The result is the timeline of
alerts that would have gone pending, fired and resolved, and the notifications that would have
been sent.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerts.engine import AlertEngine, MemoryBackend
from alerts.rules import AlertsConfig
from core.units import format_value
from store import alerting
from store.base import Reader, Store
from store.replay_index import AnalysisIndex


@dataclass
class Backtest:
    since: datetime
    until: datetime
    step: timedelta
    events: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)     # rule -> unit of its value (a pending event has no annotations yet)

    @classmethod
    def of(cls, config: AlertsConfig, since: datetime, until: datetime, step: timedelta) -> Backtest:
        return cls(since, until, step, units={r.name: r.condition.unit for r in config.rules})

    def summary(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for e in self.events:
            per = out.setdefault(e["rule"], {"severity": e["severity"], "pending": 0, "firing": 0, "resolved": 0})
            if e["to_state"] in per:
                per[e["to_state"]] += 1
        return out

    def first_firing(self, severity: str | None = None, after: datetime | None = None) -> datetime | None:
        times = [e["time"] for e in self.events if e["to_state"] == "firing"
                 and (severity is None or e["severity"] == severity) and (after is None or e["time"] >= after)]
        return min(times) if times else None

    def to_json(self) -> dict[str, Any]:
        def row(e: dict[str, Any]) -> dict[str, Any]:
            return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in e.items()}
        return {"since": self.since.isoformat(), "until": self.until.isoformat(),
                "step_s": self.step.total_seconds(), "events": [row(e) for e in self.events],
                "notifications": [row(n) for n in self.notifications], "summary": self.summary()}

    def timeline(self) -> str:
        header = f"backtest {self.since:%Y-%m-%d %H:%M} .. {self.until:%Y-%m-%d %H:%M} (step {self.step})"
        timed: list[tuple[datetime, int, str]] = []
        for e in self.events:
            labels = " ".join(f"{k}={v}" for k, v in e["labels"].items() if k not in ("alertname", "severity"))
            unit = self.units.get(e["rule"]) or str((e.get("annotations") or {}).get("unit", ""))
            value = "" if e["value"] is None else f" value={format_value(e['value'], unit)}"
            threshold = "" if e.get("threshold") is None else f" threshold={format_value(e['threshold'], unit)}"
            timed.append((e["time"], 0, f"{e['time']:%Y-%m-%d %H:%M:%S}  {e['to_state'].upper():9} "
                                        f"{e['severity']} {e['rule']:28} {labels}{value}{threshold}"))
        for n in self.notifications:
            timed.append((n["time"], 1, f"{n['time']:%Y-%m-%d %H:%M:%S}  NOTIFY    {n['receiver']:10} "
                                        f"{n['status']:8} {n['alerts']} alert(s) in {n['group_key']}"))
        lines = [header] + [line for _, _, line in sorted(timed, key=lambda x: (x[0], x[1]))]
        if len(lines) == 1:
            lines.append("no alert would have gone pending")
        else:
            lines.append("summary: " + ", ".join(f"{rule} ({s['severity']}): fired {s['firing']}x"
                                                 for rule, s in sorted(self.summary().items())))
        return "\n".join(lines)


FLAP_WINDOW = timedelta(minutes=15)   # a firing within this of the same alert's resolution is a flap
SEVERITY_DEADLINE = {"P1": timedelta(minutes=5), "P2": timedelta(minutes=15), "P3": timedelta(minutes=60)}


@dataclass(frozen=True)
class Mark:
    """A period the user marks: clean (nothing should fire) or an incident of a severity."""
    start: datetime
    end: datetime
    severity: str | None = None

    @classmethod
    def parse(cls, text: str, incident: bool = False) -> Mark:
        """START/END (clean) or START/END/SEVERITY (incident); times as the query API reads them."""
        from store.queries import parse_time

        parts = text.split("/")
        if len(parts) != (3 if incident else 2):
            raise ValueError(f"{text!r}: expected START/END{'/SEVERITY' if incident else ''}")
        start, end = parse_time(parts[0]), parse_time(parts[1])
        if end <= start:
            raise ValueError(f"{text!r}: the end is not after the start")
        severity = parts[2].upper() if incident else None
        if incident and severity not in SEVERITY_DEADLINE:
            raise ValueError(f"{text!r}: severity must be P1, P2 or P3")
        return cls(start, end, severity)


def episodes(events: Sequence[dict[str, Any]], until: datetime) -> list[dict[str, Any]]:
    """Each firing with its end: when it resolved, else None (still firing at `until`)."""
    out: list[dict[str, Any]] = []
    open_: dict[str, dict[str, Any]] = {}
    for e in sorted(events, key=lambda e: e["time"]):
        fp = e["fingerprint"]
        if e["to_state"] == "firing":
            open_[fp] = {"event": e, "start": e["time"], "end": None}
            out.append(open_[fp])
        elif e["to_state"] in ("resolved", "inactive") and fp in open_:
            open_.pop(fp)["end"] = e["time"]
    return out


def rule_report(result: Backtest, config: AlertsConfig, clean: Sequence[Mark] = (),
                incidents: Sequence[Mark] = ()) -> dict[str, Any]:
    """Per rule: firings, firings per day, flaps (a firing within FLAP_WINDOW of the same alert's
    resolution), firings inside marked clean periods; per marked incident: the first firing of its
    severity from its start, and the time to detect against the severity's deadline."""
    days = max((result.until - result.since).total_seconds() / 86400, 1 / 1440)
    eps = episodes(result.events, result.until)
    rules = []
    for rule in config.rules:
        mine = [ep for ep in eps if ep["event"]["rule"] == rule.name]
        last_end: dict[str, datetime] = {}
        flaps = 0
        for ep in mine:
            fp = ep["event"]["fingerprint"]
            if fp in last_end and ep["start"] - last_end[fp] <= FLAP_WINDOW:
                flaps += 1
            if ep["end"] is not None:
                last_end[fp] = ep["end"]
        in_clean = sum(1 for ep in mine if any(m.start <= ep["start"] < m.end for m in clean))
        rules.append({"rule": rule.name, "severity": rule.severity, "firings": len(mine),
                      "per_day": round(len(mine) / days, 2), "flaps": flaps, "clean_firings": in_clean})
    marked = []
    for m in incidents:
        assert m.severity is not None, "an incident mark has a severity (Mark.parse(incident=True))"
        hits = [ep for ep in eps if ep["event"]["severity"] == m.severity and m.start <= ep["start"] < m.end
                + SEVERITY_DEADLINE[m.severity]]
        first = min(hits, key=lambda ep: ep["start"]) if hits else None
        detect = (first["start"] - m.start) if first else None
        marked.append({"start": m.start.isoformat(), "end": m.end.isoformat(), "severity": m.severity,
                       "first_rule": first["event"]["rule"] if first else None,
                       "labels": first["event"]["labels"] if first else None,
                       "time_to_detect_s": detect.total_seconds() if detect is not None else None,
                       "in_time": detect is not None and detect <= SEVERITY_DEADLINE[m.severity]})
    return {"days": round(days, 3), "rules": rules, "incidents": marked}


def alertmanager_alerts(result: Backtest) -> list[dict[str, Any]]:
    """The fired alerts in the Alertmanager v2 API shape (labels, annotations, startsAt, endsAt; no
    endsAt while still firing at the end of the replay)."""
    def iso(t: datetime) -> str:
        return t.isoformat(timespec="seconds") + "Z"
    out = []
    for ep in episodes(result.events, result.until):
        e = ep["event"]
        notes = {k: (v if isinstance(v, str) else json.dumps(v, default=str)) for k, v in e["annotations"].items()
                 if v is not None}
        alert = {"labels": {k: str(v) for k, v in e["labels"].items()}, "annotations": notes,
                 "startsAt": iso(ep["start"]), "fingerprint": e["fingerprint"],
                 "generatorURL": notes.get("dashboard", "")}
        if ep["end"] is not None:
            alert["endsAt"] = iso(ep["end"])
        out.append(alert)
    return out


def report_table(report: dict[str, Any]) -> str:
    lines = [f"{'rule':28} sev  firings  per day  flaps  in clean"]
    for r in report["rules"]:
        lines.append(f"{r['rule']:28} {r['severity']:4} {r['firings']:>7} {r['per_day']:>8} {r['flaps']:>6} "
                     f"{r['clean_firings']:>9}")
    for m in report["incidents"]:
        detect = "not detected" if m["time_to_detect_s"] is None else \
            f"detected in {m['time_to_detect_s'] / 60:.1f} min by {m['first_rule']}"
        late = "" if m["in_time"] else f" (deadline {SEVERITY_DEADLINE[m['severity']].total_seconds() / 60:.0f} min)"
        lines.append(f"incident {m['start']} .. {m['end']} {m['severity']}: {detect}{late}")
    return "\n".join(lines)


def run_backtest(db: Reader, config: AlertsConfig, since: datetime, until: datetime,
                 step: timedelta = timedelta(minutes=1), copy: bool = True,
                 backend: MemoryBackend | None = None) -> Backtest:
    """Replay [since, until). `db` is anything with `.query`; with `copy` the needed rows (plus the
    longest baseline lookback) are read once into an in-memory index (store/replay_index.py), so
    the replay never touches the store and each simulated minute costs no SQL; without it every
    minute queries `db` as the live evaluator does."""
    source: Reader | AnalysisIndex = db
    if copy:
        source = AnalysisIndex(alerting.analysis_window(db, since - config.max_lookback, until + timedelta(hours=1),
                                                        sorted(config.metrics)))
    backend = backend or MemoryBackend()
    engine = AlertEngine(config, backend, source, all_receivers=True)
    result = Backtest.of(config, since, until, step)
    now = since
    while now < until:
        tick = engine.tick(now)
        for t in tick.transitions:
            result.events.append({"time": t["time"], "rule": t["rule"], "severity": t["severity"],
                                  "from_state": t["from_state"], "to_state": t["to_state"], "labels": t["labels"],
                                  "value": t["value"], "threshold": t["threshold"], "fingerprint": t["fingerprint"],
                                  "annotations": t.get("annotations") or {}})
        for n in tick.notifications:
            result.notifications.append({"time": now, "receiver": n["receiver"], "status": n["status"],
                                         "group_key": n["group_key"], "alerts": len(n["message"]["alerts"])})
        now += step
    return result


def dumps(result: Backtest) -> str:
    return json.dumps(result.to_json(), indent=2, default=str)


class HistoryReplay:
    """A backtest kept as alert history, replayed a chunk at a time (one state carried across
    chunks): each `step` replays and writes the next chunk, so a server can interleave it with other
    work and stop between chunks."""

    def __init__(self, store: Store, config: AlertsConfig, since: datetime, until: datetime,
                 step: timedelta = timedelta(minutes=1), chunk: timedelta | None = None) -> None:
        self.store, self.config, self.since, self.until, self.step_size = store, config, since, until, step
        self.chunk = chunk or (until - since)
        self.backend = MemoryBackend()
        self.result = Backtest.of(config, since, until, step)
        self.at = since
        self._written = 0

    @property
    def done(self) -> bool:
        return self.at >= self.until

    def step(self) -> datetime:
        """Replay and write the next chunk; returns how far the replay got."""
        lo, hi = self.at, min(self.at + self.chunk, self.until)
        part = run_backtest(self.store, self.config, lo, hi, self.step_size, backend=self.backend)
        self.result.events += part.events
        self.result.notifications += part.notifications
        new, self._written = self.backend.history[self._written:], len(self.backend.history)
        states = []
        for state in self.backend.snapshot.states.values():
            row = {**state, "labels": json.dumps(state["labels"], sort_keys=True),
                   "annotations": json.dumps(state["annotations"], sort_keys=True, default=str)}
            if row["state"] == "resolved":
                row["resolve_flushed"] = True
            states.append(row)
        self.store.writer.write(fn=lambda con: alerting.replace_history(con, lo, hi, new, states))
        self.at = hi
        return hi


def backfill_history(store: Store, config: AlertsConfig, since: datetime, until: datetime,
                     step: timedelta = timedelta(minutes=1), chunk: timedelta | None = None,
                     progress: Callable[[datetime], None] | None = None) -> Backtest:
    """Run a backtest over the store and keep its result as alert history (for a freshly loaded
    database, e.g. the demo): the window's history is replaced; alerts still pending or firing at
    `until` become the current state (the evaluator picks them up; already-resolved ones are not
    announced). With `chunk`, each chunk is written as soon as it is replayed and `progress` is told
    how far the replay got."""
    replay = HistoryReplay(store, config, since, until, step, chunk)
    while not replay.done:
        at = replay.step()
        if progress is not None:
            progress(at)
    return replay.result
