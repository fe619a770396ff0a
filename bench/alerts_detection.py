"""Detection on the sample scenario: load the 3-day sample, run the analyzers, backtest the shipped
rules and report, per injected incident, when its expected severity first fired (P1 within 5 min
of onset, P2 within 15, P3 within 60) and every P1/P2 outside incidents (false alarms).

    .venv/bin/python bench/alerts_detection.py [--data-dir DIR] [--rules FILE] [--json]

Figures, not assertions; tests/alerts/test_sample_scenario.py asserts a subset.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXPECTED = {"latency_spike": "P1", "error_burst": "P1", "total_outage": "P1", "cost_spike": "P2",
            "confidence_drop": "P2", "format_drop": "P2", "input_drift": "P3", "override_rise": "P3"}
DEADLINE_MIN = {"P1": 5, "P2": 15, "P3": 60}


def prepare(data_dir: Path) -> None:
    if (data_dir / "aiwatch.duckdb").exists():
        return
    aiwatch = [sys.executable, "-c", "import sys; from aiwatch.cli import main; sys.exit(main(sys.argv[1:]))",
               "--log-level", "WARNING"]
    subprocess.run([*aiwatch, "sample", "load", "--data-dir", str(data_dir)], check=True, cwd=ROOT)
    subprocess.run([*aiwatch, "analyze", "--since=-4d", "--until=now", "--data-dir", str(data_dir)], check=True,
                   cwd=ROOT)


def incidents(db: Any) -> tuple[datetime, list[dict[str, Any]]]:
    from sample_data.scenario import load_scenario

    scenario = load_scenario()
    # the sample ends at load time: its first minute bucket is the scenario's minute 0
    start = db.query("SELECT min(time) AS t FROM analysis_metrics WHERE grain = '1m' AND metric = 'requests'"
                     ).column("t")[0].as_py()
    out = []
    for inc in scenario.incidents:
        onset, end = inc.window(start)
        out.append({"kind": inc.kind, "service": inc.service, "onset": onset, "end": end,
                    "expected": EXPECTED.get(inc.kind)})
    return start, out


def _firing_at(events: list[dict[str, Any]], t: datetime) -> dict[str, Any] | None:
    state: dict[str, dict[str, Any]] = {}
    for e in sorted(events, key=lambda e: e["time"]):
        if e["time"] > t:
            break
        state[e["fingerprint"]] = e
    return next((e for e in state.values() if e["to_state"] == "firing"), None)


def evaluate(result: Any, incs: list[dict[str, Any]], clean_until: datetime) -> dict[str, Any]:
    firings = [e for e in result.events if e["to_state"] == "firing"]
    rows = []
    for inc in incs:
        sev = inc["expected"]
        mine = [e for e in result.events if e["severity"] == sev and e["labels"].get("service") == inc["service"]]
        hits = [e for e in mine if e["to_state"] == "firing"
                and inc["onset"] <= e["time"] <= inc["end"] + timedelta(minutes=DEADLINE_MIN[sev])]
        # an alert of that severity already firing at onset (fired before, not yet resolved) counts at 0
        already = _firing_at(mine, inc["onset"])
        first = min(hits, key=lambda e: e["time"]) if hits else already
        delay = 0.0 if already else ((first["time"] - inc["onset"]).total_seconds() / 60 if first else None)
        rows.append({**{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in inc.items()},
                     "first_rule": first["rule"] if first else None, "delay_min": delay,
                     "in_time": delay is not None and delay <= DEADLINE_MIN[sev]})

    def during_incident(e: dict[str, Any]) -> bool:
        return any(i["service"] == e["labels"].get("service") and i["onset"] <= e["time"] <= i["end"] + timedelta(hours=1)
                   for i in incs)
    false = [{"time": e["time"].isoformat(), "rule": e["rule"], "severity": e["severity"],
              "service": e["labels"].get("service"), "labels": e["labels"]}
             for e in firings if e["severity"] in ("P1", "P2") and not during_incident(e)]
    clean = [f for f in false if datetime.fromisoformat(f["time"]) < clean_until]
    return {"incidents": rows, "false_p1_p2": false, "clean_day_p1_p2": clean}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="a database with the sample loaded and analyzed (default: build one)")
    parser.add_argument("--rules", help="rules file (default: the shipped one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from alerts.backtest import run_backtest
    from alerts.rules import load_config
    from store import alerting

    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="aiwatch-alerts-bench-"))
    t0 = time.perf_counter()
    prepare(data_dir)
    prepared = time.perf_counter() - t0
    db = alerting.open_read_only(str(data_dir / "aiwatch.duckdb"))
    start, incs = incidents(db)
    _, end = alerting.analysis_extent(db)
    config = load_config(args.rules, env={})
    t1 = time.perf_counter()
    result = run_backtest(db, config, start, end)
    elapsed = time.perf_counter() - t1
    report = evaluate(result, incs, start + timedelta(days=1))
    report["timing"] = {"prepare_s": round(prepared, 1), "backtest_s": round(elapsed, 1),
                        "steps": int((end - start).total_seconds() // 60),
                        "ms_per_step": round(elapsed * 1000 / max((end - start).total_seconds() / 60, 1), 2)}
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    print(f"backtest {start} .. {end}: {report['timing']}")
    for r in report["incidents"]:
        delay = "missed" if r["delay_min"] is None else f"{r['delay_min']:.1f} min ({r['first_rule']})"
        print(f"  {r['kind']:16} {r['service']:14} expect {r['expected']} within {DEADLINE_MIN[r['expected']]:>2} min:"
              f" {delay}{'' if r['in_time'] else '  <-- late or missed'}")
    print(f"P1/P2 outside incidents: {len(report['false_p1_p2'])} (clean day: {len(report['clean_day_p1_p2'])})")
    for f in report["false_p1_p2"][:30]:
        print(f"  {f['time']} {f['severity']} {f['rule']} {f['labels']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
