"""Several aiwatch server processes sharing a lease through a real ZooKeeper, each on its own chdb
directory seeded with the same incident, paging one loopback webhook (tests/aiwatch/test_lease.py
and bench/lease_handover.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
from server_harness import ROOT, RunningServer, start_server

DATABASE = "aiwatch_test"
T = TypeVar("T")

RULES = """
defaults: {group_by: [alertname, service], group_wait: 0s, group_interval: 1m, repeat_interval: 4h}
receivers:
  hook: {type: webhook, url: "URL", timeout: 2s}
  shared: {type: webhook, url: "SHARED_URL", timeout: 120s}   # routed from no rule: seeded outbox rows only
routes:
  - match: {}
    receivers: [hook]
rules:
  - name: HighErrorRate
    severity: P1
    for: 0s
    condition: {metric: error_rate, op: ">", threshold: 0.05}
"""

# The same analyzer output in each instance's store: a service failing 30% of calls, minute by minute
# from 20 minutes ago to `ahead` minutes ahead (what a shared ClickHouse would hold for all of them), and
# optionally the same outbox rows (a shared ClickHouse's one outbox). argv[1]: {"ahead": N, "outbox": [...]}.
SEED = """
import json, sys
from datetime import datetime, timedelta
sys.path.insert(0, "tests/alerts")
from harness import series, write_metrics
from aiwatch.config import Settings
from aiwatch.storage import open_store
from store import alerting
spec = json.loads(sys.argv[1])
store = open_store(Settings.load())
now = datetime.utcnow().replace(microsecond=0)
start = now.replace(second=0) - timedelta(minutes=20)
if spec.get("ahead") is not None:
    rows = series("error_rate", start, 20 + int(spec["ahead"]), 0.3)
    write_metrics(store, [{**r, "computed_at": r["time"]} for r in rows])
outbox = [{**row, "created_at": now, "next_attempt_at": now, "payload": json.dumps(row["payload"]), "state": "pending",
           "attempts": 0} for row in spec.get("outbox", [])]
if outbox:
    store.writer.write(fn=lambda con: alerting.save_tick(con, states=[], deleted_states=[], history=[], groups=[],
                                                          deleted_groups=[], nflog=[], outbox=outbox))
store.close()
"""
# Seeds, then serves in the same process (`python -m aiwatch` arguments after the spec): one interpreter
# start and one chdb engine per instance instead of two.
SEED_AND_SERVE = SEED + """
from aiwatch.cli import main
sys.exit(main(sys.argv[2:]))
"""


def write_rules(folder: Path, webhook_url: str, shared_url: str | None = None) -> Path:
    """`shared`: the receiver of the seeded outbox rows (its answers may hang longer than a kill takes)."""
    rules = folder / "rules.yaml"
    rules.write_text(RULES.replace("SHARED_URL", shared_url or webhook_url).replace("URL", webhook_url))
    return rules


def instance_env(folder: Path, name: str, keeper: str, rules: Path, ttl_s: float) -> dict[str, str]:
    return {"AIWATCH_STORE": f"chdb://{folder / name}?database={DATABASE}", "AIWATCH_LEASE": "true",
            "AIWATCH_KEEPER": keeper, "AIWATCH_LEASE_TTL_S": str(ttl_s), "AIWATCH_INSTANCE_ID": name,
            "AIWATCH_SCHEDULER_ENABLED": "true", "AIWATCH_ALERTS_RULES": str(rules),
            "AIWATCH_ALERTS_EVAL_INTERVAL_S": "1", "AIWATCH_ALERTS_DELIVER_INTERVAL_S": "1",
            "AIWATCH_RETENTION_DAYS": "0", "AIWATCH_ANALYSIS_RETENTION_DAYS": "0", "AIWATCH_INGEST_WORKERS": "0",
            # the analyzers (they run on the holder beside the alerts) start from now: nothing to catch up on
            "AIWATCH_ANALYSIS_INITIAL_LOOKBACK_S": "0"}


def seed(envs: list[dict[str, str]], ahead_minutes: int = 20) -> None:
    """Write the incident into each instance's store (in parallel: each opens its own chdb)."""
    spec = json.dumps({"ahead": ahead_minutes})
    procs = [subprocess.Popen([sys.executable, "-c", SEED, spec], cwd=ROOT, env={**os.environ, **env},
                              stderr=subprocess.PIPE, text=True) for env in envs]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"seeding failed:\n{err}")


def seeded_server(data_dir: Path, env: dict[str, str], *, ahead_minutes: int | None = 20,
                  outbox: Sequence[dict[str, Any]] = ()) -> RunningServer:
    """A server whose process first writes the incident (and `outbox` rows) into its store."""
    spec = json.dumps({"ahead": ahead_minutes, "outbox": list(outbox)})
    return start_server(data_dir, env=env, timeout=180, command=[sys.executable, "-c", SEED_AND_SERVE, spec])


def wait_for(what: str, check: Callable[[], T], timeout_s: float = 120, every_s: float = 0.05) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out waiting for {what}")


def lease_of(url: str) -> dict[str, Any]:
    """/readyz's lease part ({} while the instance does not answer)."""
    try:
        return httpx.get(f"{url}/readyz", timeout=5).json().get("lease") or {}
    except (httpx.HTTPError, ValueError):
        return {}
