"""What every JSON endpoint of the server shares: bearer-token checks and structured errors."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
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


SIGNED_LINK_TTL_S = 600


def _link_signature(token: str, path: str, expires: int) -> str:
    key = hmac.new(token.encode(), b"aiwatch signed link", hashlib.sha256).digest()
    return hmac.new(key, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


def signed_link(token: str, path: str, ttl_s: int = SIGNED_LINK_TTL_S, now: float | None = None) -> str:
    """`path` with an expiry and an HMAC of the API token: a browser link to a GET that needs the
    token (a saved report), minted by whoever holds the token (the dashboard). No token: `path`."""
    if not token:
        return path
    expires = int((time.time() if now is None else now) + ttl_s)
    return f"{path}?expires={expires}&signature={_link_signature(token, path, expires)}"


def signed_link_valid(request: Request, token: str, now: float | None = None) -> bool:
    expires, signature = request.query_params.get("expires", ""), request.query_params.get("signature", "")
    if not token or not expires.isdigit() or not signature:
        return False
    if int(expires) < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(signature.encode(), _link_signature(token, request.url.path, int(expires)).encode())


def api_error(status: int, code: str, message: str, rid: str, headers: dict[str, str] | None = None) -> Response:
    """`{"error": {"code", "message", "request_id"}}` with a stable code."""
    return JSONResponse({"error": {"code": code, "message": message, "request_id": rid}},
                        status_code=status, headers={"X-Request-Id": rid, **(headers or {})})


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
