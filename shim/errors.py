"""Error classification: every failure becomes one of semconv.ERROR_CLASSES.

Retries, the circuit breaker and the fallback cascade all decide on the class, never on the
exception type, so the OpenAI-compatible client and `guard` around any other SDK behave the same.
"""

from __future__ import annotations

import asyncio
from typing import Any

from core import semconv
from core.retry_after import retry_after_seconds

TRANSIENT = semconv.TRANSIENT_ERROR_CLASSES


class ShimError(Exception):
    """A classified failure of one attempt (or of the whole call, for `AllLevelsFailed`)."""

    def __init__(
        self,
        error_class: str,
        message: str = "",
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(f"{error_class}: {message}" if message else error_class)
        self.error_class = error_class
        self.status_code = status_code
        self.retry_after = retry_after
        # error.type on spans: the provider's code when known ("context_length_exceeded"), else the class.
        self.error_type = error_type or error_class

    @property
    def transient(self) -> bool:
        return self.error_class in TRANSIENT


class CircuitOpenError(ShimError):
    """The backend's breaker refused the call; not retried on that backend, the cascade moves on."""

    def __init__(self, backend: str) -> None:
        super().__init__("connection", f"circuit open for {backend}", error_type="circuit_open")
        self.backend = backend

    @property
    def transient(self) -> bool:
        return False


class InvalidOutputError(ShimError):
    """The answer failed output validation and the validator asked for the next fallback level."""

    def __init__(self, message: str = "output failed validation") -> None:
        super().__init__("validation", message, error_type="invalid_output")


class InjectionBlockedError(ShimError):
    """The prompt-injection score crossed the configured blocking threshold."""

    def __init__(self, score: float) -> None:
        super().__init__("content_filter", f"prompt injection score {score:.2f}", error_type="prompt_injection")
        self.score = score


class KillSwitchError(ShimError):
    """The kill switch is on and no rule-based or human level is configured."""

    def __init__(self) -> None:
        super().__init__("validation", "AI feature disabled by kill switch", error_type="kill_switch")


class AllLevelsFailed(ShimError):
    """Every level of the cascade failed; `errors` lists (level, backend, error) in order."""

    def __init__(self, errors: list[tuple[str, str, BaseException]]) -> None:
        last = errors[-1][2] if errors else None
        cls = last.error_class if isinstance(last, ShimError) else "server"
        detail = "; ".join(f"{lvl}/{name}: {err}" for lvl, name, err in errors)
        super().__init__(cls, f"all fallback levels failed ({detail})",
                         error_type=getattr(last, "error_type", None))
        self.errors = errors


def classify_http(status: int, body: Any = None, headers: Any = None) -> ShimError:
    """Map an HTTP error response (OpenAI-style body) to a ShimError."""
    code = ""
    message = ""
    if isinstance(body, dict):
        err: dict = body["error"] if isinstance(body.get("error"), dict) else body
        code = str(err.get("code") or err.get("type") or "")
        message = str(err.get("message") or "")
    elif isinstance(body, (str, bytes)):
        message = body.decode(errors="replace") if isinstance(body, bytes) else body
        message = message[:300]
    retry_after = retry_after_seconds(headers)
    lowered = f"{code} {message}".lower()
    if "context_length" in lowered or "maximum context length" in lowered or "too many tokens" in lowered:
        cls = "token_limit"
    elif "content_filter" in lowered or "content management policy" in lowered or "content_policy" in lowered:
        cls = "content_filter"
    elif status == 429:
        cls = "rate_limit"
    elif status in (401, 403):
        cls = "auth"
    elif status in (408, 504):
        cls = "timeout"
    elif status >= 500 or status == 409:
        cls = "server"
    else:
        cls = "validation"
    return ShimError(cls, message or f"HTTP {status}", status_code=status, retry_after=retry_after,
                     error_type=code or str(status))


def classify_exception(exc: BaseException) -> ShimError:
    """Classify any exception: ShimError as is, httpx/openai/anthropic SDK errors and builtins by shape."""
    if isinstance(exc, ShimError):
        return exc
    name = type(exc).__name__
    names = {c.__name__ for c in type(exc).__mro__}
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    response = getattr(exc, "response", None)
    if status is None and response is not None:
        status = getattr(response, "status_code", None)
    if isinstance(status, int) and status >= 400:
        body = getattr(exc, "body", None)
        if body is None and response is not None:
            try:
                body = response.json()
            except Exception:  # noqa: BLE001 - any body shape is acceptable here
                body = getattr(response, "text", None)
        headers = getattr(response, "headers", None)
        err = classify_http(status, body if body is not None else str(exc), headers)
        if err.error_class == "validation" and "timeout" in name.lower():
            err.error_class = "timeout"
        return err
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)) or "Timeout" in name or "TimeoutException" in names:
        return ShimError("timeout", str(exc) or name, error_type=name)
    if isinstance(exc, ConnectionError) or names & {"ConnectError", "NetworkError", "APIConnectionError",
                                                     "RemoteProtocolError", "ProtocolError"}:
        return ShimError("connection", str(exc) or name, error_type=name)
    if names & {"RateLimitError"}:
        return ShimError("rate_limit", str(exc), error_type=name)
    if names & {"AuthenticationError", "PermissionDeniedError"}:
        return ShimError("auth", str(exc), error_type=name)
    if names & {"InternalServerError", "ServiceUnavailableError", "APIStatusError"}:
        return ShimError("server", str(exc), error_type=name)
    if isinstance(exc, (ValueError, TypeError, KeyError)) or names & {"BadRequestError", "UnprocessableEntityError"}:
        msg = str(exc).lower()
        if "context length" in msg or "context_length" in msg:
            return ShimError("token_limit", str(exc), error_type=name)
        return ShimError("validation", str(exc), error_type=name)
    return ShimError("server", str(exc) or name, error_type=name)
