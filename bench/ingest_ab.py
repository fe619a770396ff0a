"""Ingest of two checkouts side by side, in the same seconds: which one is faster on a shared machine.

    python bench/ingest_ab.py OLD_CHECKOUT NEW_CHECKOUT [--seconds 20] [--rounds 3]

Each checkout (a git worktree with its own `.venv`, e.g. `git worktree add --detach ../old 0c9a031`
then `uv sync --frozen` there) serves on its own port with a fresh database, driven by its own
senders (bench/ingest.py's driver and batches), both at once: machine load that comes and goes hits
both alike, which one run after another cannot promise. Reports spans/s per round, the new/old
ratio, and the server's CPU per span (its process and its conversion workers).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest as bench  # noqa: E402  (bench/ingest.py: batches, driver, readiness)

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(the process's own CPU seconds, its descendants' CPU seconds) of a running process."""
    def own(p: int) -> float:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    children, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                kids = [int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()]
                children += sum(own(k) for k in kids)
                todo += kids
        except (FileNotFoundError, ProcessLookupError):
            pass
    return own(pid), children


def drive_into(runs: dict[str, dict], tree: str, url: str, bodies: list[bytes], seconds: float) -> None:
    runs[tree] = bench.drive(url, bodies, seconds, 2, 4, 500)   # bench/ingest.py's defaults: 2 x 4 senders


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    trees = [str(Path(args.old).resolve()), str(Path(args.new).resolve())]
    bodies = bench.batches(500, 40)
    results: dict[str, list[tuple[float, float, float]]] = {t: [] for t in trees}
    for r in range(args.rounds):
        servers: dict[str, tuple[str, subprocess.Popen]] = {}
        dirs = [tempfile.TemporaryDirectory() for _ in trees]
        try:
            for tree, data in zip(trees, dirs):
                port = bench.free_port()
                env = {**os.environ, "AIWATCH_SCHEDULER_ENABLED": "false"}
                env.pop("VIRTUAL_ENV", None)
                servers[tree] = (f"http://127.0.0.1:{port}", subprocess.Popen(
                    [f"{tree}/.venv/bin/python", "-m", "aiwatch", "--log-level", "WARNING", "serve", "--port", str(port),
                     "--data-dir", data.name], cwd=tree, env=env, stdout=subprocess.DEVNULL))
            for url, proc in servers.values():
                bench.wait_ready(url, proc)
            before = {t: cpu_seconds(proc.pid) for t, (_, proc) in servers.items()}
            runs: dict[str, dict] = {}
            threads = [threading.Thread(target=drive_into, args=(runs, t, servers[t][0], bodies, args.seconds))
                       for t in trees]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            for t, (_, proc) in servers.items():
                after, spans = cpu_seconds(proc.pid), runs[t]["requests"] * 500
                main_us, workers_us = ((a - b) / max(spans, 1) * 1e6 for a, b in zip(after, before[t]))
                results[t].append((runs[t]["spans_per_s"], main_us, workers_us))
                print(f"round {r + 1} {Path(t).name:<16}{runs[t]['spans_per_s']:>9,.0f} spans/s   server CPU per span: "
                      f"{main_us:.1f} us + workers {workers_us:.1f} us   load {os.getloadavg()[0]:.1f}", flush=True)
        finally:
            for _, proc in servers.values():
                proc.terminate()
            for _, proc in servers.values():
                proc.wait(30)
            for data in dirs:
                data.cleanup()
    old, new = (results[t] for t in trees)
    ratios = [n[0] / o[0] for o, n in zip(old, new)]
    print("spans/s new/old per round: " + " ".join(f"{x:.2f}" for x in ratios) + f"; mean {sum(ratios) / len(ratios):.2f}")
    for name, rows in (("old", old), ("new", new)):
        print(f"{name}: mean {sum(x[0] for x in rows) / len(rows):,.0f} spans/s, server CPU per span "
              f"{sum(x[1] + x[2] for x in rows) / len(rows):.1f} us")


if __name__ == "__main__":
    main()
