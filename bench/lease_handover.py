"""Lease hand-over time when the holder is SIGKILLed, and duplicate pages across the hand-overs.

Starts a ZooKeeper (Debian's `zookeeper` package) and two aiwatch servers on chdb with `lease = true`,
each seeded with the same incident and paging one loopback webhook. Each trial SIGKILLs whichever
instance holds the lease and times how long until the other's /readyz says it holds it (polled every
50 ms), then restarts the killed one as the standby. Every new holder re-evaluates the incident from
its own store (fired afresh), so any page after the first is a duplicate.

    uv run --frozen --extra test python bench/lease_handover.py --ttl 30 --trials 5
"""
from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fakes.receivers import FakeReceivers  # noqa: E402
from lease_harness import instance_env, lease_of, seed, wait_for, write_rules  # noqa: E402
from server_harness import RunningServer, start_server, stop_server  # noqa: E402
from zookeeper import missing, running_zookeeper  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ttl", type=float, default=30.0, help="lease_ttl_s (default: the setting's default, 30)")
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    if missing():
        print(f"cannot run: {missing()}")
        return 1
    with tempfile.TemporaryDirectory(prefix="aiwatch-lease-") as tmp, FakeReceivers() as rx, \
            running_zookeeper(Path(tmp) / "zookeeper") as keeper:
        folder = Path(tmp)
        rules = write_rules(folder, rx.url("webhook"))
        envs = {n: instance_env(folder, n, keeper, rules, args.ttl) for n in ("a", "b")}
        # the incident lasts past the whole run: every holder keeps evaluating it as firing
        seed(list(envs.values()), ahead_minutes=int(args.trials * (args.ttl * 1.5 + 60) / 60) + 30)
        servers: dict[str, RunningServer] = {n: start_server(folder / f"data-{n}", env=envs[n], timeout=300)
                                             for n in envs}
        times: list[float] = []
        try:
            holder = wait_for("a holder", lambda: next((n for n, s in servers.items() if lease_of(s.url).get("held")),
                                                       None), timeout_s=300)
            wait_for("the first page", lambda: rx.payloads("webhook"), timeout_s=300)
            for trial in range(1, args.trials + 1):
                other = "b" if holder == "a" else "a"
                standby, sees = servers[other].url, holder
                wait_for("the standby to see the holder", lambda u=standby, h=sees: lease_of(u).get("holder") == h, timeout_s=300)
                killed_at = time.monotonic()
                servers[holder].kill(signal.SIGKILL)
                wait_for("the hand-over", lambda u=standby: lease_of(u).get("held"), timeout_s=300)
                times.append(time.monotonic() - killed_at)
                new = servers[other]
                wait_for("the new holder to evaluate", lambda s=new: s.query("alerts", state="firing"), timeout_s=300)
                print(f"trial {trial}: {holder} killed, {other} held the lease after {times[-1]:.2f} s", flush=True)
                servers[holder] = start_server(folder / f"data-{holder}", env=envs[holder], timeout=300)
                holder = other
            time.sleep(5)   # the last holder's further evaluation and delivery rounds
        finally:
            for server in servers.values():
                stop_server(server)
        pages = [p for p in rx.payloads("webhook") if p["status"] == "firing"]
    print(f"lease_ttl_s={args.ttl:g}: hand-over after SIGKILL of the holder, {len(times)} trials: "
          f"median {statistics.median(times):.2f} s, min {min(times):.2f} s, max {max(times):.2f} s "
          f"(expected: 0.75-1.5 x ttl)")
    print(f"firing pages for the one incident: {len(pages)}; duplicates: {len(pages) - 1}")
    return 0 if len(pages) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
