"""How the server meets the network: uvicorn with read deadlines and a limit on requests in progress.

Idle or slow connections cost a file descriptor and nothing else: a connection must send its
headers within `header_timeout_s` and its body within `body_timeout_s`, and only requests the app
is serving count against `max_concurrent_requests` (uvicorn's own limit counts open connections,
so 300 idle sockets turned every request, probes included, into a 503).
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from google.rpc import status_pb2
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from aiwatch.config import Settings
from collectors.decode import JSON, PROTOBUF, serialize
from collectors.pipeline import SIGNALS

log = logging.getLogger("aiwatch.serving")

# Request line plus headers; OTLP clients send a few hundred bytes.
MAX_HEADER_BYTES = 64 * 1024
# Probes and self-metrics answer even when the request limit is reached: a liveness probe that
# fails under load gets a busy server restarted.
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
INGEST_PATHS = frozenset(f"/v1/{name}" for name in SIGNALS)
BODY_TIMED_OUT = "aiwatch.body_timed_out"  # scope key set when the body deadline closed the request


def _raw_response(status: int, reason: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


def guarded_protocol(header_timeout_s: float, body_timeout_s: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with a deadline for the headers and one for the body."""

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        _header_bytes = 0
        _in_headers = True

        def _arm(self, seconds: float, callback: Any) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, callback)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            # A connection that never sends a request is closed like one that sends it too slowly.
            self._arm(header_timeout_s, self._headers_too_slow)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._in_headers and not self.transport.is_closing():  # still no complete headers
                self._header_bytes += len(data)
                if self._header_bytes > MAX_HEADER_BYTES:
                    self._disarm()
                    self.transport.write(_raw_response(431, "Request Header Fields Too Large", json.dumps(
                        {"error": {"code": "headers_too_large",
                                   "message": f"headers are over {MAX_HEADER_BYTES} bytes"}}).encode()))
                    self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_headers = True
            if self._deadline is None:  # a keep-alive connection starts its next request
                self._arm(header_timeout_s, self._headers_too_slow)

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._header_bytes = 0
            self._arm(body_timeout_s, self._body_too_slow)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def _headers_too_slow(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.close()

        def _body_too_slow(self) -> None:
            self._deadline = None
            cycle = self.cycle
            if self.transport.is_closing():
                return
            if cycle is not None and not cycle.response_started:
                body = json.dumps({"error": {"code": "body_timeout", "message":
                                             f"request body not received within {body_timeout_s:g} s"}}).encode()
                self.transport.write(_raw_response(408, "Request Timeout", body))
                cycle.response_started = cycle.response_complete = True
            if cycle is not None:
                # our own key in the scope (uvicorn types it as the ASGI spec's keys): InFlightLimit logs the line
                cycle.scope[BODY_TIMED_OUT] = body_timeout_s  # type: ignore[literal-required]
                cycle.disconnected = True  # the app's next receive() sees http.disconnect
                cycle.message_event.set()
            self.transport.close()

    return GuardedHttpToolsProtocol


class InFlight:
    """Requests the app is serving now (shared by the limit and the /metrics gauge)."""

    def __init__(self) -> None:
        self.count = 0


class InFlightLimit:
    """ASGI middleware: at most `limit` requests in progress; beyond it an OTLP-shaped 503 with Retry-After."""

    def __init__(self, app: ASGIApp, limit: int, retry_after_s: int, counter: InFlight) -> None:
        self.app = app
        self.limit = limit
        self.retry_after = str(retry_after_s).encode()
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.counter.count >= self.limit:
            await self._overloaded(scope, send)
            return
        self.counter.count += 1
        try:
            await self.app(scope, receive, send)
        except ClientDisconnect:
            # Nothing was acknowledged and nobody is listening: one line, not a traceback.
            client = scope["client"][0] if scope.get("client") else "?"
            if BODY_TIMED_OUT in scope:
                log.warning("%s %s from %s: body not received within %g s; answered 408", scope["method"],
                            scope["path"], client, scope[BODY_TIMED_OUT])
            else:
                log.warning("%s %s from %s: client disconnected before its body was complete", scope["method"],
                            scope["path"], client)
        finally:
            self.counter.count -= 1

    async def _overloaded(self, scope: Scope, send: Send) -> None:
        reason = f"{self.limit} requests are in progress; retry later"
        if scope["path"] in INGEST_PATHS:
            # OTLP clients parse a google.rpc.Status in their own encoding and honour Retry-After.
            ctype = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip().lower()
            kind = PROTOBUF if ctype in (b"application/x-protobuf", b"application/protobuf") else JSON
            body = serialize(status_pb2.Status(code=14, message=reason), kind)  # 14: UNAVAILABLE
        else:
            kind = JSON
            body = json.dumps({"error": {"code": "overloaded", "message": reason}}).encode()
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", kind.encode()), (b"content-length", str(len(body)).encode()),
            (b"retry-after", self.retry_after)]})
        await send({"type": "http.response.body", "body": body})


def run(app: ASGIApp, settings: Settings) -> None:
    """Serve `app` (built with InFlightLimit) until SIGINT/SIGTERM, with read deadlines on every connection."""
    import uvicorn

    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False, loop="uvloop",
                http=guarded_protocol(settings.header_timeout_s, settings.body_timeout_s),
                # uvicorn annotates int but schedules it with loop.call_later: fractions of a second work
                timeout_keep_alive=settings.keep_alive_s,  # type: ignore[arg-type]
                timeout_graceful_shutdown=10, lifespan="on")
