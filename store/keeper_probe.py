"""Does each Keeper / ZooKeeper node answer? A ZooKeeper handshake with a deadline, from Python.

chdb's engine talks to Keeper inside one process-wide engine: a node that accepts the connection and
never answers (hung, overloaded, a half-open load balancer) held a KeeperMap statement, and with it
every query of the process, for minutes, past the engine's own session and operation timeouts. So
before the engine touches Keeper, each node is asked for a session here (ConnectRequest, then the
session is closed at once); a node that refuses the connection is left to the engine (it skips it
quickly), a node that accepts and does not answer in time makes Keeper count as away this time.
"""
from __future__ import annotations

import contextlib
import socket
import struct
import time

# ConnectRequest: protocolVersion 0, lastZxidSeen 0, timeOut ms, sessionId 0, passwd (16 zero bytes), readOnly
_SESSION_MS = 2000
_CONNECT = struct.pack(">iqiqi16s?", 0, 0, _SESSION_MS, 0, 16, b"\0" * 16, False)   # readOnly: no
_CLOSE = struct.pack(">iii", 8, 1, -11)     # length, xid, type closeSession


def _answers(host: str, port: int, deadline_s: float) -> bool | None:
    """True: the node answered the handshake; False: it accepted and said nothing in time (or
    something that is not ZooKeeper's answer); None: it refused or could not be reached."""
    end = time.monotonic() + deadline_s
    try:
        sock = socket.create_connection((host, port), timeout=deadline_s)
    except OSError:
        return None
    with sock:
        try:
            sock.sendall(struct.pack(">i", len(_CONNECT)) + _CONNECT)
            got = b""
            while len(got) < 4:
                sock.settimeout(max(0.01, end - time.monotonic()))
                chunk = sock.recv(64)
                if not chunk:
                    return False
                got += chunk
            length = struct.unpack(">i", got[:4])[0]
            answered = 16 <= length <= 1024       # protocolVersion, timeOut, sessionId, passwd
            if answered:
                with contextlib.suppress(OSError):
                    sock.sendall(_CLOSE)          # the session ends now rather than at its timeout
            return answered
        except OSError:                           # timeout, reset
            return False


def unanswering(nodes: tuple[tuple[str, int], ...], deadline_s: float) -> list[str]:
    """`host:port` of each node that accepts connections but does not answer within `deadline_s`."""
    return [f"{host}:{port}" for host, port in nodes if _answers(host, port, deadline_s) is False]
