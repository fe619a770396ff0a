"""`aiwatch sample generate|load`: make the seeded sample, record it, load it or send it."""
from __future__ import annotations

import argparse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from google.protobuf.message import Message
from tqdm import tqdm

from aiwatch.cli import command
from aiwatch.config import Settings
from sample_data import otlpfile
from sample_data.generate import draw, encode, period_start, resource_metrics
from sample_data.loader import HttpSink, StoreSink, deliver
from sample_data.realistic import realistic_scenario
from sample_data.scenario import DEFAULT_SCENARIO, Scenario, load_scenario

COMMITTED_SAMPLE = Path(__file__).with_name("sample-3d.otlp.gz")


def generated_messages(scenario: Scenario, start: datetime, seed: int) -> Iterator[tuple[int, Message]]:
    calls = draw(scenario, start, seed)
    if calls is None:  # a period without calls
        return
    for batch in encode(calls, seed=seed):
        yield otlpfile.TRACES, batch.traces
        yield otlpfile.LOGS, batch.logs
    for msg in resource_metrics(scenario, start, seed):
        yield otlpfile.METRICS, msg


def recorded_messages(path: Path, end: datetime | None) -> tuple[otlpfile.Header, Iterator[tuple[int, Message]]]:
    """Messages of a recording, moved so the period ends at `end` (None: as recorded)."""
    header, records = otlpfile.read(path)
    delta_ns = 0
    if end is not None:
        new_start = end.replace(second=0, microsecond=0) - timedelta(days=header.days)
        delta_ns = int((new_start - header.period_start).total_seconds()) * 10**9

    def messages() -> Iterator[tuple[int, Message]]:
        for signal, payload in records:
            msg = otlpfile.MESSAGES[signal].FromString(payload)
            otlpfile.shift(signal, msg, delta_ns)
            yield signal, msg
    return header, messages()


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("generate", "load"),
                   help="generate: draw a seeded sample; load: load a recorded sample (default: the committed one)")
    p.add_argument("file", nargs="?", help="load: recording to read (default: the committed 3-day sample)")
    p.add_argument("--scenario", default=str(DEFAULT_SCENARIO),
                   help="generate: scenario YAML, or 'realistic' (the detection benchmark's world, placed by --seed)")
    p.add_argument("--level", type=float, default=1.0,
                   help="generate --scenario realistic: traffic x level 1 (about 2 calls/s)")
    p.add_argument("--seed", type=int, default=7, help="generate: random seed")
    p.add_argument("--end", help="period end, ISO 8601 UTC (default: now)")
    p.add_argument("--out", help="generate: write a recording to this file instead of loading")
    p.add_argument("--url", help="send over OTLP/HTTP to this running server")
    p.add_argument("--data-dir", help="load straight into this data folder (the server must not be running)")
    p.add_argument("--as-recorded", action="store_true", help="load: keep the recorded timestamps")


@command("sample", _args)
def sample(args: argparse.Namespace, settings: Settings) -> int:
    """Generate, record, load or send the seeded sample telemetry with its injected incidents."""
    end = datetime.fromisoformat(args.end).astimezone(UTC) if args.end else datetime.now(UTC)
    if args.action == "generate":
        scenario = realistic_scenario(args.seed, args.level) if args.scenario == "realistic" \
            else load_scenario(args.scenario)
        start = period_start(scenario, end)
        messages = generated_messages(scenario, start, args.seed)
        if args.out:
            rec = otlpfile.Recorder(args.out, otlpfile.Header(start, scenario.days, scenario.name, args.seed))
            for signal, msg in tqdm(messages, desc="recording", unit="msg"):
                rec.add(signal, msg)
            rec.close()
            print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.1f} MB), period from {start:%Y-%m-%d %H:%M} UTC")
            return 0
    else:
        path = Path(args.file) if args.file else COMMITTED_SAMPLE
        header, messages = recorded_messages(path, None if args.as_recorded else end.replace(tzinfo=None))
    sink = HttpSink(args.url, settings.ingest_token) if args.url else StoreSink(
        (settings.replace(data_dir=args.data_dir) if args.data_dir else settings).db_path)
    try:
        with tqdm(desc="loading", unit=" items") as bar:
            total = deliver(messages, sink, bar)
    finally:
        sink.close()
    print(f"loaded {total} spans, log records and metric series into {args.url or args.data_dir or settings.data_dir}")
    return 0
