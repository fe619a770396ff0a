"""What every JSON endpoint of the server shares: bearer-token checks and structured errors."""
from __future__ import annotations

import hmac
import json
import logging
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger("aiwatch.httpapi")

# JSON bodies of the write API (silences, reports) are a few hundred bytes.
MAX_JSON_BODY_BYTES = 1024 * 1024


class ApiError(Exception):
    """A request the API refuses: becomes `api_error(status, code, message)`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


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


async def json_object(request: Request, limit: int = MAX_JSON_BODY_BYTES) -> dict[str, Any]:
    """The request's JSON object body (empty body: {}); ApiError 413 above `limit` bytes, 400 if malformed."""
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "too_large", f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks) or b"{}")
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ApiError(400, "bad_json", f"body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    return body


async def internal_error(request: Request, exc: Exception) -> Response:
    """Last resort for a bug: the same JSON error shape as every other answer, never a plain-text 500."""
    return api_error(500, "internal_error", f"internal error ({type(exc).__name__}); see the server log",
                     request_id(request))
