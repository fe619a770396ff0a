"""A loopback fake of the OpenAI chat completions API: for tests, and for the demo's live traffic.

Start it, point any OpenAI-compatible client at `server.base_url` (".../v1"), and script what
each request gets::

    with FakeOpenAI() as server:
        server.script("429", "500", "ok")          # first three requests, in order
        server.default = Behavior("ok", content="hi")  # every request after the queue is empty
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
        ...
        assert len(server.requests) == 3

Behaviours (a `Behavior` or its kind as a string):
  ok              200 chat.completion (or an SSE stream when the request says "stream": true;
                  a final usage chunk is sent when stream_options.include_usage is true)
  stream_stall    streams `stall_after` chunks, then goes silent (holds the socket) for `delay` s
  rate_limit|429  429 with a Retry-After header (`retry_after`, default 1) and an OpenAI error body
  server|500      500 with an OpenAI error body (`status` overrides the code: 502, 503 ...)
  context_length  400 with code "context_length_exceeded"
  content_filter  400 with code "content_filter" (Azure style); use Behavior("ok",
                  finish_reason="content_filter") for a 200 that was filtered
  auth|401        401 invalid_api_key
  hang            accepts the request and answers nothing for `delay` s (default 30)
  garbage         200 with a non-JSON body
  slow            like ok, after sleeping `delay` s

Every request is recorded in `server.requests` (method, path, headers, parsed JSON body).
Only 127.0.0.1 and a free port are used. Hanging handlers are released on `close()`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Behavior", "FakeOpenAI", "RecordedRequest"]

_ALIASES = {"429": "rate_limit", "500": "server", "401": "auth", "400": "context_length"}


@dataclass
class Behavior:
    """What the fake does with one request. See the module docstring for the kinds."""

    kind: str = "ok"
    content: str = "Hello from the fake."
    model: str | None = None          # response "model"; defaults to the requested model
    retry_after: float | None = 1     # for rate_limit; None omits the header
    status: int | None = None         # overrides the status code of error kinds
    delay: float = 30.0               # hang / stall / slow duration in seconds
    stall_after: int = 2              # chunks sent before a stream_stall goes silent
    chunk_size: int = 4               # characters per streamed chunk
    finish_reason: str = "stop"
    prompt_tokens: int = 12
    completion_tokens: int = 7
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    logprobs: list[float] | None = None   # per-token logprobs to return in choices[0].logprobs
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.kind = _ALIASES.get(self.kind, self.kind)
        if self.kind == "slow" and self.delay == 30.0:
            self.delay = 0.2


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    time: float


class FakeOpenAI:
    """A threaded HTTP server on 127.0.0.1 speaking /v1/chat/completions (see module docstring)."""

    def __init__(self, default: Behavior | str = "ok", record: bool = True, port: int = 0) -> None:
        self.default: Behavior = default if isinstance(default, Behavior) else Behavior(default)
        # Decides per request once the script is empty (the demo draws latency and incidents here).
        self.chooser: Callable[[dict[str, Any]], Behavior] | None = None
        self.record = record  # a long-running demo keeps no request log
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Behavior] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._counter = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._make_handler())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- lifecycle ---
    def start(self) -> FakeOpenAI:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)   # fast shutdown
        self._thread.start()
        return self

    def release(self) -> None:
        """End every hanging or stalled answer now (the connection closes unanswered)."""
        self._release.set()

    def close(self) -> None:
        self._release.set()   # wake hanging handlers
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # --- scripting ---
    def script(self, *behaviors: Behavior | str) -> None:
        """Queue behaviours for the next requests, in order; `default` applies once it is empty."""
        with self._lock:
            for b in behaviors:
                self._queue.append(b if isinstance(b, Behavior) else Behavior(b))

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.default = Behavior("ok")

    def _next(self, body: dict[str, Any]) -> tuple[Behavior, int]:
        with self._lock:
            self._counter += 1
            if self._queue:
                return self._queue.popleft(), self._counter
            n = self._counter
        return (self.chooser(body) if self.chooser else self.default), n

    # --- HTTP ---
    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True   # headers and body are separate writes: avoid 40 ms ACK stalls

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = raw.decode(errors="replace")
                if fake.record:
                    with fake._lock:
                        fake.requests.append(RecordedRequest(
                            "POST", self.path, dict(self.headers.items()), body, time.time()))
                behavior, n = fake._next(body if isinstance(body, dict) else {})
                fake._serve(self, behavior, body if isinstance(body, dict) else {}, n)

            def _json(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _serve(self, h: Any, b: Behavior, body: dict[str, Any], n: int) -> None:
        model = b.model or body.get("model") or "fake-model"
        kind = b.kind
        try:
            if kind == "hang":
                self._release.wait(b.delay)
                h.close_connection = True
                return
            if kind == "slow":
                self._release.wait(b.delay)
                kind = "ok"
            if kind == "rate_limit":
                extra = dict(b.headers)
                if b.retry_after is not None:
                    extra["Retry-After"] = f"{b.retry_after:g}"
                h._json(b.status or 429, _error("Rate limit reached for requests", "requests", "rate_limit_exceeded"), extra)
            elif kind == "server":
                h._json(b.status or 500, _error("The server had an error while processing your request.", "server_error", None), b.headers)
            elif kind == "context_length":
                h._json(b.status or 400, _error(
                    "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
                    "invalid_request_error", "context_length_exceeded", param="messages"), b.headers)
            elif kind == "content_filter":
                h._json(b.status or 400, _error(
                    "The response was filtered due to the prompt triggering the content management policy.",
                    "invalid_request_error", "content_filter", param="prompt"), b.headers)
            elif kind == "auth":
                h._json(b.status or 401, _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"), b.headers)
            elif kind == "garbage":
                data = b"<html>502 Bad Gateway?? \x00\xff not json"
                h.send_response(b.status or 200)
                h.send_header("Content-Type", "application/json")
                h.send_header("Content-Length", str(len(data)))
                h.end_headers()
                h.wfile.write(data)
            elif kind in ("ok", "stream_stall"):
                if body.get("stream") or kind == "stream_stall":
                    self._stream(h, b, body, model, n, stall=kind == "stream_stall")
                else:
                    h._json(200, _completion(b, model, n), b.headers)
            else:
                raise ValueError(f"unknown fake behaviour {kind!r}")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeouts): expected in these tests

    def _stream(self, h: Any, b: Behavior, body: dict[str, Any], model: str, n: int, stall: bool) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Connection", "close")   # body ends when the socket closes
        for k, v in b.headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.close_connection = True
        cid = f"chatcmpl-fake{n}"
        created = int(time.time())

        def send(payload: Any) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            h.wfile.write(f"data: {data}\n\n".encode())
            h.wfile.flush()

        def chunk(delta: dict[str, Any], finish: str | None = None, logprob: float | None = None) -> dict[str, Any]:
            choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
            if logprob is not None:
                choice["logprobs"] = {"content": [{"token": delta.get("content", ""), "logprob": logprob}]}
            return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [choice]}

        send(chunk({"role": "assistant", "content": ""}))
        pieces = [b.content[i:i + b.chunk_size] for i in range(0, len(b.content), b.chunk_size)] or [""]
        for i, piece in enumerate(pieces):
            if stall and i >= b.stall_after:
                self._release.wait(b.delay)
                return
            lp = b.logprobs[i] if b.logprobs and i < len(b.logprobs) else None
            send(chunk({"content": piece}, logprob=lp))
        send(chunk({}, finish=b.finish_reason))
        if (body.get("stream_options") or {}).get("include_usage"):
            send({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                  "choices": [], "usage": _usage(b)})
        send("[DONE]")


def _usage(b: Behavior) -> dict[str, Any]:
    return {
        "prompt_tokens": b.prompt_tokens,
        "completion_tokens": b.completion_tokens,
        "total_tokens": b.prompt_tokens + b.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": b.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": b.reasoning_tokens},
    }


def _completion(b: Behavior, model: str, n: int) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": b.content},
        "finish_reason": b.finish_reason,
    }
    if b.logprobs is not None:
        choice["logprobs"] = {"content": [{"token": "t", "logprob": lp} for lp in b.logprobs]}
    return {
        "id": f"chatcmpl-fake{n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": _usage(b),
    }


def _error(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
