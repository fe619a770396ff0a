"""Plugs the analysis stage into aiwatch: scheduled jobs, read queries and `aiwatch analyze`."""
from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from typing import Any

import store.analytics  # noqa: F401 - registers the analysis read queries
from aiwatch.cli import command
from aiwatch.config import Settings
from aiwatch.jobs import Job, job_factory
from analysis import registry, runner
from analysis.settings import AnalysisSettings
from core.durations import BadTime, parse_duration


@job_factory
def analysis_jobs(settings: Settings) -> list[Job]:
    analysis_settings = AnalysisSettings.load(settings.data_dir)
    jobs = []
    for cadence, interval in registry.CADENCE_SECONDS.items():
        built: list = []   # (store, analyzers): kept across ticks so analyzers keep their reference caches

        def run(ctx: Any, cadence: str = cadence, built: list = built) -> dict[str, int]:
            if not built or built[0] is not ctx.store:
                built[:] = [ctx.store, registry.build(ctx.store, analysis_settings, cadence=cadence)]
            return runner.run_all_incremental(ctx.store, built[1], analysis_settings,
                                              health=getattr(ctx, "analysis_health", None))
        jobs.append(Job(f"analysis-{cadence}", interval, run,
                        f"Analyzers run every {interval} s: " + ", ".join(
                            n for n, (_, c) in registry.ANALYZERS.items() if c == cadence)))
    return jobs


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
    p.add_argument("--evidently-report", metavar="ROUTE",
                   help="also save Evidently's full drift report (HTML) for this route over --since/--until")


@command("analyze", _analyze_args)
def analyze_command(args: argparse.Namespace, settings: Settings) -> int:
    """Backfill the analyzers over a time range (with a progress bar)."""
    from tqdm import tqdm

    from store.db import Store
    from store.queries import parse_time

    if args.data_dir:
        settings = settings.replace(data_dir=args.data_dir)
    analysis_settings = AnalysisSettings.load(settings.data_dir)
    since, until = parse_time(args.since), parse_time(args.until)
    if not settings.db_path.exists():  # never create an empty database by mistake
        print(f"aiwatch analyze: no aiwatch database in {settings.data_dir} ({settings.db_path.name} is missing); "
              "pass --data-dir with the folder `aiwatch serve` uses", file=sys.stderr)
        return 1
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
