"""`aiwatch redact`: audit text for personal data and secrets, or re-redact what is stored."""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import IO

from aiwatch.cli import command
from aiwatch.config import Settings


def _redact_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    scan = sub.add_parser("scan", help="report what a file holds, by kind (exit 1 if anything is found)")
    scan.add_argument("file", help="a text file, or - for standard input")
    scan.add_argument("--jsonl", action="store_true",
                      help='read {"text": ...} per line; write {"text": <redacted>, "findings": '
                           '[{"start", "end", "kind"}]} per line (offsets in the input text)')
    store = sub.add_parser("store", help="re-redact rows already in the database (stop the server first)")
    store.add_argument("--since", default="-30d", help="oldest rows to check (ISO 8601, unix seconds or relative "
                                                       "like -7d; 'all' for everything; default -30d)")
    store.add_argument("--data-dir", help="database folder (default from settings)")


@command("redact", _redact_args)
def redact_command(args: argparse.Namespace, settings: Settings) -> int:
    """Find personal data and secrets in a file (scan), or re-redact stored data (store)."""
    if args.action == "scan":
        with (sys.stdin if args.file == "-" else open(args.file, encoding="utf-8", errors="replace")) as src:
            return _scan_jsonl(src, sys.stdout, settings) if args.jsonl else _scan_text(src, args.file, sys.stdout, settings)
    return _store(args, settings)


def _scan_text(src: IO[str], name: str, out: IO[str], settings: Settings) -> int:
    redactor = settings.content_policy().redactor
    assert redactor is not None
    counts: Counter[str] = Counter()
    for number, line in enumerate(src, 1):
        for f in redactor.find(line.rstrip("\n")):
            counts[f.kind] += 1
            print(f"{name}:{number}:{f.start + 1}: {f.kind}", file=out)  # where, never the value
    for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"{n:8d}  {kind}", file=out)
    print(f"{sum(counts.values()):8d}  total", file=out)
    return 1 if counts else 0


def _scan_jsonl(src: IO[str], out: IO[str], settings: Settings) -> int:
    redactor = settings.content_policy().redactor
    assert redactor is not None
    bad = 0
    for number, line in enumerate(src, 1):
        if not line.strip():
            continue
        try:
            text = json.loads(line)["text"]
            if not isinstance(text, str):
                raise TypeError("text is not a string")
        except (ValueError, KeyError, TypeError) as exc:
            bad += 1
            print(f"aiwatch redact scan: line {number}: {type(exc).__name__}: {exc}", file=sys.stderr)
            out.write(json.dumps({"error": f"line {number}: expected an object with a string 'text'"}) + "\n")
            continue
        findings = redactor.find(text)
        out.write(json.dumps({"text": redactor.apply(text, findings),
                              "findings": [{"start": f.start, "end": f.end, "kind": f.kind} for f in findings]},
                             ensure_ascii=False) + "\n")
    return 2 if bad else 0


def _store(args: argparse.Namespace, settings: Settings) -> int:
    from collectors.redact_store import reredact_store
    from store.db import Store
    from store.queries import parse_time

    if args.data_dir:
        settings = settings.replace(data_dir=args.data_dir)
    since = None if args.since == "all" else parse_time(args.since)
    try:
        db = Store(settings.db_path)
    except Exception as exc:  # noqa: BLE001 - DuckDB allows one process: say why
        print(f"aiwatch redact store: cannot open {settings.db_path}: {exc}\n"
              "(the server owns the database while it runs; stop it first)", file=sys.stderr)
        return 1
    try:
        policy = settings.content_policy()
        counts = db.writer.write(fn=lambda con: reredact_store(con, policy, since), timeout=None)
    finally:
        db.close()
    for (table, kind), n in sorted(counts.items()):
        print(f"{table:16s} {kind:22s} {n:8d}")
    print(f"{'total':16s} {'':22s} {sum(counts.values()):8d}")
    return 0
