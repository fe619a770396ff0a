"""Sub-commands of `aiwatch`. Each is a thin wrapper over the stage that does the work."""
from __future__ import annotations

import argparse
from typing import Any

from aiwatch.cli import command
from aiwatch.config import Settings


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 4318)")
    p.add_argument("--data-dir", help="database folder (default ./aiwatch-data)")
    p.add_argument("--store", help="duckdb (default), clickhouse://user:password@host:8123/DB or chdb:///path?database=DB")


@command("serve", _serve_args)
def serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run the server: OTLP ingest, read API, scheduled jobs."""
    from aiwatch.server import build_app
    from aiwatch.serving import run

    settings = Settings.load(args.config, host=args.host, port=args.port, data_dir=args.data_dir, store=args.store)
    server, app = build_app(settings)
    from store.clickhouse import parse_store

    where = settings.db_path if settings.store == "duckdb" else parse_store(settings.store).describe()
    print(f"aiwatch server on http://{settings.host}:{settings.port} (data in {where})", flush=True)
    _reload_on_hangup(server)
    run(app, settings)
    return 0


def _reload_on_hangup(server: Any) -> None:
    """SIGHUP re-reads the alert rules (as Prometheus and Alertmanager do): off the signal handler,
    in a thread of its own, since it reads and validates a file."""
    import signal
    import threading

    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=server.reload, name="reload",
                                                                   daemon=True).start())


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="database folder (default: the data_dir setting, as for serve and analyze)")
    p.add_argument("--fresh", action="store_true", help="reload the sample even if the demo database exists")
    p.add_argument("--port", type=int, default=4318, help="server port (default 4318)")
    p.add_argument("--dashboard-port", type=int, default=8501, help="dashboard port (default 8501)")
    p.add_argument("--no-dashboard", action="store_true", help="do not start the dashboard")
    p.add_argument("--provider-port", type=int, default=8600,
                   help="port of the fake OpenAI-compatible provider (default 8600; the README's shim example uses it)")
    p.add_argument("--rate", type=float, default=3.0, help="live calls per second (default 3)")
    p.add_argument("--incident-after", type=float, default=180, help="seconds until the live incident (default 180)")
    p.add_argument("--incident-for", type=float, default=300, help="seconds the live incident lasts (default 300)")
    p.add_argument("--inbox-port", type=int, default=0,
                   help="port of the loopback Slack/PagerDuty stand-in that prints deliveries (default: any free)")
    p.add_argument("--no-inbox", action="store_true", help="deliver alerts to the receivers configured in the environment")
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds (default: run until Ctrl-C)")


@command("demo", _demo_args)
def demo(args: argparse.Namespace, settings: Settings) -> int:
    """The one-command demo: server + sample data + live traffic + dashboard."""
    from aiwatch.demo import run_demo

    return run_demo(args, settings)

