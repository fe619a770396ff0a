"""Issue 10's attacks, one after another, against a real `aiwatch serve` with a probe running.

    python bench/hostile.py [--only NAME[,NAME...]] [--seconds 20]

Starts `aiwatch serve` on 127.0.0.1 with tokens and receiver secrets in its environment and
default settings otherwise (scheduler on, one ingest worker per core). A probe process sends a
one-span OTLP request and GET /healthz every ~250 ms throughout. Each attack is bounded in count
and time; for each the script prints what was sent, the server's status codes, the probe's p50
and max latency during the attack, the server's peak RSS (server and ingest workers, sampled
every 100 ms), whether the server still answers afterwards, and what broke. The paging attacks
(slow Slack receiver, SIGTERM, the `(a|a)*b` silence) run on a second server with loopback
receivers and a small rules file. Attacks: """
from __future__ import annotations

import argparse
import gzip
import multiprocessing as mp
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "tests"))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse  # noqa: E402

from aiwatch.config import Settings  # noqa: E402
from tests.otlp_builders import span_request  # noqa: E402
from tests.server_harness import RunningServer, start_server  # noqa: E402

INGEST_TOKEN = "ingest-token-bench-51d3a8e6"
API_TOKEN = "api-token-bench-7c1e0f2d9b"
SECRETS = {
    "AIWATCH_INGEST_TOKEN": INGEST_TOKEN,
    "AIWATCH_API_TOKEN": API_TOKEN,
    "AIWATCH_SLACK_WEBHOOK_URL": "http://127.0.0.1:9/services/T000/B000/slack-secret-bench-4f2a",
    "AIWATCH_PAGERDUTY_ROUTING_KEY": "pd-routing-key-bench-98cc1b",
}
# Default settings otherwise: the scheduler and one ingest worker per core, as `aiwatch serve` runs.
SERVER_ENV = {**SECRETS, "AIWATCH_SCHEDULER_ENABLED": "true", "AIWATCH_INGEST_WORKERS": "-1"}
PB = {"content-type": "application/x-protobuf", "authorization": f"Bearer {INGEST_TOKEN}"}
API = {"authorization": f"Bearer {API_TOKEN}"}
LEAKS = (*SECRETS.values(), "root:x:0:0", "PATH=")


def leaked(text: str) -> list[str]:
    return [s[:12] + "..." for s in LEAKS if s in text]


# --- probe (own process, so the attacker's CPU never delays it) -----------------------------------

def probe_loop(url: str, stop: Any, out: Any, period: float = 0.25) -> None:
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            t0 = time.monotonic()
            body = span_request([{"name": "probe"}], service="probe").SerializeToString()
            for kind, call in (("otlp", lambda b=body: client.post(f"{url}/v1/traces", content=b, headers=PB)),
                               ("healthz", lambda: client.get(f"{url}/healthz"))):
                start = time.monotonic()
                try:
                    status = call().status_code
                except httpx.HTTPError:
                    status = 0
                out.put((start, kind, status, time.monotonic() - start))
            stop.wait(max(0.0, period - (time.monotonic() - t0)))


class Probe:
    def __init__(self, url: str) -> None:
        self.stop = mp.Event()
        self.queue: Any = mp.Queue()
        self.samples: list[tuple[float, str, int, float]] = []
        self.proc = mp.Process(target=probe_loop, args=(url, self.stop, self.queue), daemon=True)
        self.proc.start()

    def drain(self) -> None:
        while True:
            try:
                self.samples.append(self.queue.get_nowait())
            except Exception:  # noqa: BLE001 - queue.Empty
                return

    def window(self, t0: float, t1: float) -> list[tuple[float, str, int, float]]:
        self.drain()
        # A probe sent during the attack counts even if it returned after it: that is the stall.
        return [s for s in self.samples if t0 <= s[0] <= t1]

    def close(self) -> None:
        self.stop.set()
        self.proc.join(35)
        if self.proc.is_alive():
            self.proc.kill()


# --- memory ---------------------------------------------------------------------------------------

def tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return pids


def status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


class RssSampler(threading.Thread):
    """RSS of the server and its worker processes, every 100 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.samples, self.halt = pid, [], threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.1):
            self.samples.append((time.monotonic(), sum(status_kb(p, "VmRSS:") for p in tree(self.pid)) / 1024))

    def peak(self, t0: float, t1: float) -> float:
        vals = [mb for t, mb in self.samples if t0 <= t <= t1]
        return max(vals) if vals else float("nan")


# --- one attack -----------------------------------------------------------------------------------

@dataclass
class Result:
    name: str
    sent: str = ""
    answers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    seconds: float = 0.0
    probe: str = ""
    probe_max_s: float = 0.0
    probe_expected: bool = True   # False where the attack stops the server
    rss_mb: float = float("nan")
    after: str = ""

    def expect(self, ok: bool, what: str) -> None:
        if not ok:
            self.broken.append(what)


@dataclass
class Target:
    server: RunningServer
    probe: Probe
    rss: RssSampler
    client: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url


def run_attack(name: str, target: Target, attack: Callable[[Target, Result], None]) -> Result:
    res = Result(name)
    log_mark = len(target.server.log())
    t0 = time.monotonic()
    try:
        attack(target, res)
    except Exception as exc:  # noqa: BLE001 - an attack that errors is a finding, not the end of the run
        res.broken.append(f"attack raised {type(exc).__name__}: {exc}"[:300])
    time.sleep(max(0.0, 2.0 - (time.monotonic() - t0)))   # a short attack still gets ~8 probes
    t1 = time.monotonic()
    time.sleep(0.6)   # let the last probe in the window return
    res.seconds = t1 - t0
    samples = target.probe.window(t0, t1)
    lat = np.array([s[3] for s in samples if s[1] == "otlp"]) * 1000
    codes = sorted({s[2] for s in samples})
    if len(lat):
        res.probe = f"{np.percentile(lat, 50):.0f} / {lat.max():.0f} ms (n={len(lat)}, codes {codes})"
        res.probe_max_s = float(max(s[3] for s in samples))
    if res.probe_expected:
        res.expect(res.probe_max_s < 2.0, f"probe stalled {res.probe_max_s:.1f} s")
        res.expect(all(s[2] == 200 for s in samples), f"probe got {codes}")
    res.rss_mb = target.rss.peak(t0, t1 + 0.5)
    if target.server.process.poll() is None:
        try:
            h = target.client.get(f"{target.url}/healthz").status_code
            body = span_request([{"name": "after"}], service="probe").SerializeToString()
            o = target.client.post(f"{target.url}/v1/traces", content=body, headers=PB).status_code
            res.after = f"healthz {h}, ingest {o}"
            res.expect(h == 200 and o == 200, "server not answering afterwards")
        except httpx.HTTPError as exc:
            res.after = f"no answer ({type(exc).__name__})"
            res.broken.append("server not answering afterwards")
    elif not res.after:
        res.after = f"exited {target.server.process.returncode}"
        res.broken.append("server died")
    log = target.server.log()[log_mark:]
    if "Traceback" in log:
        lines = log.splitlines()
        errors = [next((x for x in lines[i + 1:] if x and not x.startswith(" ")), "?")
                  for i, x in enumerate(lines) if x.startswith("Traceback")]
        res.notes.append(f"{len(errors)} traceback(s) in the server log: {'; '.join(errors)[:300]}")
    return res


# --- attacks on the main server -------------------------------------------------------------------

def sender(url: str, bodies: list[bytes], seconds: float, threads: int, queue: Any) -> None:
    import http.client

    lat: list[float] = []
    counts = {"ok": 0, "shed": 0, "other": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop(offset: int) -> None:
        host, port = url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        i = offset
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            conn.request("POST", "/v1/traces", body=bodies[i % len(bodies)], headers=PB)
            i += 1
            r = conn.getresponse()
            r.read()
            with lock:
                if r.status == 200:
                    lat.append(time.perf_counter() - t0)
                    counts["ok"] += 1
                else:
                    counts["shed" if r.status == 503 else "other"] += 1
            if r.status != 200:
                time.sleep(float(r.getheader("retry-after", "1")) / 10)
        conn.close()

    ts = [threading.Thread(target=loop, args=(k * 7,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    queue.put((counts, lat))


def attack_ingest(t: Target, r: Result, seconds: float = 20, senders: int = 2, threads: int = 4) -> None:
    from bench.ingest import batches

    bodies = batches(500, 40)
    r.sent = (f"sample spans, 500-span batches ({np.mean([len(b) for b in bodies]) / 1024:.0f} KiB), "
              f"{senders} procs x {threads} conns, {seconds:.0f} s")
    q: Any = mp.Queue()
    procs = [mp.Process(target=sender, args=(t.url, bodies, seconds, threads, q)) for _ in range(senders)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [q.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - t0
    ok = sum(c["ok"] for c, _ in results)
    lat = np.concatenate([np.array(x) for _, x in results]) * 1000
    r.answers = [f"200 x{ok}", f"503 x{sum(c['shed'] for c, _ in results)}",
                 f"other x{sum(c['other'] for c, _ in results)}"]
    r.notes.append(f"{ok * 500 / elapsed:,.0f} spans/s acknowledged; request p50 {np.percentile(lat, 50):.0f} ms, "
                   f"p99 {np.percentile(lat, 99):.0f} ms")
    r.expect(ok > 0 and sum(c["other"] for c, _ in results) == 0, "ingest failed")


def attack_drift(t: Target, r: Result) -> None:
    reads = [f"{fn}('{p}')" for fn in ("read_text", "read_blob") for p in ("/etc/passwd", "/proc/self/environ")]
    payloads = [f'attr:x", CAST((SELECT string_agg(content, chr(10)) FROM {x}) AS INTEGER) AS "y' for x in reads]
    payloads += [f"x') UNION ALL SELECT content FROM {x} --" for x in reads]
    now = datetime.now(UTC).replace(tzinfo=None)
    r.sent = f"POST /v1/reports/drift x{len(payloads)}: column names reading /etc/passwd, /proc/self/environ"
    for p in payloads:
        resp = t.client.post(f"{t.url}/v1/reports/drift", headers=API, json={
            "route": "chat", "start": (now - timedelta(hours=1)).isoformat(), "end": now.isoformat(),
            "columns": [p]})
        r.answers.append(str(resp.status_code))
        r.expect(resp.status_code == 400, f"drift answered {resp.status_code}")
        r.expect(not leaked(resp.text), f"leak: {leaked(resp.text)}")


def attack_confidence(t: Target, r: Result, wait_s: float = 150) -> None:
    service = f"victim-{os.urandom(3).hex()}"
    now = datetime.now(UTC)
    minute = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
    start_ns = int(minute.timestamp()) * 10**9 + 5 * 10**9
    year_ns = 365 * 86_400 * 10**9
    hostile = {"gen_ai.request.model": "m", "aiwatch.confidence": 1e5, "aiwatch.quality.score": 9224.0,
               "aiwatch.cost.usd": 9.2e6, "gen_ai.usage.input_tokens": 2**62}
    body = span_request([{"start_ns": start_ns, "attributes": hostile},
                         {"start_ns": start_ns, "duration_ms": 292 * year_ns / 1e6,
                          "attributes": {"gen_ai.request.model": "m"}},
                         {"start_ns": start_ns, "attributes": {"gen_ai.request.model": "m", "aiwatch.confidence": 0.5}}],
                        service=service).SerializeToString()
    r.sent = "3 spans: confidence 1e5, quality 9224, cost $9.2M, 2^62 tokens, 292-year duration; then the minute job"
    resp = t.client.post(f"{t.url}/v1/traces", content=body, headers=PB)
    r.answers.append(str(resp.status_code))
    msg = ExportTraceServiceResponse.FromString(resp.content).partial_success.error_message if resp.is_success else ""
    r.notes.append(f"partial_success: {msg[:70]}...")
    r.expect(resp.status_code == 200 and "out of range" in msg, "hostile span not flagged at ingest")
    deadline, requests = time.monotonic() + wait_s, None
    while time.monotonic() < deadline:
        q = t.client.get(f"{t.url}/v1/query/metrics", headers=API, params={
            "metric": "requests", "service": service, "start": "-15m", "grain": "1m"})
        rows = q.json().get("data", []) if q.status_code == 200 else []
        if rows:
            requests = sum(row["value"] for row in rows)
            break
        time.sleep(2)
    waited = wait_s - (deadline - time.monotonic())
    r.notes.append(f"requests metric for the victim: {requests} after {waited:.0f} s (the minute job)")
    r.expect(requests == 3, f"requests metric {requests}, expected 3")
    ready = t.client.get(f"{t.url}/readyz")
    r.answers.append(f"readyz {ready.status_code} {ready.json().get('status')}")
    r.expect(ready.json().get("status") == "ready", f"readyz {ready.text[:80]}")
    metrics = t.client.get(f"{t.url}/metrics", headers=API).text
    fails = [ln for ln in metrics.splitlines() if "analyzer" in ln and "fail" in ln and not ln.startswith("#")]
    r.notes.append("; ".join(fails)[:160] or "no analyzer-failure series in /metrics")


def attack_redaction(t: Target, r: Result) -> None:
    blob = "AB12 " * 400_000
    bodies = [span_request([{"attributes": {"gen_ai.request.model": "m", "gen_ai.input.messages": blob}}],
                           service="pathological").SerializeToString() for _ in range(2)]
    r.sent = f"2 concurrent requests, one span each with a {len(blob) / 1e6:.0f} MB 'AB12 ' prompt"
    out: list[str] = []

    def one(body: bytes) -> None:
        t0 = time.monotonic()
        with httpx.Client(timeout=120) as c:
            s = c.post(f"{t.url}/v1/traces", content=body, headers=PB).status_code
        out.append(f"{s} in {time.monotonic() - t0:.1f} s")

    ths = [threading.Thread(target=one, args=(b,)) for b in bodies]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    r.answers = out
    r.expect(all(a.startswith("200") for a in out), "pathological prompt refused")


def db_bytes(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in data_dir.glob(Settings().db_path.name + "*"))


def attack_resource_attrs(t: Target, r: Result) -> None:
    resource = {f"r.{i:05d}": f"v{i}" for i in range(20_000)}
    body = span_request([{"name": f"s{i}"} for i in range(500)], service="wide-resource",
                        resource=resource).SerializeToString()
    r.sent = f"1 request, {len(body) / 1e6:.2f} MB: 20,000 resource attributes x 500 spans"
    before = db_bytes(t.server.data_dir)
    t0 = time.monotonic()
    resp = t.client.post(f"{t.url}/v1/traces", content=body, headers=PB)
    r.answers.append(f"{resp.status_code} in {time.monotonic() - t0:.1f} s")
    msg = ExportTraceServiceResponse.FromString(resp.content).partial_success.error_message if resp.is_success else ""
    r.notes.append(f"partial_success: {msg[:80]}")
    time.sleep(1)
    r.notes.append(f"database + WAL grew {(db_bytes(t.server.data_dir) - before) / 1e6:.1f} MB")
    r.expect(resp.status_code in (200, 400, 413), f"answered {resp.status_code}")


def attack_idle(t: Target, r: Result, n: int = 300, limit_s: float = 30) -> None:
    socks = [socket.create_connection(("127.0.0.1", t.server.port), timeout=limit_s) for _ in range(n)]
    r.sent = f"{n} idle TCP connections (no bytes), held until the server closes them"
    t0 = time.monotonic()
    try:
        statuses = [t.client.get(f"{t.url}/healthz").status_code,
                    t.client.get(f"{t.url}/readyz").status_code,
                    t.client.post(f"{t.url}/v1/traces", headers=PB,
                                  content=span_request([{"name": "during-idle"}]).SerializeToString()).status_code]
        r.answers.append(f"healthz/readyz/ingest during: {statuses}")
        r.expect(statuses == [200, 200, 200], "requests refused while idle connections were open")
        closed, last = 0, 0.0
        for s in socks:
            s.settimeout(max(0.1, limit_s - (time.monotonic() - t0)))
            try:
                if s.recv(1) == b"":
                    closed += 1
                    last = time.monotonic() - t0
            except OSError:
                pass
        r.answers.append(f"{closed}/{n} closed by the server within {last:.1f} s")
        r.expect(closed == n, f"only {closed}/{n} idle connections closed")
    finally:
        for s in socks:
            s.close()


def attack_spans_limit(t: Target, r: Result) -> None:
    r.sent = "3 concurrent GET /v1/query/spans?limit=100000&start=-1h"
    out: list[str] = []

    def one() -> None:
        t0, n = time.monotonic(), 0
        try:
            with httpx.Client(timeout=120) as c, c.stream("GET", f"{t.url}/v1/query/spans", headers=API,
                                                           params={"limit": 100000, "start": "-1h"}) as resp:
                for chunk in resp.iter_bytes():
                    n += len(chunk)
                out.append(f"{resp.status_code}, {n / 1e6:.0f} MB in {time.monotonic() - t0:.1f} s")
        except httpx.HTTPError as exc:
            out.append(f"{type(exc).__name__} after {time.monotonic() - t0:.1f} s")

    ths = [threading.Thread(target=one) for _ in range(3)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    r.answers = out
    r.expect(all(not a[0].isdigit() or a[0] in "24" for a in out), "5xx")


def attack_bad_times(t: Target, r: Result) -> None:
    r.sent = "spans?start=1e20, start=-99999999d, end=inf; silences with ends_at=1e20, duration 'zz', matchers 7"
    for params in ({"start": "1e20"}, {"start": "-99999999d"}, {"end": "inf"}):
        resp = t.client.get(f"{t.url}/v1/query/spans", headers=API, params=params)
        r.answers.append(f"{next(iter(params.values()))}: {resp.status_code}")
        r.expect(resp.status_code == 400 and "error" in resp.json(), f"{params} -> {resp.status_code}")
    for body in ({"matchers": ["service=x"], "ends_at": "1e20"}, {"matchers": ["service=x"], "duration": "zz"},
                 {"matchers": 7, "duration": "1h"}):
        resp = t.client.post(f"{t.url}/v1/silences", headers=API, json=body)
        r.answers.append(f"silence: {resp.status_code}")
        r.expect(resp.status_code == 400 and resp.headers.get("content-type", "").startswith("application/json"),
                 f"silence {body} -> {resp.status_code} {resp.headers.get('content-type')}")


def stored_names(t: Target, service: str) -> list[str]:
    time.sleep(0.3)
    resp = t.client.get(f"{t.url}/v1/query/spans", headers=API, params={"service": service, "start": "-1h"})
    return sorted(row["name"] for row in resp.json()["data"])


def attack_gzip(t: Target, r: Result) -> None:
    service = f"gzip-{os.urandom(3).hex()}"
    parts = [span_request([{"name": f"part-{i}"}], service=service).SerializeToString() for i in range(3)]
    body = b"".join(gzip.compress(p) for p in parts)
    r.sent = "one body of 3 concatenated gzip members (one span each)"
    resp = t.client.post(f"{t.url}/v1/traces", content=body, headers={**PB, "content-encoding": "gzip"})
    names = stored_names(t, service)
    r.answers.append(f"{resp.status_code}; stored {names}")
    r.expect(resp.status_code == 200 and names == ["part-0", "part-1", "part-2"], "members lost")


def attack_utf8(t: Target, r: Result) -> None:
    service = f"utf8-{os.urandom(3).hex()}"
    req = span_request([{"name": "good-1"}, {"name": "BAD-NAME"}, {"name": "good-2"}], service=service)
    body = req.SerializeToString().replace(b"BAD-NAME", b"BAD\xffNAME")
    r.sent = "3 spans, the middle one's name invalid UTF-8"
    resp = t.client.post(f"{t.url}/v1/traces", content=body, headers=PB)
    rejected = ExportTraceServiceResponse.FromString(resp.content).partial_success.rejected_spans \
        if resp.is_success else None
    names = stored_names(t, service)
    r.answers.append(f"{resp.status_code}, rejected_spans={rejected}; stored {names}")
    r.expect(resp.status_code == 200 and rejected == 1 and names == ["good-1", "good-2"], "batch not split")


def attack_disconnect(t: Target, r: Result, n: int = 20) -> None:
    mark = len(t.server.log())
    r.sent = f"{n} clients send headers (content-length 5000) and 100 body bytes, then close"
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", t.server.port), timeout=10)
        s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\ncontent-type: application/x-protobuf\r\n"
                  + f"authorization: Bearer {INGEST_TOKEN}\r\ncontent-length: 5000\r\n\r\n".encode() + b"\x0a" * 100)
        time.sleep(0.05)
        s.close()
    time.sleep(1.5)
    added = t.server.log()[mark:]
    lines = added.count("\n")
    r.answers.append(f"{lines} log lines for {n} disconnects, {added.count('Traceback')} tracebacks")
    r.expect(lines <= n and "Traceback" not in added, "disconnects log tracebacks")


MAIN_ATTACKS: dict[str, Callable[..., None]] = {
    "ingest": attack_ingest, "drift": attack_drift, "confidence": attack_confidence, "redaction": attack_redaction,
    "resource_attrs": attack_resource_attrs, "idle": attack_idle, "spans_limit": attack_spans_limit,
    "bad_times": attack_bad_times, "gzip": attack_gzip, "utf8": attack_utf8, "disconnect": attack_disconnect,
}


# --- paging attacks (second server: loopback receivers, a small rules file) -----------------------

SLOW, PAGED, REGEX_VICTIM = "slow-svc", "paged-svc", "a" * 40 + "c"


def prepare_alerts(data: Path, rules: Path, rx: Any) -> None:
    """Rules routing one service to Slack and another to PagerDuty, and firing alerts for both (and
    for a service named a...ac that `(a|a)*b` backtracks on) decided into the outbox, as the
    server's evaluator would have."""
    import yaml

    from alerts.engine import AlertEngine, StoreBackend
    from alerts.rules import load_config
    sys.path.insert(2, str(ROOT / "tests" / "alerts"))
    from harness import MIN, FakeClock, Script, series, write_metrics

    from store.db import Store

    rules.write_text(yaml.safe_dump({
        "defaults": {"group_by": ["alertname", "service"], "group_wait": "30s", "group_interval": "10s",
                     "repeat_interval": "4h"},
        "receivers": {"slack": {"type": "slack", "url": rx.url("slack")},   # default 10 s send deadline
                      "pagerduty": {"type": "pagerduty", "url": rx.url("pagerduty"), "routing_key": "K"},
                      "webhook": {"type": "webhook", "url": rx.url("webhook")}},
        "routes": [{"match": {"service": SLOW}, "receivers": ["slack"]},
                   {"match": {"service": PAGED}, "receivers": ["pagerduty"]},
                   {"match": {}, "receivers": ["webhook"]}],
        "rules": [{"name": "HighErrorRate", "severity": "P1", "for": "2m",
                   "condition": {"metric": "error_rate", "match": {"service_name": "*"}, "op": ">",
                                 "threshold": 0.05}}]}))
    start = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0) - 10 * MIN
    store = Store(Settings(data_dir=str(data)).db_path, writer_max_delay_ms=1)
    try:
        for svc in (SLOW, PAGED, REGEX_VICTIM):
            write_metrics(store, series("error_rate", start, 10, 0.4, service=svc))
        clock = FakeClock(start)
        Script(AlertEngine(load_config(rules), StoreBackend(store), store, clock), clock).run_until(
            start + 9 * MIN, step=timedelta(seconds=30))
    finally:
        store.close()


def watch_receivers(rx: Any, seen: dict[str, float], stop: threading.Event) -> None:
    """When Slack's first request and PagerDuty's first page arrived (monotonic time)."""
    while not stop.wait(0.05):
        if "slack" not in seen and rx.received("slack"):
            seen["slack"] = time.monotonic()
        if "page" not in seen and rx.pages():
            seen["page"] = time.monotonic()


def attack_receivers(t: Target, r: Result, rx: Any, seen: dict[str, float]) -> None:
    r.sent = "Slack receiver sends headers then 1 byte / 2 s (300 s); PagerDuty for another service is due"
    deadline = time.monotonic() + 60
    while "page" not in seen and time.monotonic() < deadline:
        time.sleep(0.1)
    ready = seen["ready"]

    def since_ready(key: str) -> str:
        return f"{seen[key] - ready:+.1f} s" if key in seen else "never"
    r.answers.append(f"PagerDuty page {since_ready('page')} from server ready, Slack's first request "
                     f"{since_ready('slack')} (server start took {ready - seen['spawn']:.1f} s); "
                     f"Slack requests {len(rx.received('slack'))}, accepted {len(rx.payloads('slack'))}")
    r.expect("page" in seen, "no PagerDuty page while Slack trickled")
    r.expect("page" in seen and seen["page"] - ready < 15, "PagerDuty page late")
    time.sleep(max(0.0, 12 - (time.monotonic() - ready)))   # past Slack's 10 s send deadline
    out = t.client.get(f"{t.url}/v1/query/notifications", headers=API, params={"receiver": "slack"})
    outcomes = sorted({row.get("outcome") for row in out.json().get("data", [])})
    r.answers.append(f"slack outcomes so far {outcomes}")


def attack_silence(t: Target, r: Result) -> None:
    r.sent = "POST /v1/silences service=~(a|a)*b while an alert for service 'a'*40+'c' fires; 35 s of evaluation"
    resp = t.client.post(f"{t.url}/v1/silences", headers=API, json={
        "matchers": ["service=~(a|a)*b"], "duration": "1h", "created_by": "bench", "comment": "attack"})
    r.answers.append(f"silence {resp.status_code}")
    r.expect(resp.status_code == 201, f"silence answered {resp.status_code}")
    c0, t0 = cpu_s(t.server.process.pid), time.monotonic()
    time.sleep(35)   # the evaluator runs every 15 s and each group flushes every 10 s
    cpu = (cpu_s(t.server.process.pid) - c0) / (time.monotonic() - t0)
    firing = t.client.get(f"{t.url}/v1/query/alerts", headers=API, params={"state": "firing"})
    r.answers.append(f"alerts query {firing.status_code}, {len(firing.json().get('data', []))} firing")
    r.notes.append(f"server CPU {cpu:.0%} of one core over the 35 s")
    r.expect(cpu < 0.9, f"server CPU pinned ({cpu:.0%})")


def attack_sigterm(t: Target, r: Result, rx: Any) -> None:
    from store.db import Store

    r.sent = "SIGTERM while Slack still trickles"
    r.probe_expected = False
    t0 = time.monotonic()
    t.server.process.send_signal(signal.SIGTERM)
    try:
        t.server.process.wait(30)
        code = t.server.process.returncode
    except Exception:  # noqa: BLE001 - TimeoutExpired
        code = None
    took = time.monotonic() - t0
    r.answers.append(f"exit {code} after {took:.1f} s")
    r.expect(code is not None and took < 10, f"shutdown took {took:.1f} s")
    store = Store(Settings(data_dir=str(t.server.data_dir)).db_path)   # the lock is free
    try:
        states = {row["receiver"]: row["state"] for row in store.query(
            "SELECT receiver, state FROM alert_outbox WHERE receiver IN ('slack', 'pagerduty')").to_pylist()}
    finally:
        store.close()
    r.answers.append(f"outbox {states}")
    r.expect(states.get("slack") == "pending" and states.get("pagerduty") == "delivered", "outbox states")
    r.after = "stopped (database lock released)"


# --- driver ---------------------------------------------------------------------------------------

def serve(data: Path, env: dict[str, str]) -> Target:
    server = start_server(data, env={**SERVER_ENV, **env}, timeout=120)
    rss = RssSampler(server.process.pid)
    rss.start()
    return Target(server, Probe(server.url), rss, httpx.Client(timeout=120))


def shut(t: Target) -> None:
    t.probe.close()
    t.rss.halt.set()
    t.client.close()
    if t.server.process.poll() is None:
        t.server.process.terminate()
        try:
            t.server.process.wait(30)
        except Exception:  # noqa: BLE001
            t.server.process.kill()


def load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    names = [*MAIN_ATTACKS, "receivers", "silence", "sigterm"]
    ap = argparse.ArgumentParser(description=__doc__ + ", ".join(names))
    ap.add_argument("--only", help="comma-separated attacks to run")
    ap.add_argument("--seconds", type=float, default=20, help="length of the plain ingest run")
    args = ap.parse_args()
    only = [n.strip() for n in args.only.split(",")] if args.only else names
    unknown = set(only) - set(names)
    if unknown:
        ap.error(f"unknown attack(s) {sorted(unknown)}; choose from {names}")
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {load()}", flush=True)
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        if any(n in MAIN_ATTACKS for n in only):
            t = serve(Path(tmp) / "main", {})
            try:
                for name in (n for n in MAIN_ATTACKS if n in only):
                    attack = MAIN_ATTACKS[name]
                    fn = (lambda tt, rr: attack_ingest(tt, rr, args.seconds)) if name == "ingest" else attack
                    results.append(run_attack(name, t, fn))
                    print(f"  {name}: {results[-1].seconds:.1f} s, {'ok' if not results[-1].broken else 'BROKEN'}",
                          flush=True)
            finally:
                shut(t)
        paging = [n for n in ("receivers", "silence", "sigterm") if n in only]
        if paging:
            from fakes.receivers import FakeReceivers

            with FakeReceivers(hang_s=300, trickle_s=2) as rx:
                rx.default["slack"] = "trickle"
                data, rules = Path(tmp) / "paging", Path(tmp) / "rules.yaml"
                data.mkdir()
                prepare_alerts(data, rules, rx)
                seen, stop = {"spawn": time.monotonic()}, threading.Event()
                threading.Thread(target=watch_receivers, args=(rx, seen, stop), daemon=True).start()
                t = serve(data, {"AIWATCH_ALERTS_RULES": str(rules)})
                seen["ready"] = time.monotonic()
                try:
                    steps = {"receivers": lambda tt, rr: attack_receivers(tt, rr, rx, seen),
                             "silence": attack_silence,
                             "sigterm": lambda tt, rr: attack_sigterm(tt, rr, rx)}
                    for name in paging:
                        results.append(run_attack(name, t, steps[name]))
                        print(f"  {name}: {results[-1].seconds:.1f} s, "
                              f"{'ok' if not results[-1].broken else 'BROKEN'}", flush=True)
                finally:
                    stop.set()
                    rx.release()
                    shut(t)
    print(f"\n{load()} at the end\n")
    for res in results:
        print(f"## {res.name}  ({res.seconds:.1f} s)")
        print(f"  sent:    {res.sent}")
        print(f"  answers: {'; '.join(res.answers)}")
        for note in res.notes:
            print(f"  note:    {note}")
        print(f"  probe:   p50 / max {res.probe or 'no samples'}")
        print(f"  RSS:     peak {res.rss_mb:,.0f} MiB (server + ingest workers)")
        print(f"  after:   {res.after}")
        print(f"  verdict: {'held' if not res.broken else 'BROKEN: ' + '; '.join(res.broken)}\n")
    broken = [r.name for r in results if r.broken]
    print(f"{len(results) - len(broken)}/{len(results)} held" + (f"; broken: {', '.join(broken)}" if broken else ""))
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
