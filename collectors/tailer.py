"""Tail JSONL audit files into the store, exactly once across restarts.

Each file is tracked by (device, inode), so a rotated file keeps its progress under its new name
and a new file at the old path starts from zero. The byte offset is committed in the same
transaction as the rows read up to it: a crash either keeps both or neither, so no line is ingested
twice and none is skipped. A partly written last line waits for its newline.
"""
from __future__ import annotations

import glob
import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from collectors.content import ContentPolicy
from collectors.events import BadEvent, audit_row, feedback_row
from collectors.logs import rows_to_table
from collectors.scrub import scrub_mapping
from core import semconv as sc
from store.base import Store

log = logging.getLogger(__name__)

READ_CHUNK = 4 * 1024 * 1024


@dataclass
class _Tracked:
    path: str
    offset: int
    handle: Any = None


def _time_us(value: Any) -> int:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # unix nanoseconds (as the OTLP logs use), or seconds if it is obviously small
        return int(value // 1000) if value > 1e14 else int(value * 1_000_000)
    if isinstance(value, str):
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp() * 1_000_000)
    raise BadEvent(f"time {value!r} is not RFC 3339 or unix nanoseconds")


def parse_line(line: bytes, source: str, policy: ContentPolicy) -> tuple[str, dict[str, Any]]:
    """('audit_events' | 'feedback', row) for one JSONL line; BadEvent when it is unusable."""
    try:
        data = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadEvent(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadEvent("line is not a JSON object")
    time_us = _time_us(data.pop("time", None) or datetime.now(UTC).isoformat())
    service = data.pop("service", None)
    trace_id, span_id = data.pop("trace_id", None), data.pop("span_id", None)
    data = scrub_mapping(data, policy)
    event = data.get(sc.EVENT_NAME, sc.EVENT_AUDIT)
    if event == sc.EVENT_FEEDBACK:
        return "feedback", feedback_row(data, time_us, service, trace_id, source, policy)
    if event == sc.EVENT_AUDIT:
        return "audit_events", audit_row(data, time_us, service, trace_id, span_id, source, policy)
    raise BadEvent(f"unknown event.name {event!r}")


class AuditTailer:
    def __init__(self, store: Store, globs: list[str], policy: ContentPolicy, poll_s: float = 1.0,
                 metrics: Any = None) -> None:
        self._store = store
        self._globs = globs
        self._policy = policy
        self._poll_s = poll_s
        self._metrics = metrics
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aiwatch-audit-tailer", daemon=True)
        self._tracked: dict[tuple[int, int], _Tracked] = {}
        self._poll_lock = threading.Lock()
        self.bad_lines = 0
        self.lines = 0

    def load_offsets(self) -> None:
        """Resume from the offsets committed with the rows (what makes restarts exactly-once)."""
        rows = self._store.query("SELECT device, inode, path, offset_bytes FROM tail_offsets").to_pylist()
        self._tracked = {(r["device"], r["inode"]): _Tracked(r["path"], r["offset_bytes"]) for r in rows}

    def start(self) -> None:
        self.load_offsets()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        for t in self._tracked.values():
            if t.handle:
                t.handle.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - keep tailing; the next poll retries
                log.exception("audit tailer poll failed")
            self._stop.wait(self._poll_s)

    def poll(self) -> int:
        """Read every new complete line once; returns the number of rows written."""
        with self._poll_lock:
            return self._poll()

    def _poll(self) -> int:
        written = 0
        seen: set[tuple[int, int]] = set()
        for pattern in self._globs:
            for path in sorted(glob.glob(pattern)):
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    continue
                key = (st.st_dev, st.st_ino)
                seen.add(key)
                tracked = self._tracked.setdefault(key, _Tracked(path, 0))
                tracked.path = path
                if st.st_size < tracked.offset:  # truncated in place (copytruncate): start over
                    tracked.offset = 0
                while st.st_size > tracked.offset:
                    n = self._read(key, tracked)
                    if n < 0:
                        break
                    written += n
        # A file renamed out of the globs (rotation) is drained through its open handle, then let go.
        for key in [k for k, t in self._tracked.items() if k not in seen and t.handle]:
            tracked = self._tracked[key]
            while self._read(key, tracked) > 0:
                pass
            tracked.handle.close()
            tracked.handle = None
        return written

    def _read(self, key: tuple[int, int], tracked: _Tracked) -> int:
        if tracked.handle is None:
            try:
                tracked.handle = open(tracked.path, "rb")
            except FileNotFoundError:
                return -1
            if os.fstat(tracked.handle.fileno()).st_ino != key[1]:
                tracked.handle.close()
                tracked.handle = None
                return -1
        tracked.handle.seek(tracked.offset)
        chunk = tracked.handle.read(READ_CHUNK)
        end = chunk.rfind(b"\n")
        if end < 0:
            return -1  # no complete line yet
        rows: dict[str, list[dict]] = {"audit_events": [], "feedback": []}
        source = f"file:{tracked.path}"
        for line in chunk[: end + 1].splitlines():
            if not line.strip():
                continue
            try:
                table, row = parse_line(line, source, self._policy)
            except (BadEvent, ValueError) as exc:
                self.bad_lines += 1
                log.warning("skipping bad audit line in %s: %s", tracked.path, exc)
                continue
            rows[table].append(row)
        new_offset = tracked.offset + end + 1
        tables = {name: rows_to_table(r, name) for name, r in rows.items() if r}
        dev, ino = key
        path = tracked.path

        def save_offset(con) -> None:
            con.execute("INSERT OR REPLACE INTO tail_offsets VALUES (?, ?, ?, ?, now())",
                        [path, ino, dev, new_offset])

        self._store.writer.write(tables, fn=save_offset)
        tracked.offset = new_offset
        count = sum(len(r) for r in rows.values())
        self.lines += count
        if self._metrics:
            self._metrics.inc("aiwatch_accepted_total", count, signal="audit_files")
        return count
