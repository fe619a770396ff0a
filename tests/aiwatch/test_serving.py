"""Connections against a real server: idle and slow sockets cannot starve requests or probes.

Every test opens real TCP sockets to a real `aiwatch serve` process. Deadlines in these tests are
generous upper bounds so a loaded machine does not fail them; they assert that something happens,
not how fast.
"""
from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from google.rpc import status_pb2
from otlp_builders import span_request
from server_harness import RunningServer, start_server, stop_server

PB = {"content-type": "application/x-protobuf"}
DEADLINE_S = 30  # generous: "promptly" means long before this on any machine


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the module: each test closes or finishes every connection it opens."""
    srv = start_server(tmp_path_factory.mktemp("guarded") / "data", env={"AIWATCH_HEADER_TIMEOUT_S": "2", "AIWATCH_BODY_TIMEOUT_S": "2",
                                               "AIWATCH_MAX_CONCURRENT_REQUESTS": "2"})
    yield srv
    stop_server(srv)


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S)
    return s


def _read_until_closed(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (socket timeout: DEADLINE_S)."""
    chunks = []
    while True:
        data = s.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def _spans_body(service: str) -> bytes:
    return span_request([{"name": "probe", "attributes": {"gen_ai.request.model": "m"}}],
                        service=service).SerializeToString()


def test_300_idle_connections_do_not_turn_requests_or_probes_into_503(guarded_server):
    srv = guarded_server
    idle = [_connect(srv.port) for _ in range(300)]
    # A few more that started a request and stalled inside the headers.
    stalled = [_connect(srv.port) for _ in range(20)]
    for s in stalled:
        s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")
    try:
        with httpx.Client(timeout=DEADLINE_S) as client:
            assert client.get(f"{srv.url}/healthz").status_code == 200
            assert client.get(f"{srv.url}/readyz").status_code == 200
            r = client.post(f"{srv.url}/v1/traces", content=_spans_body("idle-siege"), headers=PB)
            assert r.status_code == 200, r.text
        assert [row["name"] for row in srv.query("spans", service="idle-siege")] == ["probe"]
        # The header deadline (2 s here) closes every one of them: recv sees end-of-stream.
        for s in idle + stalled:
            assert _read_until_closed(s) == b""
    finally:
        for s in idle + stalled:
            s.close()


def test_a_client_dribbling_headers_is_closed_at_the_header_deadline(guarded_server):
    s = _connect(guarded_server.port)
    try:
        s.settimeout(0.4)
        started = time.monotonic()
        closed = False
        # One header byte every 0.2 s never completes the request; old servers waited forever.
        for byte in b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 400:
            try:
                s.sendall(bytes([byte]))
                if s.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
            except OSError:
                closed = True
                break
            if time.monotonic() - started > DEADLINE_S:
                break
        assert closed, "the server kept a header-dribbling connection open"
    finally:
        s.close()


def test_a_stalled_body_is_answered_408_and_closed(guarded_server):
    s = _connect(guarded_server.port)
    try:
        s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\ncontent-type: application/x-protobuf\r\n"
                  b"content-length: 1000\r\n\r\n" + b"\x0a" * 10)
        answer = _read_until_closed(s)
    finally:
        s.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"body_timeout" in answer
    # One warning line for the stalled client, no traceback.
    log = guarded_server.log()
    assert "Traceback" not in log


def test_over_the_limit_of_requests_in_progress_answers_otlp_503_with_retry_after(guarded_server):
    srv = guarded_server
    body = _spans_body("limit")
    # Two requests in progress (headers sent, body half-sent): the limit is 2.
    slow = [_connect(srv.port) for _ in range(2)]
    for s in slow:
        s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\ncontent-type: application/x-protobuf\r\n"
                  + f"content-length: {len(body)}\r\n\r\n".encode() + body[:5])
    try:
        with httpx.Client(timeout=DEADLINE_S) as client:
            deadline = time.monotonic() + DEADLINE_S
            while "aiwatch_requests_in_progress 2" not in client.get(f"{srv.url}/metrics").text:
                assert time.monotonic() < deadline, "the two slow requests never started"
                time.sleep(0.02)
            r = client.post(f"{srv.url}/v1/traces", content=body, headers=PB)
            assert r.status_code == 503
            assert r.headers["retry-after"] == "2"
            assert r.headers["content-type"] == "application/x-protobuf"
            status = status_pb2.Status.FromString(r.content)
            assert status.code == 14 and "in progress" in status.message
            r = client.post(f"{srv.url}/v1/traces", json={"resourceSpans": []})
            assert r.status_code == 503 and r.json()["code"] == 14
            # Probes are not limited.
            assert client.get(f"{srv.url}/healthz").status_code == 200
            assert client.get(f"{srv.url}/readyz").status_code == 200
            for s in slow:  # finishing the bodies frees the slots
                s.sendall(body[5:])
            for s in slow:
                assert s.recv(65536).startswith(b"HTTP/1.1 200")
            r = client.post(f"{srv.url}/v1/traces", content=body, headers=PB)
            assert r.status_code == 200
    finally:
        for s in slow:
            s.close()


def test_a_client_that_disconnects_mid_body_leaves_one_log_line(guarded_server):
    srv = guarded_server
    line = "disconnected before its body was complete"
    before = srv.log().count(line)   # the server is the module's: count this test's line only
    s = _connect(srv.port)
    s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\ncontent-type: application/x-protobuf\r\n"
              b"content-length: 5000\r\n\r\n" + b"\x0a" * 100)
    time.sleep(0.3)
    s.close()
    deadline = time.monotonic() + DEADLINE_S
    while srv.log().count(line) == before:
        assert time.monotonic() < deadline, srv.log()
        time.sleep(0.05)
    assert "Traceback" not in srv.log()
    assert httpx.get(f"{srv.url}/healthz", timeout=DEADLINE_S).status_code == 200


def test_headers_over_64_kib_are_refused_with_431(guarded_server):
    s = _connect(guarded_server.port)
    try:
        # 66 x 1 KiB header lines, never finished, sent at once (the server reads them all before it
        # answers, so its close does not reset the connection under our reply).
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                  + b"".join(f"X-Pad-{i}: ".encode() + b"a" * 1024 + b"\r\n" for i in range(66)))
        answer = _read_until_closed(s)
    finally:
        s.close()
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
