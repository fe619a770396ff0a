"""Sub-commands of `aiwatch`. Each is a thin wrapper over the stage that does the work."""
from __future__ import annotations

import argparse

from aiwatch.cli import command
from aiwatch.config import Settings
from aiwatch.stages import load_stages


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 4318)")
    p.add_argument("--data-dir", help="database folder (default ./aiwatch-data)")


@command("serve", _serve_args)
def serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run the server: OTLP ingest, read API, scheduled jobs."""
    import uvicorn

    from aiwatch.server import build_app

    settings = Settings.load(args.config, host=args.host, port=args.port, data_dir=args.data_dir)
    server, app = build_app(settings)
    print(f"aiwatch server on http://{settings.host}:{settings.port} (data in {settings.db_path})", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False,
                loop="uvloop", http="httptools", timeout_graceful_shutdown=10,
                limit_concurrency=settings.max_concurrent_requests)
    return 0


load_stages()
