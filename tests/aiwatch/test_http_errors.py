"""Bad input to the read and write API is a 4xx in the JSON error shape, never a 500 (real server)."""
from __future__ import annotations

import httpx
import pytest


@pytest.fixture(scope="module")
def srv(server):
    """The session's server (default settings): what is sent here is refused, but for one silence."""
    return server


def _error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()["error"]


@pytest.mark.parametrize("params", [
    {"start": "1e20"}, {"start": "-99999999d"}, {"end": "inf"}, {"start": "-inf"}, {"start": "nan"},
    {"start": "-2000000w"}, {"end": "0001-01-01"}, {"start": "-1e11"},
])
def test_times_out_of_range_are_400(srv, params):
    for query in ("spans", "summary", "logs"):
        err = _error(httpx.get(f"{srv.url}/v1/query/{query}", params=params), 400)
        assert err["code"] == "bad_parameter"


SILENCE = {"matchers": ["service=checkout"], "created_by": "a", "comment": "c"}


@pytest.mark.parametrize("body", [
    {**SILENCE, "duration": "99999999999w"},
    {**SILENCE, "duration": 1e300},
    b'{"matchers": ["service=x"], "created_by": "a", "comment": "c", "duration": Infinity}',
    b'{"matchers": ["service=x"], "created_by": "a", "comment": "c", "duration": NaN}',
    {**SILENCE, "duration": "nan"},
    {**SILENCE, "ends_at": "1e20"},
    {**SILENCE, "ends_at": "-99999999d"},
    {**SILENCE, "ends_at": 12},
    {**SILENCE, "ends_at": ["2030-01-01"]},
    {**SILENCE, "starts_at": {"at": 1}, "duration": "1h"},
    {**SILENCE, "starts_at": "8999-12-31", "duration": "99999w"},
    {**SILENCE, "matchers": [{"name": ["x"], "op": 5, "value": None}], "duration": "1h"},
    {**SILENCE, "matchers": "service=checkout", "duration": "1h"},
    [1, 2],
])
def test_bad_silences_are_400_json(srv, body):
    sent = {"content": body} if isinstance(body, bytes) else {"json": body}
    err = _error(httpx.post(f"{srv.url}/v1/silences", **sent), 400)
    assert err["code"] in ("bad_silence", "bad_json")


def test_malformed_and_oversized_silence_bodies(srv):
    for raw in (b"{not json", b"\xff\xfe", b"null"):
        assert _error(httpx.post(f"{srv.url}/v1/silences", content=raw), 400)["code"] == "bad_json"
    huge = b'{"comment": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    assert _error(httpx.post(f"{srv.url}/v1/silences", content=huge), 413)["code"] == "too_large"
    ok = httpx.post(f"{srv.url}/v1/silences", json={**SILENCE, "duration": "1h"})
    assert ok.status_code == 201, ok.text
