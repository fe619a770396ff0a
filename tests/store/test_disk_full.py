"""A full disk, for real: the database lives on a small tmpfs that a filler file fills up.

While writes fail, ingest answers 503 and /readyz fails (with no database text); once space is
freed the writer reopens the database and ingest works again; and every span a client sent, retried
after each 503 as an OTLP exporter does, is stored exactly once (a committed batch is never
answered 503, so its retry cannot duplicate it)."""
from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from otlp_builders import span_request
from server_harness import start_server, stop_server

PB = {"content-type": "application/x-protobuf"}
MB = 1_000_000


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave_bytes: int) -> Path:
    filler = disk / "filler"
    st = os.statvfs(disk)
    with filler.open("wb") as f:
        f.write(b"\0" * max(st.f_bavail * st.f_frsize - leave_bytes, 0))
    return filler


def batch(i: int) -> tuple[bytes, list[str]]:
    ids = [os.urandom(8) for _ in range(400)]   # few spans, long attributes: ~1 MB of WAL a batch
    body = span_request([{"span_id": s, "name": f"chat {i}", "attributes": {
        "gen_ai.request.model": "m", "aiwatch.route": f"route-{i % 7}", "note": os.urandom(1200).hex()}}
        for s in ids], service="diskfull").SerializeToString()
    return body, [s.hex() for s in ids]


def test_a_full_disk_refuses_writes_then_recovers_and_stores_every_span_once(small_disk):
    srv = start_server(small_disk / "data")
    try:
        filler = fill(small_disk, 20 * MB)
        sent: list[str] = []
        refused: list[bytes] = []
        with httpx.Client(timeout=60) as client:
            for i in range(60):      # the disk fills within 25 batches
                body, ids = batch(i)
                sent += ids
                r = client.post(f"{srv.url}/v1/traces", content=body, headers=PB)
                assert r.status_code in (200, 503), r.text
                if r.status_code == 503:
                    assert r.headers["Retry-After"]
                    refused.append(body)
                    if len(refused) >= 3:
                        break
            assert refused, "the disk never filled"
            ready = client.get(f"{srv.url}/readyz")
            assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
            assert "disk" in ready.json()["reason"] and str(small_disk) not in ready.text
            assert client.get(f"{srv.url}/healthz").status_code == 200
            assert "aiwatch_writer_broken 1" in client.get(f"{srv.url}/metrics").text

            filler.unlink()
            deadline = time.monotonic() + 60
            while client.get(f"{srv.url}/readyz").status_code != 200:
                assert time.monotonic() < deadline, "the writer did not recover once space was freed:\n" + srv.log()
                time.sleep(0.2)
            for body in refused:   # the exporter's retries
                r = client.post(f"{srv.url}/v1/traces", content=body, headers=PB)
                assert r.status_code == 200, r.text
            body, ids = batch(999)
            sent += ids
            assert client.post(f"{srv.url}/v1/traces", content=body, headers=PB).status_code == 200
        rows = srv.query("spans", service="diskfull", start="-1h", limit=100_000)
        stored = [r["span_id"] for r in rows]
        assert len(stored) == len(set(stored)), f"{len(stored) - len(set(stored))} spans stored twice"
        assert set(stored) == set(sent)
    finally:
        stop_server(srv)
