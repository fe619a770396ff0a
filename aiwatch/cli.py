"""The `aiwatch` command: serve, sample data, demo, analysis, alerts, exports."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from aiwatch.config import ConfigError, Settings

Command = Callable[[argparse.Namespace, Settings], int]
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Command]] = {}


def command(name: str, configure: Callable[[argparse.ArgumentParser], None]):
    """Register a sub-command; each stage adds its own (see aiwatch/commands.py)."""
    def register(fn: Command) -> Command:
        COMMANDS[name] = (configure, fn)
        return fn
    return register


def build_parser() -> argparse.ArgumentParser:
    from aiwatch import commands  # noqa: F401 - registers the sub-commands

    parser = argparse.ArgumentParser(prog="aiwatch", description=__doc__)
    parser.add_argument("--config", help="TOML settings file (default: $AIWATCH_CONFIG)")
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (configure, fn) in COMMANDS.items():
        p = sub.add_parser(name, help=(fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else None)
        configure(p)
        p.set_defaults(func=fn)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "httpcore", "apscheduler"):  # a line per request or job run is noise here
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        settings = Settings.load(args.config)
    except ConfigError as exc:
        print(f"aiwatch: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args, settings) or 0)
    except ConfigError as exc:
        print(f"aiwatch: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except RuntimeError as exc:
        from store.db import StoreBusy, StoreCorrupt

        if isinstance(exc, (StoreBusy, StoreCorrupt)):
            print(f"aiwatch: {exc}", file=sys.stderr)
            return 1
        raise

