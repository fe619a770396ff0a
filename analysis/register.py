"""Plugs the analysis stage into aiwatch: scheduled jobs, read queries and `aiwatch analyze`."""
from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from datetime import timedelta
from typing import Any

from aiwatch.cli import command
from aiwatch.config import ConfigError, Settings
from aiwatch.jobs import Job
from analysis import registry, runner
from analysis.settings import AnalysisSettings
from core.clock import utcnow
from core.durations import BadTime, parse_duration
from core.grains import floor_time
from store import analytics as store_analytics
from store.base import Store as StoreProtocol

BACKFILL_STATE = "analysis.backfill"   # job_state: 'pending' while it runs, then 'done'
_BACKFILL_LOG = "aiwatch.analysis.backfill"


def backfill_waiting(store: Any, window: str) -> bool:
    """True while the server's start-up backfill (`window`: [analysis] backfill) has not finished:
    what reads the analyzers' history as a whole (the alert history replay) waits for it."""
    return bool(window.strip()) and store_analytics.job_state(store, BACKFILL_STATE) != "done"


class StartupBackfill:
    """[analysis] backfill (e.g. 3d, set by the demo): a store whose analyzers have never run
    gets that much history analyzed by the server, a day per step with progress logged, so the
    server serves while it works (`aiwatch analyze` needs it stopped). Its first job run starts a
    thread (later runs do nothing: no "skipped" job runs while it works); stop() ends it after the
    step in progress. The incremental jobs wait for it: they would look back only
    initial_lookback_s, and then go on from the watermarks it leaves."""

    def __init__(self, settings: AnalysisSettings, window: str) -> None:
        self.settings = settings
        try:
            self.window = parse_duration(window, numbers=False)
        except BadTime as exc:
            raise ConfigError(f"[analysis] backfill: {exc}") from None
        self.done = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def run(self, ctx: Any) -> None:
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._work, args=(ctx.store,), name="analysis-backfill",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(600)

    def _work(self, store: Any) -> None:
        log = logging.getLogger(_BACKFILL_LOG)
        log.setLevel(logging.INFO)   # progress shows even when the server logs warnings only
        try:
            analyzers = registry.build(store, self.settings)
            state = store_analytics.job_state(store, BACKFILL_STATE)
            if state == "done" or (state is None and any(runner.load_watermark(store, a) for a in analyzers)):
                self._finish(store)   # analyzed before (by `aiwatch analyze` or an earlier start)
                return
            store.writer.write(fn=lambda con: store_analytics.set_job_state(con, BACKFILL_STATE, "pending"))
            until = floor_time(utcnow(), "1m")
            steps = runner._chunks(until - self.window, until, timedelta(days=1))
            log.info("analyzing the last %s of stored data in %d steps; the analyzers' pages fill as it goes",
                     _format(self.window), len(steps))
            for i, (lo, hi) in enumerate(steps, 1):
                if self._stop.is_set():
                    return   # 'pending' stays: the next start does it again
                started = time.perf_counter()
                rows = runner.backfill(store, analyzers, lo, hi, timedelta(days=1), workers=2)
                log.info("analyzer backfill: %d/%d steps, %d rows (%.1f s)%s", i, len(steps), rows,
                         time.perf_counter() - started, "; scheduled analysis starts now" if i == len(steps) else "")
            self._finish(store)
        except Exception:  # noqa: BLE001 - the scheduled analyzers take over from what was done
            log.exception("analyzer backfill failed; the scheduled analyzers go on from their watermarks")
            try:
                self._finish(store)   # so nothing waits for it for good
            except Exception:  # noqa: BLE001 - the writer is broken: /readyz says so
                self.done = True

    def _finish(self, store: Any) -> None:
        store.writer.write(fn=lambda con: store_analytics.set_job_state(con, BACKFILL_STATE, "done"))
        self.done = True


def _format(span: timedelta) -> str:
    return f"{span.total_seconds() / 86400:g}d" if span >= timedelta(days=1) else f"{span.total_seconds() / 3600:g}h"


def analysis_jobs(settings: Settings) -> list[Job]:
    analysis_settings = settings.analysis
    jobs = []
    window = analysis_settings.backfill
    backfill = StartupBackfill(analysis_settings, window) if window else None
    if backfill:   # every 5 s, not 1: a run only starts the thread, but a busy process would log skipped runs
        jobs.append(Job("analysis-backfill", 5, backfill.run,
                        f"Start-up backfill of the analyzers over {window} ([analysis] backfill).", stop=backfill.stop))
    for cadence, interval in registry.CADENCE_SECONDS.items():
        built: list = []   # (store, analyzers): kept across ticks so analyzers keep their reference caches

        def run(ctx: Any, cadence: str = cadence, built: list = built) -> dict[str, int]:
            if backfill and not backfill.done:
                return {}
            if not built or built[0] is not ctx.store:
                built[:] = [ctx.store, registry.build(ctx.store, analysis_settings, cadence=cadence)]
            return runner.run_all_incremental(ctx.store, built[1], analysis_settings,
                                              health=getattr(ctx, "analysis_health", None))
        jobs.append(Job(f"analysis-{cadence}", interval, run,
                        f"Analyzers run every {interval} s: " + ", ".join(registry.ANALYZERS.named(cadence))))
    return jobs


JOB_FACTORIES = (analysis_jobs,)   # settings -> this stage's jobs (aiwatch.stages.stage_jobs)


def _duration(text: str) -> timedelta:
    try:
        chunk = parse_duration(text, numbers=False)
    except BadTime as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if chunk < timedelta(minutes=1):
        raise argparse.ArgumentTypeError(f"{text!r}: give at least 1m (e.g. 6h)")
    return chunk


def _analyze_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", default="-1d", help="start (ISO 8601, unix seconds or relative like -7d; default -1d)")
    p.add_argument("--until", default="now", help="end (default now)")
    p.add_argument("--analyzers", help=f"comma-separated subset of: {', '.join(registry.ANALYZERS)}")
    p.add_argument("--chunk", type=_duration, default=timedelta(days=1),
                   help="window per step (default 1d; 6h steps cost the minute analyzers 1.6x the time)")
    p.add_argument("--jobs", type=int, default=2, help="analyzers run at once (default 2)")
    p.add_argument("--data-dir", help="database folder (default from settings); the server must not be running")
    p.add_argument("--store", help="duckdb (default), clickhouse://user:password@host:8123/DB or chdb:///path?database=DB")
    p.add_argument("--evidently-report", metavar="ROUTE",
                   help="also save Evidently's full drift report (HTML) for this route over --since/--until")


@command("analyze", _analyze_args)
def analyze_command(args: argparse.Namespace, settings: Settings) -> int:
    """Backfill the analyzers over a time range (with a progress bar)."""
    from tqdm import tqdm

    from store.db import Store
    from store.queries import parse_time

    if args.data_dir or args.store:   # loaded again: <data_dir>/analysis.toml may hold its [analysis] settings
        settings = Settings.load(args.config, data_dir=args.data_dir, store=args.store)
    analysis_settings = settings.analysis
    since, until = parse_time(args.since), parse_time(args.until)
    if settings.store != "duckdb":   # ClickHouse: the server may keep running beside this
        from aiwatch.storage import open_store

        db: StoreProtocol = open_store(settings)
    elif not settings.db_path.exists():  # never create an empty database by mistake
        print(f"aiwatch analyze: no aiwatch database in {settings.data_dir} ({settings.db_path.name} is missing); "
              "pass --data-dir with the folder `aiwatch serve` uses", file=sys.stderr)
        return 1
    else:
        try:
            db = Store(settings.db_path)
        except Exception as exc:  # noqa: BLE001 - DuckDB allows one process: say why
            print(f"aiwatch analyze: cannot open {settings.db_path}: {exc}\n"
                  "(the server owns the database while it runs; stop it first)")
            return 1
    try:
        names = [n.strip() for n in args.analyzers.split(",")] if args.analyzers else None
        analyzers = registry.build(db, analysis_settings, names)
        steps = len(analyzers) * len(runner._chunks(since, until, args.chunk))
        started = time.perf_counter()
        with tqdm(total=steps, unit="window", desc="analyze") as bar:
            rows = runner.backfill(db, analyzers, since, until, args.chunk, progress=bar.update,
                                   workers=args.jobs)
        print(f"{rows} rows written by {len(analyzers)} analyzers in {time.perf_counter() - started:.1f} s")
        if args.evidently_report:
            from analysis.evidently_report import save_drift_report

            path = save_drift_report(db, analysis_settings, args.evidently_report, since, until,
                                     settings.data_dir)
            print(f"Evidently report: {path}")
    finally:
        db.close()
    return 0
