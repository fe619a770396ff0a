"""Several aiwatch server processes sharing a lease through a real ZooKeeper, each on its own chdb
directory seeded with the same incident, paging one loopback webhook (tests/aiwatch/test_lease.py
and bench/lease_handover.py)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from server_harness import ROOT

DATABASE = "aiwatch_test"
T = TypeVar("T")

RULES = """
defaults: {group_by: [alertname, service], group_wait: 0s, group_interval: 1m, repeat_interval: 4h}
receivers:
  hook: {type: webhook, url: "URL", timeout: 2s}
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
# from 20 minutes ago to `ahead` minutes ahead (what a shared ClickHouse would hold for all of them).
SEED = """
import sys
from datetime import datetime, timedelta
sys.path.insert(0, "tests/alerts")
from harness import series, write_metrics
from aiwatch.config import Settings
from aiwatch.storage import open_store
store = open_store(Settings.load())
start = datetime.utcnow().replace(second=0, microsecond=0) - timedelta(minutes=20)
rows = series("error_rate", start, 20 + int(sys.argv[1]), 0.3)
write_metrics(store, [{**r, "computed_at": r["time"]} for r in rows])
store.close()
"""


def write_rules(folder: Path, webhook_url: str) -> Path:
    rules = folder / "rules.yaml"
    rules.write_text(RULES.replace("URL", webhook_url))
    return rules


def instance_env(folder: Path, name: str, keeper: str, rules: Path, ttl_s: float) -> dict[str, str]:
    return {"AIWATCH_STORE": f"chdb://{folder / name}?database={DATABASE}", "AIWATCH_LEASE": "true",
            "AIWATCH_KEEPER": keeper, "AIWATCH_LEASE_TTL_S": str(ttl_s), "AIWATCH_INSTANCE_ID": name,
            "AIWATCH_SCHEDULER_ENABLED": "true", "AIWATCH_ALERTS_RULES": str(rules),
            "AIWATCH_ALERTS_EVAL_INTERVAL_S": "1", "AIWATCH_ALERTS_DELIVER_INTERVAL_S": "1",
            "AIWATCH_RETENTION_DAYS": "0", "AIWATCH_ANALYSIS_RETENTION_DAYS": "0", "AIWATCH_INGEST_WORKERS": "0"}


def seed(envs: list[dict[str, str]], ahead_minutes: int = 20) -> None:
    """Write the incident into each instance's store (in parallel: each opens its own chdb)."""
    procs = [subprocess.Popen([sys.executable, "-c", SEED, str(ahead_minutes)], cwd=ROOT, env={**os.environ, **env},
                              stderr=subprocess.PIPE, text=True) for env in envs]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"seeding failed:\n{err}")


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
