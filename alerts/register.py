"""The alerts stage's seams: scheduled jobs (evaluate, deliver), named read queries and CLI commands.

Settings of the stage: the [alerts] section of aiwatch/config.py (rules file, enabled, intervals,
replay). The receivers' URLs and keys are `${VAR}`s of the rules file (AIWATCH_SLACK_WEBHOOK_URL,
AIWATCH_PAGERDUTY_URL, ... in the shipped one), read from the environment when it loads, and again
when the server reloads it (SIGHUP: `RELOADERS`).
"""
from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiwatch.cli import command
from aiwatch.config import ConfigError, Settings
from aiwatch.jobs import Job
from alerts.rules import RulesError, load_config
from core.durations import parse_duration
from store import alerting
from store.base import Store
from store.queries import END, LIMIT, SERVICE, START, BadParameter, NamedQuery, Param, parse_time

if TYPE_CHECKING:   # loaded on first use: `aiwatch alerts check` stays light
    from datetime import datetime

    import pyarrow as pa

    from alerts.delivery import DeliveryService
    from alerts.engine import AlertEngine


class RulesInForce:
    """The rules file this process evaluates: read at start (an invalid file stops the server there)
    and again on reload. The evaluator and the `alert_rules` query both read `config` here, so the
    dashboard shows the rules in force. A reload that fails keeps the rules in force and says why."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.config = load_config(path or None)
        self.error = ""

    def reload(self) -> bool:
        try:
            config = load_config(self.path or None)
        except (RulesError, OSError) as exc:
            self.error = f"{self.path or '(shipped)'}: {exc}"
            logging.getLogger(__name__).error("alert rules %s not reloaded, the rules in force stay: %s",
                                              self.path or "(shipped)", exc)
            return False
        self.config, self.error = config, ""
        logging.getLogger(__name__).warning("alert rules %s reloaded: %d rules", self.path or "(shipped)",
                                            len(config.rules))
        return True


_IN_FORCE: dict[str, RulesInForce] = {}
_IN_FORCE_LOCK = threading.Lock()


def rules_in_force(path: str) -> RulesInForce:
    """The process's rules of this file (one reader of it per process, shared)."""
    with _IN_FORCE_LOCK:
        if path not in _IN_FORCE:
            _IN_FORCE[path] = RulesInForce(path)
        return _IN_FORCE[path]


def reload_rules() -> list[tuple[str, bool, str]]:
    """Re-read every rules file in force: (what, reloaded, why not) each; `what` is a kind, never a
    path (it labels a metric that may be read without a token), `why not` names the file."""
    with _IN_FORCE_LOCK:
        held = list(_IN_FORCE.values())
    return [("alert_rules", r.reload(), r.error) for r in held]


RELOADERS = (reload_rules,)   # what a server's reload (SIGHUP) runs (aiwatch.stages.stage_reload)


class AlertsRuntime:
    """The evaluator and the delivery service of one server process, created on their first run."""

    def __init__(self, deliver_interval_s: float = 2.0, replay: str = "", rules: str = "", backfill: str = "") -> None:
        self.rules = rules_in_force(rules)
        self.config = self.rules.config
        self.deliver_interval_s = deliver_interval_s
        self.replay_window = replay
        self.backfill_window = backfill    # [analysis] backfill: the replay waits for it
        self._lock = threading.Lock()
        self.engine: AlertEngine | None = None
        self.delivery: DeliveryService | None = None
        self._stopped = False
        self.replay: Any = None      # [alerts] replay: history replay before live evaluation

    def evaluate(self, ctx: Any) -> dict[str, int]:
        from alerts.engine import AlertEngine, StoreBackend

        if self.engine is None:   # only this job evaluates: the replay needs no lock (delivery keeps going)
            if self.replay is None:
                from analysis.register import backfill_waiting

                if backfill_waiting(ctx.store, self.backfill_window):   # the replay reads the analyzers' output: wait for all of it
                    return {"transitions": 0, "notifications": 0}
                self.replay = _history_replay(ctx.store, self.config, self.replay_window)
            if self.replay and not self.replay.done:
                _replay_for(self.replay, seconds=10)   # bounded runs: the server can stop between them
                return {"transitions": 0, "notifications": 0}
        with self._lock:
            if self.rules.config is not self.config:
                self._use(self.rules.config)
            if self.engine is None:
                self.engine = AlertEngine(self.config, StoreBackend(ctx.store), ctx.store)
        result = self.engine.tick()
        if result.notifications and self.delivery is not None:
            self.delivery.wake()
        return {"transitions": len(result.transitions), "notifications": len(result.notifications)}

    def _use(self, config: Any) -> None:
        """Reloaded rules, from the next evaluation on (under the lock). Alert state is kept by
        fingerprint: an alert of a rule still there goes on, one of a removed rule resolves."""
        self.config = config
        if self.engine is not None:
            self.engine.use(config)
        if self.delivery is not None:
            self.delivery.deliverer.config = config   # receivers and routes too

    def deliver(self, ctx: Any) -> None:
        """Start the delivery service once (it then runs on its own); later runs only nudge it."""
        from alerts.delivery import Deliverer, DeliveryService

        with self._lock:
            if self._stopped:
                return
            if self.delivery is None:
                self.delivery = DeliveryService(Deliverer(ctx.store, self.config,
                                                          fence=getattr(ctx, "holds_lease", None)),
                                                self.deliver_interval_s)
                self.delivery.start()
                return
        self.delivery.wake()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            delivery, self.delivery = self.delivery, None
        if delivery is not None:
            delivery.stop()


_REPLAY_LOG = "aiwatch.alerts.replay"


def _history_replay(store: Store, config: Any, window: str = "") -> Any:
    """`window` ([alerts] replay, e.g. 3d, set by the demo): a store with analyzer output and no alert
    history first gets the rules replayed over that much of it into the history (alerts.backtest
    HistoryReplay), about 10 s of it per evaluation run with progress logged; then live evaluation starts.
    False when there is nothing to replay."""
    import logging

    from alerts.backtest import HistoryReplay
    from alerts.engine import utcnow

    if not window or not alerting.analysis_table_exists(store) or \
            store.scalar("SELECT count(*) FROM alert_history") > 0:
        return False
    log = logging.getLogger(_REPLAY_LOG)
    log.setLevel(logging.INFO)   # progress shows even when the server logs warnings only
    log.info("replaying the alert rules over the last %s into the alert history; live alerting starts after", window)
    until = utcnow()
    return HistoryReplay(store, config, until - parse_duration(window), until, timedelta(minutes=2),
                         chunk=timedelta(hours=1))


def _replay_for(replay: Any, seconds: float) -> None:
    """Replay chunks for about `seconds`, then log how far it got."""
    import logging
    import time

    deadline = time.monotonic() + seconds
    while not replay.done and time.monotonic() < deadline:
        at = replay.step()
    share = (at - replay.since) / (replay.until - replay.since)
    fired = sum(e["to_state"] == "firing" for e in replay.result.events)
    logging.getLogger(_REPLAY_LOG).info("alert history replay: %3.0f%%, %d alerts fired so far%s", 100 * share,
                                        fired, "; live alerting starts now" if replay.done else "")


def alert_jobs(settings: Settings) -> list[Job]:
    cfg = settings.alerts
    if not cfg.enabled:
        return []
    deliver_every = cfg.deliver_interval_s
    try:
        runtime = AlertsRuntime(deliver_every, cfg.replay, cfg.rules, settings.analysis.backfill)
    except RulesError as exc:
        raise ConfigError(f"alert rules: {exc}") from None
    return [
        Job("alerts-evaluate", cfg.eval_interval_s, runtime.evaluate,
            "Evaluate alert rules, group, silence, inhibit and decide notifications (into the outbox)."),
        Job("alerts-deliver", deliver_every, runtime.deliver,
            "Deliver the notification outbox to PagerDuty, Slack, webhooks and the weekly review: one worker "
            "per receiver, a deadline per send.", stop=runtime.stop),
    ]


JOB_FACTORIES = (alert_jobs,)   # settings -> this stage's jobs (aiwatch.stages.stage_jobs)


def _utcnow():
    from alerts.engine import utcnow

    return utcnow()


# --- named read queries -----------------------------------------------------------------------

_TAGS = ("alerts",)
# the alerts stage's read queries; the server adds them (aiwatch.stages.stage_queries)
QUERIES: list[NamedQuery] = []
QUERIES.append(NamedQuery(
    "alerts", "Alerts that are pending, firing or recently resolved (firing first).",
    (Param("state", description="pending, firing or resolved.", choices=("pending", "firing", "resolved")),
     Param("severity", description="P1, P2 or P3.", choices=("P1", "P2", "P3")), SERVICE, LIMIT),
    sql=alerting.ALERTS_SQL, clickhouse_sql=alerting.ALERTS_SQL_CLICKHOUSE, tags=_TAGS))
QUERIES.append(NamedQuery(
    "alert_history", "Alert state transitions (inactive/pending/firing/resolved) in a window, newest first.",
    (Param("start", "time", "Window start.", "-1d"), END, Param("rule", description="Rule name."),
     Param("severity", choices=("P1", "P2", "P3")), SERVICE, LIMIT),
    sql=alerting.ALERT_HISTORY_SQL, clickhouse_sql=alerting.ALERT_HISTORY_SQL_CLICKHOUSE,
    tags=_TAGS))
QUERIES.append(NamedQuery(
    "silences", "Silences (matchers, window, author, comment); expired ones on request.",
    (Param("include_expired", "boolean", "Also list expired silences.", "false"), LIMIT),
    run=lambda store, params: store.query(alerting.SILENCES_SQL, {**params, "now": _utcnow()}), tags=_TAGS))
QUERIES.append(NamedQuery(
    "notifications", "Delivery attempts to PagerDuty, Slack, webhooks and the review, with failures.",
    (Param("start", "time", "Window start.", "-1d"), END, Param("receiver", description="Receiver name."),
     Param("outcome", description="delivered, retry, failed or dead.",
           choices=("delivered", "retry", "failed", "dead")), LIMIT),
    sql=alerting.NOTIFICATIONS_SQL, tags=_TAGS))
QUERIES.append(NamedQuery(
    "alert_outbox", "Notifications decided and their delivery state (pending, delivered, failed, dead).",
    (Param("state", choices=("pending", "delivered", "failed", "dead")), LIMIT),
    sql=alerting.OUTBOX_SQL, tags=_TAGS))
QUERIES.append(NamedQuery(
    "alert_review", "P3 alerts recorded for the weekly review.",
    (Param("start", "time", "Window start.", "-7d"), END, LIMIT), sql=alerting.REVIEW_SQL, tags=_TAGS))
QUERIES.append(NamedQuery(
    "alert_source_metrics", "Analyzer rows in a window, as the alert backtest replays them (use format=arrow).",
    (START, END, Param("limit", "integer", "Most rows returned.", "5000000", maximum=50_000_000)),
    sql="SELECT * FROM analysis_metrics WHERE time >= $start AND time < $end LIMIT $limit", tags=_TAGS))


class SourceError(RuntimeError):
    """The server could not give the rows a backtest needs (its answer names why)."""


SOURCE_LIMIT = 5_000_000    # rows per answer: alert_source_metrics' default limit


def source_rows(server: str, headers: dict[str, str], start: datetime, end: datetime,
                min_slice: timedelta = timedelta(minutes=1)) -> pa.Table:
    """Every analyzer row of [start, end) through the read API. An answer the server cut (its
    `max_response_bytes`, X-Truncated, or the row limit) is asked again in two halves of its window,
    so a backtest never replays part of the rows as if they were all (a 3-day demo is ~100 MB)."""
    import httpx
    import pyarrow as pa

    url = f"{server.rstrip('/')}/v1/query/alert_source_metrics"
    parts: list[pa.Table] = []
    pending = [(start, end)]
    while pending:
        lo, hi = pending.pop(0)
        try:
            r = httpx.get(url, headers=headers, timeout=300, params={
                "start": lo.isoformat(), "end": hi.isoformat(), "format": "arrow", "limit": str(SOURCE_LIMIT)})
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot read {url}: {exc}") from exc
        if r.status_code != 200:
            raise SourceError(f"server answered {r.status_code}: {r.text[:300]}")
        table = pa.ipc.open_stream(r.content).read_all()
        if r.headers.get("x-truncated") == "true" or table.num_rows >= SOURCE_LIMIT:
            if hi - lo <= min_slice:
                raise SourceError(f"the server's rows for {lo:%Y-%m-%d %H:%M:%S} .. {hi:%H:%M:%S} do not fit in one "
                                  "answer (its max_response_bytes); raise it, or backtest the database with --data-dir")
            mid = lo + (hi - lo) / 2
            pending[:0] = [(lo, mid), (mid, hi)]
            continue
        parts.append(table)
    parts = [t for t in parts if t.num_rows] or parts[:1]
    return pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]


def rules_query(settings: Settings | None) -> list[NamedQuery]:
    """`alert_rules`: the rules this server evaluates ([alerts] rules, else the shipped file; none
    when alerting is off), read once here, as alert_jobs reads them, so the dashboard draws the
    thresholds in force rather than the shipped ones."""
    cfg = settings.alerts if settings is not None else None
    try:
        rules = None if cfg is not None and not cfg.enabled else rules_in_force(cfg and cfg.rules or "")
    except RulesError as exc:
        raise ConfigError(f"alert rules: {exc}") from None
    return [NamedQuery(
        "alert_rules", "The alert rules this server evaluates: severity, scope, condition in words, the page "
        "that charts the metric, windows and test thresholds (no receivers).",
        (Param("severity", description="P1, P2 or P3.", choices=("P1", "P2", "P3")),),
        run=lambda _store, params: _rules_of(rules and rules.config, params["severity"]), tags=_TAGS)]


def _rules_of(config: Any, severity: str | None) -> Any:
    """The table is built per request (a few dozen rows): pyarrow would load pandas at start-up."""
    import pyarrow.compute as pc

    from alerts.rule_view import rules_table

    table = rules_table(config)
    return table.filter(pc.equal(table["severity"], severity)) if severity else table


QUERY_FACTORIES = (rules_query,)   # settings -> this stage's queries that depend on them (stage_queries)


# --- CLI --------------------------------------------------------------------------------------

def _alerts_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="alerts_command", required=True)
    check = sub.add_parser("check", help="Validate a rules file.")
    check.add_argument("rules", help="rules file (YAML)")
    test = sub.add_parser("test", help="Send a test notification to one receiver.")
    test.add_argument("--receiver", required=True, help="receiver name (slack, pagerduty, webhook, ...)")
    test.add_argument("--rules", help="rules file (default: the [alerts] rules setting, else the shipped one)")
    bt = sub.add_parser("backtest", help="Replay stored analyzer outputs through the rules; notifies nobody.")
    bt.add_argument("--since", required=True, help="start (ISO 8601, unix seconds or relative like -1d)")
    bt.add_argument("--until", default="now", help="end (default now)")
    bt.add_argument("--rules", help="rules file (default: the [alerts] rules setting, else the shipped one)")
    bt.add_argument("--step", default="1m", help="simulated evaluation interval (default 1m)")
    bt.add_argument("--json", action="store_true",
                    help="print JSON (events, notifications, the per-rule report and the fired alerts in the "
                         "Alertmanager v2 shape) instead of the timeline")
    bt.add_argument("--clean", action="append", default=[], metavar="START/END",
                    help="a period where nothing should fire (repeatable): firings in it are counted per rule")
    bt.add_argument("--incident", action="append", default=[], metavar="START/END/SEVERITY",
                    help="an incident and the severity it should raise (repeatable): time to detect is reported")
    bt.add_argument("--data-dir", help="read this database directly (the server must not be running)")
    bt.add_argument("--server", help="read through this server's API instead (default: the file)")
    bf = sub.add_parser("backfill", help="Backtest a stopped server's database and keep the result as alert history.")
    bf.add_argument("--since", default="-3d", help="start (default -3d)")
    bf.add_argument("--until", default="now", help="end (default now)")
    bf.add_argument("--rules", help="rules file (default: the [alerts] rules setting, else the shipped one)")
    bf.add_argument("--step", default="1m", help="simulated evaluation interval (default 1m)")
    bf.add_argument("--data-dir", help="database folder (default: data_dir setting); the server must be stopped")


@command("alerts", _alerts_args)
def alerts_command(args: argparse.Namespace, settings: Settings) -> int:
    """Alert rules: check a rules file, send a test notification, backtest over stored data."""
    if args.alerts_command == "check":
        return _check(args.rules)
    try:
        config = load_config(args.rules or settings.alerts.rules or None)
    except RulesError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.alerts_command == "test":
        from alerts.delivery import send_test

        result = send_test(config, args.receiver)
        if result.ok:
            print(f"{args.receiver}: delivered" + (f" (HTTP {result.http_status})" if result.http_status else ""))
            return 0
        print(f"{args.receiver}: failed: " + (f"HTTP {result.http_status} " if result.http_status else "")
              + (result.error or ""), file=sys.stderr)
        return 1
    if args.alerts_command == "backfill":
        return _backfill(args, settings, config)
    return _backtest(args, settings, config)


def _db_path(args: argparse.Namespace, settings: Settings) -> Path:
    """The database of --data-dir, else of the data_dir setting."""
    return (settings.replace(data_dir=args.data_dir) if args.data_dir else settings).db_path


def _backfill(args: argparse.Namespace, settings: Settings, config: Any) -> int:
    from alerts.backtest import backfill_history
    from store.db import Store

    since, until = parse_time(args.since), parse_time(args.until)
    path = _db_path(args, settings)
    if not path.exists():
        print(f"no database at {path}", file=sys.stderr)
        return 1
    store = Store(path)
    try:
        if not alerting.analysis_table_exists(store):
            print("no analyzer output (analysis_metrics): run `aiwatch analyze` first", file=sys.stderr)
            return 1
        result = backfill_history(store, config, since, until, parse_duration(args.step))
    finally:
        store.close()
    fired = sum(1 for e in result.events if e["to_state"] == "firing")
    print(f"alert history {since:%Y-%m-%d %H:%M} .. {until:%Y-%m-%d %H:%M}: {len(result.events)} transitions, "
          f"{fired} alerts fired")
    return 0


def _check(path: str) -> int:
    try:
        config = load_config(path)
    except RulesError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{path}: {len(exc.problems)} problem(s)", file=sys.stderr)
        return 1
    by_sev = {s: sum(r.severity == s for r in config.rules) for s in ("P1", "P2", "P3")}
    from alerts.notifiers import describe_destination  # secrets masked: the output lands in CI logs
    receivers = ", ".join(f"{r.name} ({r.type}{f' {describe_destination(r)}' if r.url else ''}"
                          f"{'' if r.configured else ', not configured'})" for r in config.receivers.values())
    print(f"{path}: OK: {len(config.rules)} rules ({by_sev['P1']} P1, {by_sev['P2']} P2, {by_sev['P3']} P3), "
          f"{len(config.routes)} routes, {len(config.inhibitions)} inhibit rules; receivers: {receivers}")
    return 0


def _backtest(args: argparse.Namespace, settings: Settings, config: Any) -> int:
    from alerts.backtest import Mark, alertmanager_alerts, report_table, rule_report, run_backtest

    since, until = parse_time(args.since), parse_time(args.until)
    step = parse_duration(args.step)
    try:
        clean = [Mark.parse(m) for m in args.clean]
        incidents = [Mark.parse(m, incident=True) for m in args.incident]
    except (ValueError, BadParameter) as exc:
        print(f"aiwatch alerts backtest: {exc}", file=sys.stderr)
        return 2
    if until <= since:
        print("--until must be after --since", file=sys.stderr)
        return 2
    lookback = config.max_lookback
    if args.server:
        headers = {"Authorization": f"Bearer {settings.api_token}"} if settings.api_token else {}
        try:
            rows = source_rows(args.server, headers, since - lookback, until + timedelta(hours=1))
        except SourceError as exc:
            print(f"aiwatch alerts backtest: {exc}", file=sys.stderr)
            return 1
        db = alerting.memory_copy(rows)
    else:
        path = _db_path(args, settings)
        if not path.exists():
            print(f"no database at {path}", file=sys.stderr)
            return 1
        try:
            db = alerting.open_read_only(str(path))
        except Exception as exc:  # noqa: BLE001 - most often: the server holds the file
            print(f"cannot open {path} ({exc}); is the server running? then use --server {settings.server_url}",
                  file=sys.stderr)
            return 1
    if not alerting.analysis_table_exists(db):
        print("no analyzer output (analysis_metrics) in this database", file=sys.stderr)
        return 1
    result = run_backtest(db, config, since, until, step)
    report = rule_report(result, config, clean, incidents)
    if args.json:
        print(json.dumps({**result.to_json(), "report": report, "alerts": alertmanager_alerts(result)}, indent=2,
                         default=str))
    else:
        print(result.timeline())
        print(report_table(report))
    return 0


def _silence_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="silence_command", required=True)
    add = sub.add_parser("add", help="Silence alerts matching label matchers for a while.")
    add.add_argument("matchers", nargs="+", help="name=value, name!=value, name=~regex, name!~regex")
    add.add_argument("--duration", default="2h", help="how long (default 2h)")
    add.add_argument("--start", help="start (default now)")
    add.add_argument("--end", help="end (instead of --duration)")
    add.add_argument("--author", default=None, help="who (default: the current user)")
    add.add_argument("--comment", required=True, help="why")
    lst = sub.add_parser("list", help="List silences.")
    lst.add_argument("--all", action="store_true", help="include expired silences")
    exp = sub.add_parser("expire", help="End a silence now.")
    exp.add_argument("id", help="silence id (or a unique prefix)")
    for sp in (add, lst, exp):
        sp.add_argument("--server", help="server URL (default: server_url setting)")
        sp.add_argument("--data-dir", help="work on this database directly (the server must not be running)")


@command("silence", _silence_args)
def silence_command(args: argparse.Namespace, settings: Settings) -> int:
    """Silences: add, list and expire (through the server, or directly on a stopped server's database)."""
    if args.data_dir:
        return _silence_direct(args, settings)
    return _silence_http(args, settings)


def _silence_request(args: argparse.Namespace) -> dict[str, Any]:
    starts = parse_time(args.start) if args.start else parse_time("now")
    ends = parse_time(args.end) if args.end else starts + parse_duration(args.duration)
    return {"matchers": args.matchers, "starts_at": starts.isoformat(), "ends_at": ends.isoformat(),
            "created_by": args.author or getpass.getuser(), "comment": args.comment}


def _print_silences(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("no silences")
    for r in rows:
        matchers = r["matchers"] if isinstance(r["matchers"], list) else json.loads(r["matchers"])
        text = ",".join(f"{m['name']}{m['op']}{m['value']}" for m in matchers)
        print(f"{r['id'][:12]}  {r.get('status', ''):8} {str(r['starts_at'])[:19]} -> {str(r['ends_at'])[:19]}  "
              f"{text}  by {r['created_by']}: {r['comment']}")


def _silence_direct(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.silences import SilenceError, add_silence, expire_silence
    from store.db import Store

    store = Store(_db_path(args, settings))
    try:
        if args.silence_command == "add":
            req = _silence_request(args)
            try:
                sid = add_silence(store, req["matchers"], starts_at=parse_time(req["starts_at"]),
                                  ends_at=parse_time(req["ends_at"]), created_by=req["created_by"],
                                  comment=req["comment"])
            except SilenceError as exc:
                print(exc, file=sys.stderr)
                return 1
            print(sid)
            return 0
        if args.silence_command == "expire":
            if not expire_silence(store, args.id):
                print(f"no active silence with id {args.id!r}", file=sys.stderr)
                return 1
            print(f"expired {args.id}")
            return 0
        rows = store.query(alerting.SILENCES_SQL, {"include_expired": args.all, "limit": 1000,
                                                   "now": _utcnow()}).to_pylist()
        _print_silences(rows)
        return 0
    finally:
        store.close()


def _silence_http(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    base = (args.server or settings.server_url).rstrip("/")
    headers = {"Authorization": f"Bearer {settings.api_token}"} if settings.api_token else {}
    try:
        if args.silence_command == "add":
            r = httpx.post(f"{base}/v1/alerts/silences", json=_silence_request(args), headers=headers, timeout=30)
        elif args.silence_command == "expire":
            r = httpx.post(f"{base}/v1/alerts/silences/{args.id}/expire", headers=headers, timeout=30)
        else:
            r = httpx.get(f"{base}/v1/query/silences", params={"include_expired": str(args.all).lower()},
                          headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        print(f"cannot reach the server at {base}: {exc} (use --data-dir when it is stopped)", file=sys.stderr)
        return 1
    if r.status_code >= 300:
        print(f"server answered {r.status_code}: {r.text[:300]}", file=sys.stderr)
        return 1
    body = r.json()
    if args.silence_command == "add":
        print(body["id"])
    elif args.silence_command == "expire":
        print(f"expired {args.id}")
    else:
        _print_silences(body["data"])
    return 0
