"""The demo's stand-in for Slack and PagerDuty: a loopback receiver that prints what alerts deliver.

The server delivers to it exactly as it would to the real services (same payloads, same outbox
and retries); the demo points the receiver URLs here so nothing leaves the machine.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def summarize(path: str, payload: Any) -> str:
    """One console line for a delivered notification."""
    if not isinstance(payload, dict):
        return f"[{path}] {str(payload)[:200]}"
    if path == "pagerduty":
        body = payload.get("payload") or {}
        return (f"PAGERDUTY {payload.get('event_action', '?')}: {body.get('summary', '')} "
                f"(dedup_key {str(payload.get('dedup_key', ''))[:12]})")
    if path == "slack":
        return f"SLACK: {payload.get('text', '')[:300]}"
    status, alerts = payload.get("status", "?"), payload.get("alerts") or []
    names = sorted({(a.get("labels") or {}).get("alertname", "?") for a in alerts if isinstance(a, dict)})
    return f"WEBHOOK {status}: {', '.join(names)} ({len(alerts)} alert(s))"


class DemoInbox:
    def __init__(self, port: int = 0) -> None:
        inbox = self
        self.received: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(raw)
                except ValueError:
                    payload = raw.decode(errors="replace")
                path = self.path.strip("/").split("/")[0] or "webhook"
                with inbox.lock:  # one whole line per delivery, whatever thread delivers it
                    inbox.received.append((path, payload))
                    print(summarize(path, payload), flush=True)
                body = b'{"status": "success"}' if path == "pagerduty" else b"ok"
                self.send_response(202 if path == "pagerduty" else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def env(self) -> dict[str, str]:
        """Receiver settings that point the server's alert delivery at this inbox."""
        return {"AIWATCH_SLACK_WEBHOOK_URL": f"{self.url}/slack", "AIWATCH_PAGERDUTY_URL": f"{self.url}/pagerduty",
                "AIWATCH_PAGERDUTY_ROUTING_KEY": "demo-routing-key", "AIWATCH_ALERTS_WEBHOOK_URL": f"{self.url}/webhook"}

    def start(self) -> DemoInbox:
        threading.Thread(target=self._httpd.serve_forever, name="aiwatch-demo-inbox", daemon=True).start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
