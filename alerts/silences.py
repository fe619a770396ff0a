"""Silences: label matchers plus a time window, with author and comment. Created and expired from
the CLI, the HTTP API and the dashboard; stored in the store so they survive restarts."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from alerts.engine import parse_matcher
from core.clock import utcnow
from store import alerting
from store.base import Store


class SilenceError(ValueError):
    pass


def add_silence(store: Store, matchers: list[str | dict[str, Any]], *, ends_at: datetime, created_by: str, comment: str,
                starts_at: datetime | None = None, now: datetime | None = None) -> str:
    now = now or utcnow()
    starts_at = starts_at or now
    if not matchers:
        raise SilenceError("a silence needs at least one matcher")
    try:
        parsed = [parse_matcher(m) for m in matchers]
    except Exception as exc:  # noqa: BLE001 - bad regex or syntax
        raise SilenceError(str(exc)) from None
    if ends_at <= starts_at:
        raise SilenceError("the silence must end after it starts")
    if not created_by.strip():
        raise SilenceError("a silence needs an author")
    if not comment.strip():
        raise SilenceError("a silence needs a comment")
    sid = uuid.uuid4().hex
    store.writer.write(fn=lambda con: alerting.insert_silence(con, {
        "id": sid, "matchers": parsed, "starts_at": starts_at, "ends_at": ends_at, "created_by": created_by,
        "comment": comment, "now": now}))
    return sid


def expire_silence(store: Store, silence_id: str, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return bool(store.writer.write(fn=lambda con: alerting.expire_silence(con, silence_id, now)))
