"""`aiwatch demo`: the whole product on one machine, from a fresh clone.

Loads the committed three-day sample (moved to end now) into a demo database, starts the server
and the dashboard and prints its URL; then keeps live traffic flowing through the shim against a
loopback fake provider (with a live incident a few minutes in) while the server analyzes the
sample's three days and then replays the alert rules over them into the alert history (progress on
the console). Ctrl-C stops everything without tracebacks.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from aiwatch.config import Settings


def _wait_ready(url: str, proc: subprocess.Popen, what: str, path: str = "/readyz", timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"aiwatch demo: the {what} exited with code {proc.returncode}")
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"aiwatch demo: the {what} did not start within {timeout:.0f} s")


def ports_in_use(args: argparse.Namespace) -> list[str]:
    """The demo's ports another process holds, as `PORT (--flag)`: checked before anything starts,
    so a second demo (or one still stopping) is a one-line message, not a traceback halfway."""
    import socket

    wanted = [(args.port, "--port"), (args.provider_port, "--provider-port")]
    wanted += [] if args.no_dashboard else [(args.dashboard_port, "--dashboard-port")]
    wanted += [] if args.no_inbox else [(args.inbox_port, "--inbox-port")]
    busy = []
    for port, flag in wanted:
        if not port:     # 0: any free port
            continue
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as the servers bind: TIME_WAIT is no owner
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                busy.append(f"{port} ({flag})")
    return busy


def _aiwatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "aiwatch", "--log-level", "WARNING", *args]


def _run(cmd: list[str]) -> None:
    """A preparation step in its own session: Ctrl-C reaches the demo only, which stops the step."""
    proc = subprocess.Popen(cmd, start_new_session=True)
    try:
        if proc.wait() != 0:
            raise SystemExit(f"aiwatch demo: `{' '.join(cmd[5:])}` failed (exit {proc.returncode})")
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(20)


# The demo made this folder's database: only then may --fresh delete it and live demo traffic go into it.
DEMO_MARKER = ".aiwatch-demo"
_LOADING = "loading:"   # the marker's first word until the sample load finished


def prepare_data(data_dir: Path, fresh: bool) -> None:
    """Load the committed sample, unless the demo database has data (the server analyzes it)."""
    db = Settings(data_dir=str(data_dir)).db_path
    if db.exists() and not (data_dir / DEMO_MARKER).exists():
        raise SystemExit(f"aiwatch demo: {db} holds data the demo did not load; pass --data-dir with another "
                         "folder (the demo adds sample and live traffic, and --fresh deletes the database)")
    marker = data_dir / DEMO_MARKER
    unfinished = db.exists() and marker.read_text().startswith(_LOADING)
    if unfinished:
        print("the last sample load did not finish (Ctrl-C?): loading it again", flush=True)
    if (fresh or unfinished) and data_dir.exists():
        for f in data_dir.glob(db.name + "*"):   # with its .wal
            f.unlink()
    if db.exists():
        print(f"using the existing demo database {db} (pass --fresh to reload the sample)", flush=True)
        return
    print("loading the 3-day sample (3 services, 8 injected incidents) ...", flush=True)
    marker.write_text(_LOADING + " `aiwatch demo` is loading the sample into this database\n")
    _run(_aiwatch("sample", "load", "--data-dir", str(data_dir)))
    marker.write_text("this database was loaded by `aiwatch demo`\n")


def data_folder(args: argparse.Namespace, settings: Settings) -> Path:
    """The data_dir setting unless --data-dir: one default, so `aiwatch analyze` and `serve` find the demo's data."""
    return Path(args.data_dir or settings.data_dir)


def _ignore_stop_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _stop_once(signum: int, frame: object) -> None:
    """The first Ctrl-C or SIGTERM stops the demo; later ones (a second Ctrl-C, uv forwarding a
    SIGTERM its process group also got, `timeout`) are ignored from that instant, so none can cut
    the clean-up short and leave the server and the dashboard running, holding their ports."""
    _ignore_stop_signals()
    raise KeyboardInterrupt


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    started = time.monotonic()
    busy = ports_in_use(args)
    if busy:
        print(f"aiwatch demo: port {', '.join(busy)} is in use (another demo, or one still stopping?): stop it, "
              "or choose other ports with those flags", file=sys.stderr)
        return 2
    # A supervisor's SIGTERM stops the demo like Ctrl-C (the children run in their own sessions).
    signal.signal(signal.SIGINT, _stop_once)
    signal.signal(signal.SIGTERM, _stop_once)
    data_dir = data_folder(args, settings)
    data_dir.mkdir(parents=True, exist_ok=True)
    server_url = f"http://127.0.0.1:{args.port}"
    # Once up, the server analyzes the sample's 3 days (a store never analyzed; a day per step) and
    # then replays the alert rules over them into an empty alert history, with progress on the
    # console: the dashboard URL does not wait for either.
    env = {**os.environ, "AIWATCH_DATA_DIR": str(data_dir), "AIWATCH_SERVER_URL": server_url,
           "AIWATCH_DASHBOARD_URL": f"http://127.0.0.1:{args.dashboard_port}", "AIWATCH_ANALYSIS_BACKFILL": "3d",
           "AIWATCH_ALERTS_REPLAY": "3d"}
    # The demo's traffic is a few calls a second: the server converts it in-process, sparing the
    # start of one worker process per core before it listens.
    env.setdefault("AIWATCH_INGEST_WORKERS", "0")
    children: list[subprocess.Popen] = []
    traffic = background = None
    inbox = None
    try:
        # Children get their own session: Ctrl-C reaches the demo alone, which stops them in order.
        # The dashboard starts first (it needs no server to start) while the data is prepared; its
        # start-up lines go to a log file, so the demo prints each address once.
        dash = None
        if not args.no_dashboard:
            dash_log = (data_dir / "dashboard.log").open("ab")
            dash = subprocess.Popen(_aiwatch("dashboard", "--server", server_url, "--port", str(args.dashboard_port)),
                                    env=env, stdout=dash_log, stderr=subprocess.STDOUT, start_new_session=True)
            children.append(dash)
        prepare_data(data_dir, args.fresh)
        if not args.no_inbox:
            from aiwatch.inbox import DemoInbox

            inbox = DemoInbox(args.inbox_port).start()
            env.update(inbox.env())
            print(f"inbox:     {inbox.url} stands in for Slack and PagerDuty; deliveries print here", flush=True)
        server = subprocess.Popen(_aiwatch("serve", "--port", str(args.port), "--data-dir", str(data_dir)), env=env,
                                  stdout=subprocess.DEVNULL, start_new_session=True)
        children.append(server)
        _wait_ready(server_url, server, "server")
        print(f"server:    {server_url}  (OTLP/HTTP ingest and read API)", flush=True)
        if dash is not None:
            _wait_ready(f"http://127.0.0.1:{args.dashboard_port}", dash, "dashboard", path="/_stcore/health")
            print(f"dashboard: http://127.0.0.1:{args.dashboard_port}   <- open this "
                  f"({time.monotonic() - started:.0f} s after the command)", flush=True)
        from sample_data.live_traffic import BackgroundTraffic, LiveIncident, LiveTraffic

        traffic = LiveTraffic(server_url, rate_per_s=args.rate, provider_port=args.provider_port,
                              incident=LiveIncident(after_s=args.incident_after, duration_s=args.incident_for)).start()
        background = BackgroundTraffic(server_url).start()
        print(f"provider:  {traffic.fake.base_url}  (OpenAI-compatible fake; the README's shim example calls it)",
              flush=True)
        print(f"traffic:   support-bot through the shim, {args.rate:g} calls/s; a provider incident starts in "
              f"{args.incident_after:.0f} s and lasts {args.incident_for:.0f} s; search-assist and "
              "claims-triage keep sending sample traffic", flush=True)
        print("analysis:  the server analyzes the sample's 3 days, then replays the alert rules over them into "
              "the alert history (progress below); Ctrl-C stops the demo.", flush=True)
        deadline = time.monotonic() + args.duration if args.duration else None
        while deadline is None or time.monotonic() < deadline:
            time.sleep(min(15, args.duration or 15))
            if any(c.poll() is not None for c in children):
                print("aiwatch demo: a component exited; stopping", file=sys.stderr)
                return 1
            print(traffic.status(), flush=True)
    except KeyboardInterrupt:
        print("\nstopping the demo ...", flush=True)
    finally:
        _ignore_stop_signals()   # stopping by another way (a component exited, --duration)
        for source in (traffic, background):
            if source:
                source.stop()
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()
        if inbox:
            inbox.stop()
    return 0

