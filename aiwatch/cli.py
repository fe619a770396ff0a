"""The `aiwatch` command: serve, sample data, demo, analysis, alerts, exports."""
from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:   # pydantic's model build is ~0.3 s: `aiwatch --help` and usage errors never pay it
    from aiwatch.config import Settings

Command = Callable[[argparse.Namespace, "Settings"], int]
Configure = Callable[[argparse.ArgumentParser], None]


class Declared(NamedTuple):
    module: str
    function: str
    help: str


def command(name: str, configure: Configure) -> Callable[[Command], Command]:
    """Mark a function as the sub-command `name` (aiwatch/commands.py and the stages). Nothing is
    registered: the CLI finds the function in its module's source and loads it when it runs."""
    def mark(fn: Command) -> Command:
        fn.aiwatch_command = (name, configure)  # type: ignore[attr-defined]
        return fn
    return mark


def load_command(declared: Declared) -> tuple[Configure, Command]:
    """The (configure, run) pair of a declared command: its module imported now."""
    fn = getattr(importlib.import_module(declared.module), declared.function)
    _name, configure = fn.aiwatch_command
    return configure, fn


def declared_commands() -> dict[str, Declared]:
    """name -> (module, function, one-line help) of every `@command`, read from the command modules'
    source (aiwatch/commands.py and the stages), so `aiwatch --help` lists them without importing any
    stage and its heavy packages; a command's module is imported only when that command runs."""
    import ast

    from aiwatch.stages import STAGE_MODULES

    found: dict[str, Declared] = {}
    for module in ("aiwatch.commands", *STAGE_MODULES):
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.origin:   # never skipped: its commands would silently vanish
            raise ModuleNotFoundError(f"stage module {module!r} (aiwatch/stages.py) is missing", name=module)
        with open(spec.origin, encoding="utf-8") as f:
            tree = ast.parse(f.read(), spec.origin)
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef):
                continue
            for dec in node.decorator_list:
                if (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Name) and dec.func.id == "command"
                        and dec.args and isinstance(dec.args[0], ast.Constant)):
                    doc = (ast.get_docstring(node) or "").strip().splitlines()
                    found[str(dec.args[0].value)] = Declared(module, node.name, doc[0] if doc else "")
    return found


def _chosen(argv: list[str], names: Iterable[str]) -> str | None:
    """The sub-command named on the command line (after the global options), if any."""
    names, i = set(names), 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--config", "--log-level"):
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        return arg if arg in names else None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The full parser of the sub-command `argv` names (its module imported); the others get a
    one-line entry from their source, so help and errors elsewhere stay fast."""
    declared = declared_commands()
    chosen = _chosen(sys.argv[1:] if argv is None else argv, declared)
    parser = argparse.ArgumentParser(prog="aiwatch", description=__doc__)
    parser.add_argument("--config", help="TOML settings file (default: $AIWATCH_CONFIG)")
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, found in declared.items():
        p = sub.add_parser(name, help=found.help, description=found.help)
        if name == chosen:
            configure, fn = load_command(found)
            configure(p)
            p.set_defaults(func=fn)
            parser.set_defaults(command_parser=p)
    return parser


def join_relative_times(argv: list[str]) -> list[str]:
    """`--since -3d` -> `--since=-3d`: argparse reads a bare `-3d` as an unknown option, but every
    time option takes relative times, and no option or argument of ours looks like one."""
    from core.durations import is_relative_time

    out: list[str] = []
    for arg in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and is_relative_time(arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = join_relative_times(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args, extra = parser.parse_known_args(argv)
    if extra:  # a bad flag gets the usage of the sub-command it was given to
        getattr(args, "command_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "httpcore", "apscheduler"):  # a line per request or job run is noise here
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    from aiwatch.config import ConfigError, Settings

    try:
        settings = Settings.load(args.config)
    except ConfigError as exc:
        print(f"aiwatch: configuration error: {exc}", file=sys.stderr)
        return 2
    if settings.prices_file:   # every command that prices calls (analyze, export) uses the overrides
        from store.prices import configure

        configure(settings.price_table())
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

