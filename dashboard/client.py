"""Reads for the dashboard and the weekly export, through the server's read API only.

`ApiClient` is plain Python (the export and the benchmark use it); `cached_query` wraps it in
`st.cache_data` for the pages. Every read returns a `QueryResult` whose `state` says whether the
page has data, nothing yet, a query the server does not offer yet, or no server at all.
"""
from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pandas as pd
import pyarrow as pa

State = Literal["ok", "empty", "missing", "down", "error"]
DEFAULT_TIMEOUT_S = 15.0
CACHE_TTL_S = 30
CATALOG_TTL_S = 10  # short: stages that land while the dashboard runs show up quickly


class ServerDown(Exception):
    """The server could not be reached (connection refused, timeout, DNS)."""


@dataclass
class QueryResult:
    name: str
    state: State
    frame: pd.DataFrame = field(default_factory=pd.DataFrame)
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    @property
    def empty(self) -> bool:
        return self.state != "ok"


def _clean(params: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in params.items() if v is not None and v != ""}


class ApiClient:
    """A small, synchronous client of the aiwatch read API (`/v1/query/{name}`)."""

    def __init__(self, base_url: str, token: str = "", timeout: float = DEFAULT_TIMEOUT_S,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.RemoteProtocolError,
                httpx.ReadError, httpx.WriteError, httpx.PoolTimeout) as exc:
            raise ServerDown(f"cannot reach the aiwatch server at {self.base_url} ({type(exc).__name__})") from None

    def health(self) -> bool:
        """True when the server answers /healthz; raises ServerDown when it cannot be reached."""
        return self._request("GET", "/healthz").status_code == 200

    def catalog(self) -> dict[str, frozenset[str]]:
        """The named queries the server offers, each with the parameters it accepts."""
        r = self._request("GET", "/v1/queries")
        if r.status_code != 200:
            return {}
        return {q["name"]: frozenset(q.get("params", [])) for q in r.json().get("queries", [])}

    def fetch(self, name: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        """Run a named query; raises ServerDown only when there is no server to ask."""
        r = self._request("GET", f"/v1/query/{name}", params={**_clean(params or {}), "format": "arrow"})
        if r.status_code != 200:
            code, message = "http_error", r.text[:300]
            try:
                err = r.json()["error"]
                code, message = err.get("code", code), err.get("message", message)
            except (ValueError, KeyError, TypeError):
                pass
            if r.status_code == 404 and code == "unknown_query":
                return QueryResult(name, "missing", message=message)
            return QueryResult(name, "error", message=f"{r.status_code} {code}: {message}")
        with pa.ipc.open_stream(io.BytesIO(r.content)) as reader:
            table = reader.read_all()
        table = _decimals_to_float(table)
        frame = table.to_pandas(timestamp_as_object=False)
        return QueryResult(name, "ok" if len(frame) else "empty", frame)

    def query(self, name: str, **params: Any) -> QueryResult:
        """`fetch` that reports an unreachable server as a result (state "down") instead of raising."""
        try:
            return self.fetch(name, params)
        except ServerDown as exc:
            return QueryResult(name, "down", message=str(exc))

    # --- write actions the dashboard offers (silences) ---
    def post_json(self, path: str, body: Mapping[str, Any]) -> httpx.Response:
        return self._request("POST", path, json=dict(body))

    def delete(self, path: str) -> httpx.Response:
        return self._request("DELETE", path)


def _decimals_to_float(table: pa.Table) -> pa.Table:
    # DuckDB sums of integers arrive as decimal128; pages and charts want plain floats.
    for i, f in enumerate(table.schema):
        if pa.types.is_decimal(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.float64()))
    return table


_CLIENTS: dict[tuple[str, str], ApiClient] = {}


def client_for(base_url: str, token: str = "") -> ApiClient:
    """One pooled client per server (shared across reruns and sessions)."""
    key = (base_url.rstrip("/"), token)
    if key not in _CLIENTS:
        _CLIENTS[key] = ApiClient(base_url, token)
    return _CLIENTS[key]


def _cache_data(ttl: int):
    # Imported lazily so that the export and bench can use this module without a Streamlit runtime.
    import streamlit as st

    return st.cache_data(ttl=ttl, show_spinner=False, max_entries=512)


def _fetch_uncached(base_url: str, token: str, name: str, params: tuple[tuple[str, str], ...]) -> QueryResult:
    # Raises ServerDown: st.cache_data does not cache exceptions, so a restarted server is seen at once.
    return client_for(base_url, token).fetch(name, dict(params))


def _catalog_uncached(base_url: str, token: str) -> dict[str, frozenset[str]]:
    return client_for(base_url, token).catalog()


_fetch_cached = None
_catalog_cached = None


def cached_query(base_url: str, name: str, params: Mapping[str, Any] | None = None, token: str = "") -> QueryResult:
    """`ApiClient.query` through `st.cache_data(ttl=CACHE_TTL_S)`."""
    global _fetch_cached
    if _fetch_cached is None:
        _fetch_cached = _cache_data(CACHE_TTL_S)(_fetch_uncached)
    key = tuple(sorted(_clean(params or {}).items()))
    try:
        return _fetch_cached(base_url, token, name, key)
    except ServerDown as exc:
        return QueryResult(name, "down", message=str(exc))


def cached_catalog(base_url: str, token: str = "") -> dict[str, frozenset[str]] | None:
    """The server's queries and their parameters (cached briefly), or None when it is down."""
    global _catalog_cached
    if _catalog_cached is None:
        _catalog_cached = _cache_data(CATALOG_TTL_S)(_catalog_uncached)
    try:
        return _catalog_cached(base_url, token)
    except ServerDown:
        return None


def clear_cache() -> None:
    for fn in (_fetch_cached, _catalog_cached):
        if fn is not None:
            fn.clear()
