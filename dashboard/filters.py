"""Global filters (time range, service, model, version, route) kept in the URL query.

A link such as `/latency?start=-6h&service=checkout` opens the same view for anyone. The router
renders the sidebar widgets; pages read the resulting `Filters`. `view_url` builds those links for
alert messages and the weekly review.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from core.clock import utcnow
from store.queries import BadParameter, parse_time

FILTER_KEYS = ("start", "end", "service", "model", "version", "route")
DEFAULT_START, DEFAULT_END = "-24h", "now"
TIME_PRESETS = {"-15m": "Last 15 minutes", "-1h": "Last hour", "-6h": "Last 6 hours", "-24h": "Last 24 hours",
                "-7d": "Last 7 days", "-30d": "Last 30 days"}


@dataclass(frozen=True)
class Filters:
    start: str = DEFAULT_START
    end: str = DEFAULT_END
    service: str | None = None
    model: str | None = None
    version: str | None = None
    route: str | None = None

    def params(self, **extra: Any) -> dict[str, Any]:
        """Parameters of the standard filters for a named query, plus `extra`."""
        return {**{k: v for k, v in asdict(self).items() if v not in (None, "")}, **extra}

    def without(self, *keys: str) -> Filters:
        reset: dict[str, Any] = {k: (DEFAULT_START if k == "start" else DEFAULT_END if k == "end" else None)
                                 for k in keys}
        return replace(self, **reset)

    def query_string(self) -> str:
        return urlencode({k: v for k, v in self.url_params().items()})

    def url_params(self) -> dict[str, str]:
        """Non-default filters, as they appear in the URL."""
        defaults = Filters()
        return {k: str(v) for k, v in asdict(self).items() if v not in (None, "") and v != getattr(defaults, k)}

    def span(self, now: datetime | None = None) -> tuple[datetime, datetime]:
        """The window as naive UTC datetimes (the server's convention); both ends read the same `now`,
        so "-6h" to "now" is exactly 6 hours."""
        now = now or utcnow()
        return parse_time(self.start, now), parse_time(self.end, now)

    def duration(self) -> timedelta:
        start, end = self.span()
        return max(end - start, timedelta(0))

    def grain(self) -> str:
        """Analyzer grain that gives a readable number of points for this window."""
        return "1m" if self.duration() <= timedelta(hours=6) else "1h"

    def label(self) -> str:
        if self.end == DEFAULT_END and self.start in TIME_PRESETS:
            return TIME_PRESETS[self.start]
        return f"{self.start} to {self.end}"


def from_mapping(values: Mapping[str, Any]) -> Filters:
    """Filters from URL query parameters (unknown keys ignored; bad times fall back to the default)."""
    def one(key: str) -> str | None:
        v = values.get(key)
        if isinstance(v, list):
            v = v[-1] if v else None
        v = None if v is None else str(v).strip()
        return v or None

    start, end = one("start") or DEFAULT_START, one("end") or DEFAULT_END
    try:
        parse_time(start), parse_time(end)
    except BadParameter:
        start, end = DEFAULT_START, DEFAULT_END
    return Filters(start=start, end=end, service=one("service"), model=one("model"),
                   version=one("version"), route=one("route"))


def view_url(base_url: str, page: str, filters: Filters | Mapping[str, Any] | None = None) -> str:
    """Link to a dashboard page with the given filters, e.g. for an alert about a route."""
    if filters is not None and not isinstance(filters, Filters):
        filters = from_mapping(filters)
    qs = filters.query_string() if filters else ""
    path = "" if page == "overview" else page  # the default page lives at the root
    return f"{base_url.rstrip('/')}/{path}" + (f"?{qs}" if qs else "")


def incident_link(incident_id: str, base_url: str = "") -> str:
    """Link to one incident's page."""
    return f"{base_url.rstrip('/')}/incident?{urlencode({'id': incident_id})}"
