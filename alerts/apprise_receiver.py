"""Receivers beyond Slack and PagerDuty: Microsoft Teams (Power Automate workflows), Opsgenie,
Discord, email and the rest of apprise's services, each configured by one apprise URL.

Why apprise sends through our transport: apprise's `notify()` answers only True or False, so on its
own a Discord 429 or an Opsgenie 503 would look like a revoked token, and the outbox could neither
honour Retry-After nor stop retrying a 401. Every apprise HTTP plugin sends with `requests`, which
hands each prepared request to its transport adapter. While one of our sends runs (a context
variable marks it, so every other `requests` user in the process is untouched), that adapter sends
the request apprise built through httpx under the receiver's total deadline and response cap, and
records the answer; `notifiers.classify` then reads it exactly as it reads a Slack or PagerDuty
answer. apprise keeps what it is good at (each service's URL grammar and payload); retrying stays
the outbox's: apprise's own retry and throttle are off, and after a failed answer the rest of the
send is refused, so a 429 goes back to the outbox with its Retry-After instead of being retried
inside apprise. Plugins that do not speak HTTP (email over SMTP) have no status: a failure there
is retried with backoff, with apprise's reason as the error.

apprise logs full webhook URLs at debug level, so no apprise log record reaches a handler: its
warnings are collected per send into the error, which `notifiers.mask_secrets` cleans like every other.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from alerts.notifiers import RESPONSE_MAX_BYTES, SendResult, classify
from alerts.rules import Receiver

_NOTIFY_TYPES = {"failure": "failure", "warning": "warning", "success": "success", "info": "info"}


@dataclass
class _Capture:
    """What one send's requests got back, and its deadline (time.monotonic)."""
    deadline: float
    answers: list[tuple[int, bytes, str | None, str]] = field(default_factory=list)
    transport_error: str | None = None
    failed: bool = False
    log: list[str] = field(default_factory=list)


_CAPTURE: contextvars.ContextVar[_Capture | None] = contextvars.ContextVar("aiwatch_apprise_send", default=None)
_setup_lock = threading.Lock()
_plugins: dict[str, Any] = {}


def _keep_apprise_log(record: logging.LogRecord) -> bool:
    """A filter on apprise's logger: its warnings (and socket errors) go into the running send's
    error, which is masked; no apprise record reaches any handler (its debug lines hold full URLs)."""
    capture = _CAPTURE.get()
    if capture is not None and (record.levelno >= logging.WARNING or "Exception" in str(record.msg)):
        capture.log.append(record.getMessage()[:300])
    return False


def _setup() -> Any:
    """Import apprise, route `requests` through `_send_captured` during our sends, and keep apprise's log to us."""
    import apprise
    from requests.adapters import HTTPAdapter

    with _setup_lock:
        if not getattr(HTTPAdapter.send, "_aiwatch", False):
            original = HTTPAdapter.send

            def send(self: Any, request: Any, stream: bool = False, timeout: Any = None, verify: Any = True,
                     cert: Any = None, proxies: Any = None) -> Any:
                capture = _CAPTURE.get()
                if capture is None:
                    return original(self, request, stream=stream, timeout=timeout, verify=verify, cert=cert,
                                    proxies=proxies)
                return _send_captured(capture, request, verify)
            send._aiwatch = True  # type: ignore[attr-defined]
            HTTPAdapter.send = send  # type: ignore[method-assign]
            logger = logging.getLogger("apprise")
            logger.setLevel(logging.DEBUG)
            logger.addFilter(_keep_apprise_log)
    return apprise


def _send_captured(capture: _Capture, request: Any, verify: Any) -> Any:
    """Send one request apprise prepared, with httpx, within the send's deadline; record the answer."""
    import requests
    from requests.structures import CaseInsensitiveDict
    from requests.utils import get_encoding_from_headers

    if capture.failed:
        raise requests.ConnectionError("aiwatch: an earlier request of this notification failed; "
                                       "the outbox retries it")
    body = request.body.encode() if isinstance(request.body, str) else request.body
    if body is not None and not isinstance(body, bytes):
        capture.failed = True
        raise requests.ConnectionError("aiwatch sends no streamed bodies (attachments)")
    if isinstance(verify, str):
        verify = ssl.create_default_context(cafile=verify)
    try:
        left = capture.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        with httpx.Client(verify=verify, follow_redirects=False, timeout=left) as client, \
                client.stream(request.method, request.url, content=body, headers=dict(request.headers)) as r:
            raw = bytearray()
            for chunk in r.iter_raw():
                raw += chunk
                if len(raw) >= RESPONSE_MAX_BYTES:
                    break
                if time.monotonic() > capture.deadline:
                    raise TimeoutError
    except (httpx.TimeoutException, TimeoutError) as exc:
        capture.failed = True
        capture.transport_error = f"timeout: no complete answer within the deadline ({type(exc).__name__})"
        raise requests.Timeout(capture.transport_error) from None
    except httpx.HTTPError as exc:
        capture.failed = True
        capture.transport_error = f"{type(exc).__name__}: {exc}"[:500]
        raise requests.ConnectionError(capture.transport_error) from None
    capture.answers.append((r.status_code, bytes(raw), r.headers.get("retry-after"), r.reason_phrase))
    if not 200 <= r.status_code < 300:
        capture.failed = True
    response = requests.Response()
    response.status_code, response.reason, response.url, response.request = \
        r.status_code, r.reason_phrase, request.url, request
    response.headers = CaseInsensitiveDict(r.headers)
    response.encoding = get_encoding_from_headers(response.headers)
    response._content, response._content_consumed = bytes(raw), True
    return response


def plugin(url: str) -> Any:
    """apprise's plugin for `url` (None if apprise cannot send to it), one per URL per process: a
    plugin keeps state between sends (Opsgenie remembers which alert a resolve closes)."""
    apprise = _setup()
    with _setup_lock:
        if url not in _plugins:
            _plugins[url] = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        return _plugins[url]


def url_problem(url: str) -> str | None:
    """Why apprise cannot send to `url`, without repeating the URL (it holds the secrets)."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if not scheme:
        return "is not an apprise URL (scheme://...; e.g. workflows://, opsgenie://, discord://, mailto://)"
    if plugin(url) is None:
        return f"apprise cannot send to this {scheme}:// URL (unknown scheme or missing parts)"
    return None


def privacy_url(url: str) -> str:
    """The URL as apprise shows it with its secrets masked (for `aiwatch alerts check`)."""
    p = plugin(url)
    return p.url(privacy=True).split("?", 1)[0] if p is not None else url.split("://", 1)[0] + "://…"


def _send_sync(receiver: Receiver, body: dict[str, Any], capture: _Capture) -> bool:
    apprise = _setup()
    _CAPTURE.set(capture)
    p = plugin(receiver.url)
    p.retry, p.request_rate_per_sec = 0, 0          # the outbox retries, with backoff or Retry-After
    p.socket_connect_timeout = p.socket_read_timeout = receiver.timeout_s   # SMTP and friends
    if type(p).__name__ == "NotifyOpsgenie" and body.get("dedup_key"):
        p.alias = str(body["dedup_key"])[:512]       # Opsgenie folds a repeat into the open alert
    return bool(p.notify(body=body["body"], title=body["title"], body_format=apprise.NotifyFormat.TEXT,
                         notify_type=apprise.NotifyType(_NOTIFY_TYPES.get(body.get("type", ""), "info"))))


async def send(receiver: Receiver, body: dict[str, Any]) -> SendResult:
    """Send `notifiers.apprise_message` output to an apprise receiver, with the same outcome classes
    and total deadline as `notifiers.send_async`."""
    started = time.perf_counter()
    capture = _Capture(time.monotonic() + receiver.timeout_s)
    try:
        async with asyncio.timeout(receiver.timeout_s + 1):   # the thread's own deadline ends it first
            ok = await asyncio.to_thread(_send_sync, receiver, body, capture)
    except TimeoutError:
        ok, capture.transport_error = False, f"timeout: no answer within the {receiver.timeout_s:g} s deadline"
    except Exception as exc:  # noqa: BLE001 - a plugin bug is this receiver's failure, not the deliverer's
        ok, capture.transport_error = False, f"apprise {type(exc).__name__}: {exc}"[:500]
    took = (time.perf_counter() - started) * 1000
    if ok:
        code = capture.answers[-1][0] if capture.answers else None
        return SendResult(True, http_status=code, duration_ms=took)
    failed = [a for a in capture.answers if not 200 <= a[0] < 300]
    if failed:
        code, raw, retry_after, reason = failed[0]
        return classify(code, raw, retry_after, reason, took)
    if capture.answers:     # every answer 2xx, yet apprise says no (e.g. an error in a 200 body)
        code, raw, _, _ = capture.answers[-1]
        reason = "; ".join(capture.log[-2:]) or raw[:300].decode(errors="replace")
        return SendResult(False, False, code, f"rejected: {reason}"[:500], duration_ms=took)
    error = capture.transport_error or "; ".join(capture.log[-2:]) or "apprise reported a failed send"
    return SendResult(False, True, None, error[:500], duration_ms=took)
