"""Loopback fakes of Slack incoming webhooks, the PagerDuty Events API v2 and a generic webhook.

One HTTP server on 127.0.0.1 (free port) answers on three paths and records every request::

    with FakeReceivers() as rx:
        rx.script("slack", "500", "429", "ok")     # next three Slack requests, in order
        rx.default["pagerduty"] = "ok"             # after the queue is empty
        ... point AIWATCH_SLACK_WEBHOOK_URL at rx.url("slack") ...
        assert len(rx.payloads("slack")) == 1      # successful deliveries only
        assert rx.pages() == 1                     # PagerDuty incidents opened

Paths: /slack (answers `ok` like Slack), /pagerduty (202 and a JSON status like Events API v2),
/webhook (200). Behaviours: ok; 500 (or any 5xx); 429 (Retry-After: `retry_after`, default 1);
400_invalid_payload, 404_channel_not_found (Slack-style error bodies); 400 (PagerDuty invalid
event); hang (hold the request for `hang_s`, default 30, without answering); trickle (send 200
headers, then one body byte every `trickle_s` for `hang_s`, so no single read ever times out).
Hanging and trickling handlers are released on close() or release().
"""
from __future__ import annotations

import json
import ssl
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KINDS = ("slack", "pagerduty", "webhook")


@dataclass
class Recorded:
    kind: str
    behavior: str
    body: Any
    headers: dict[str, str]
    status: int


@dataclass
class FakeReceivers:
    retry_after: float = 1
    hang_s: float = 30
    trickle_s: float = 0.5
    requests: list[Recorded] = field(default_factory=list)
    default: dict[str, str] = field(default_factory=lambda: {k: "ok" for k in KINDS})
    tls: ssl.SSLContext | None = None      # serve HTTPS (e.g. for apprise's https-only Teams workflows)

    def __post_init__(self) -> None:
        self._queues: dict[str, deque[str]] = defaultdict(deque)   # any first path segment is a kind
        self._lock = threading.Lock()
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                kind = self.path.strip("/").split("/")[0]
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                behavior = fake._next(kind)
                status, payload, headers = fake._answer(kind, behavior)
                with fake._lock:
                    fake.requests.append(Recorded(kind, behavior, body, dict(self.headers), status))
                if behavior == "hang":
                    fake._release.wait(fake.hang_s)
                    self.close_connection = True
                    return
                if behavior == "trickle":
                    fake._trickle(self, status, payload)
                    return
                data = payload.encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="fake-receivers", daemon=True)
        self._thread.start()

    def _trickle(self, handler: BaseHTTPRequestHandler, status: int, payload: str) -> None:
        steps = max(1, int(self.hang_s / self.trickle_s))
        data = b" " * steps + payload.encode()
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.flush()
        try:
            for i in range(steps):
                handler.wfile.write(data[i:i + 1])
                handler.wfile.flush()
                if self._release.wait(self.trickle_s):
                    break
            else:
                handler.wfile.write(data[steps:])
        except OSError:      # the client gave up: what a deadline is for
            pass
        handler.close_connection = True

    # --- scripting ---
    def script(self, kind: str, *behaviors: str) -> None:
        with self._lock:
            self._queues[kind].extend(behaviors)

    def _next(self, kind: str) -> str:
        with self._lock:
            q = self._queues.get(kind)
            if q:
                return q.popleft()
            return self.default.get(kind, "ok")

    def _answer(self, kind: str, behavior: str) -> tuple[int, str, dict[str, str]]:
        if behavior in ("ok", "hang", "trickle"):
            if kind == "pagerduty":
                return 202, json.dumps({"status": "success", "message": "Event processed"}), \
                    {"Content-Type": "application/json"}
            return 200, "ok", {"Content-Type": "text/plain"}
        if behavior == "429":
            return 429, "rate_limited", {"Retry-After": f"{self.retry_after:g}"}
        if behavior.startswith("4") and "_" in behavior:
            code, _, error = behavior.partition("_")
            return int(code), error, {"Content-Type": "text/plain"}
        if behavior == "400":
            return 400, json.dumps({"status": "invalid event", "message": "Event object is invalid",
                                    "errors": ["'routing_key' is invalid"]}), {"Content-Type": "application/json"}
        return int(behavior), "server error", {"Content-Type": "text/plain"}

    # --- inspection ---
    def url(self, kind: str) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/{kind}"

    def received(self, kind: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.kind == kind]

    def payloads(self, kind: str) -> list[Any]:
        """Bodies the receiver accepted (2xx)."""
        return [r.body for r in self.received(kind) if 200 <= r.status < 300 and r.behavior not in ("hang", "trickle")]

    def pages(self) -> int:
        """Incidents PagerDuty would have opened: a trigger for a dedup_key that is not already open."""
        open_keys: set[str] = set()
        pages = 0
        for body in self.payloads("pagerduty"):
            key, action = body.get("dedup_key"), body.get("event_action")
            if action == "trigger" and key not in open_keys:
                open_keys.add(key)
                pages += 1
            elif action == "resolve":
                open_keys.discard(key)
        return pages

    def release(self) -> None:
        """End every hanging or trickling answer now."""
        self._release.set()

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeReceivers:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
