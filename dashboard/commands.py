"""`aiwatch dashboard` and `aiwatch export weekly`, plus the scheduled weekly export job."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

import store.incidents  # noqa: F401 - registers the incident read queries
from aiwatch.cli import command
from aiwatch.config import Settings
from aiwatch.jobs import Job

APP = Path(__file__).resolve().parent / "app.py"
log = logging.getLogger("aiwatch.dashboard")


def streamlit_command(port: int, address: str = "127.0.0.1") -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
            "--server.address", address, "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--theme.base", "light",
            "--client.toolbarMode", "viewer"]


def _dashboard_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", help="aiwatch server URL (default: the server_url setting)")
    p.add_argument("--port", type=int, help="dashboard port (default: the dashboard_port setting, 8501)")


@command("dashboard", _dashboard_args)
def dashboard(args: argparse.Namespace, settings: Settings) -> int:
    """Start the Streamlit dashboard against a running aiwatch server."""
    server = (args.server or settings.server_url).rstrip("/")
    port = args.port or settings.dashboard_port
    env = {**os.environ, "AIWATCH_SERVER_URL": server}
    print(f"aiwatch dashboard on http://127.0.0.1:{port} (reading {server})", flush=True)
    cmd = streamlit_command(port)
    # Become Streamlit (no child left behind when a supervisor stops this process).
    os.execve(cmd[0], cmd, env)


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("report", choices=["weekly"], help="which report")
    p.add_argument("--week", help="ISO week such as 2026-W47 (default: the last complete week with data)")
    p.add_argument("--format", default="html,md,csv,parquet", help="comma-separated: html, md, csv, parquet")
    p.add_argument("--out", help="output folder (default: <the server's data dir>/reports)")
    p.add_argument("--server", help="aiwatch server URL (default: the server_url setting)")


@command("export", _export_args)
def export_report(args: argparse.Namespace, settings: Settings) -> int:
    """Export the weekly review (HTML, Markdown, CSV, Parquet) read from a running server."""
    from dashboard.client import ApiClient, ServerDown
    from dashboard.export import FORMATS, build_weekly_review, write

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        print(f"aiwatch: unknown format(s) {', '.join(bad)}; choose from {', '.join(FORMATS)}", file=sys.stderr)
        return 2
    server = (args.server or settings.server_url).rstrip("/")
    with ApiClient(server, settings.api_token) as api:
        try:
            api.health()
        except ServerDown as exc:
            print(f"aiwatch: {exc}; start it with `aiwatch serve` or pass --server", file=sys.stderr)
            return 1
        try:
            review = build_weekly_review(api, args.week)
        except ValueError as exc:
            print(f"aiwatch: {exc}", file=sys.stderr)
            return 2
        out = Path(args.out) if args.out else _reports_dir(api, settings)
    for path in write(review, out, formats):
        print(path)
    return 0


def _reports_dir(api: Any, settings: Settings) -> Path:
    """<data dir>/reports of the server the review was read from (when that folder is on this
    machine), else of the data_dir setting."""
    res = api.query("data_range")
    if res.ok and res.frame["data_dir"].iloc[0] and Path(str(res.frame["data_dir"].iloc[0])).is_dir():
        return Path(str(res.frame["data_dir"].iloc[0])) / "reports"
    return Path(settings.data_dir) / "reports"


def weekly_export_jobs(settings: Settings) -> list[Job]:
    day, hour = settings.weekly_export_weekday, settings.weekly_export_hour
    return [Job("weekly_review", 0, _weekly_export,
                f"Write last week's review under <data_dir>/reports, {day} {hour:02d}:00 UTC and at start-up.",
                cron={"day_of_week": day, "hour": hour, "minute": 0})]


JOB_FACTORIES = (weekly_export_jobs,)   # settings -> this stage's jobs (aiwatch.stages.stage_jobs)


def _weekly_export(ctx: Any) -> Path | None:
    """Write the last complete week's review if it is not there yet (idempotent: it also runs at start)."""
    from dashboard.export import StoreSource, build_weekly_review, iso_week, write

    week, _, _ = iso_week(None)
    out = Path(ctx.settings.data_dir) / "reports"
    if (out / f"weekly-review-{week}.html").exists():
        return None
    review = build_weekly_review(StoreSource(ctx.store), week)
    paths = write(review, out)
    log.info("weekly review %s written to %s", week, out)
    return paths[0] if paths else None
