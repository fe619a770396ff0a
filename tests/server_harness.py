"""Start and stop a real aiwatch server (a subprocess on a free loopback port) for tests and benches."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    url: str
    port: int
    data_dir: Path
    process: subprocess.Popen
    log_path: Path

    def query(self, name: str, **params: object) -> list[dict]:
        r = httpx.get(f"{self.url}/v1/query/{name}", params={k: str(v) for k, v in params.items()}, timeout=30)
        r.raise_for_status()
        return r.json()["data"]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.process.send_signal(sig)
        self.process.wait(30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(data_dir: Path, port: int | None = None, env: dict[str, str] | None = None,
                 timeout: float = 60, command: list[str] | None = None) -> RunningServer:
    """`command` runs instead of `python -m aiwatch` (it takes the same arguments)."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"server-{port}.log"
    # One conversion worker keeps the worker-process path under test while servers stay light.
    full_env = {**os.environ, "AIWATCH_SCHEDULER_ENABLED": "false", "AIWATCH_INGEST_WORKERS": "1", **(env or {})}
    proc = subprocess.Popen(
        [*(command or [sys.executable, "-m", "aiwatch"]), "--log-level", "WARNING", "serve", "--port", str(port),
         "--data-dir", str(data_dir)],
        cwd=ROOT, env=full_env, stdout=log_path.open("ab"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return RunningServer(url, port, data_dir, proc, log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not become ready:\n{log_path.read_text()}")


def stop_server(server: RunningServer) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(30)
        except subprocess.TimeoutExpired:
            server.process.kill()
