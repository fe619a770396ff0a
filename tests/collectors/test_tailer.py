"""The JSONL audit tailer: rotation, truncation, partial lines, restarts without duplicates."""
from __future__ import annotations

import json
import os

from collectors.content import ContentPolicy
from collectors.tailer import AuditTailer
from store.db import Store


def line(request_id: str, **extra) -> str:
    return json.dumps({"time": "2026-11-25T10:00:00Z", "service": "svc", "event.name": "aiwatch.audit",
                       "aiwatch.request.id": request_id, "aiwatch.input": "hi bob@example.com", **extra}) + "\n"


def ids(store: Store) -> list[str]:
    return sorted(store.query("SELECT request_id FROM audit_events").column(0).to_pylist())


def make_tailer(store, tmp_path):
    from collectors.content import default_policy

    return AuditTailer(store, [str(tmp_path / "audit.jsonl*")], default_policy())


def test_lines_are_read_once_across_restarts_and_rotation(tmp_path):
    db = tmp_path / "t.duckdb"
    log = tmp_path / "audit.jsonl"
    third = line("c")
    log.write_text(line("a") + line("b") + third[:25])  # the last line is still being written
    store = Store(db)
    tailer = make_tailer(store, tmp_path)
    tailer.load_offsets()
    tailer.poll()
    assert ids(store) == ["a", "b"]
    store.close()
    # Restart: the committed offset survives; the partial line completes; then the file rotates.
    with log.open("a") as f:
        f.write(third[25:])
    store = Store(db)
    tailer = make_tailer(store, tmp_path)
    tailer.load_offsets()
    tailer.poll()
    assert ids(store) == ["a", "b", "c"]
    os.rename(log, tmp_path / "audit.jsonl.1")
    with (tmp_path / "audit.jsonl.1").open("a") as f:
        f.write(line("d"))  # written to the old file just before the service reopened
    log.write_text(line("e"))
    tailer.poll()
    # A second restart reads nothing again.
    tailer = make_tailer(store, tmp_path)
    tailer.load_offsets()
    assert tailer.poll() == 0
    assert ids(store) == ["a", "b", "c", "d", "e"]
    [text] = store.query("SELECT input_text FROM audit_events WHERE request_id = 'a'").column(0).to_pylist()
    assert "bob@example.com" not in text
    store.close()


def test_bad_lines_are_skipped_and_counted(tmp_path, store):
    (tmp_path / "audit.jsonl").write_text("not json\n" + line("ok") + json.dumps({"event.name": "aiwatch.feedback",
                                          "aiwatch.request.id": "r", "aiwatch.feedback.action": "rejected"}) + "\n"
                                          + json.dumps({"event.name": "aiwatch.feedback"}) + "\n")
    tailer = make_tailer(store, tmp_path)
    tailer.poll()
    assert ids(store) == ["ok"]
    assert store.scalar("SELECT count(*) FROM feedback") == 1
    assert tailer.bad_lines == 2


def test_truncated_file_starts_over(tmp_path, store):
    log = tmp_path / "audit.jsonl"
    log.write_text(line("a") + line("b"))
    tailer = make_tailer(store, tmp_path)
    tailer.poll()
    log.write_text(line("z"))  # copytruncate-style rotation
    tailer.poll()
    assert ids(store) == ["a", "b", "z"]


def test_policy_drop_removes_audit_text(tmp_path, store):
    (tmp_path / "audit.jsonl").write_text(line("a"))
    tailer = AuditTailer(store, [str(tmp_path / "audit.jsonl")], ContentPolicy(mode="drop"))
    tailer.poll()
    assert store.scalar("SELECT input_text FROM audit_events") is None


def test_the_server_tails_configured_files(tmp_path):
    import time

    from server_harness import start_server, stop_server

    (tmp_path / "audit.jsonl").write_text(line("srv-1"))
    srv = start_server(tmp_path / "data", env={"AIWATCH_AUDIT_PATHS": str(tmp_path / "audit.jsonl*"),
                                               "AIWATCH_AUDIT_POLL_S": "0.1"})
    try:
        with (tmp_path / "audit.jsonl").open("a") as f:
            f.write(line("srv-2"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            rows = srv.query("audit_events", start="2026-11-25T00:00:00", end="2026-11-26T00:00:00")
            if len(rows) == 2:
                break
            time.sleep(0.1)
        assert sorted(r["request_id"] for r in rows) == ["srv-1", "srv-2"]
        assert rows[0]["source"].startswith("file:")
    finally:
        stop_server(srv)
