"""What every JSON endpoint of the server shares: bearer-token checks and structured errors."""
from __future__ import annotations

import hmac
import uuid

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


def request_id(request: Request) -> str:
    """The caller's X-Request-Id, or a new one: every response carries one."""
    return request.headers.get("x-request-id") or uuid.uuid4().hex


def authorized(request: Request, token: str) -> bool:
    """True when no token is configured, or the request bears it (constant-time comparison)."""
    if not token:
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def api_error(status: int, code: str, message: str, rid: str) -> Response:
    """`{"error": {"code", "message", "request_id"}}` with a stable code."""
    return JSONResponse({"error": {"code": code, "message": message, "request_id": rid}},
                        status_code=status, headers={"X-Request-Id": rid})
