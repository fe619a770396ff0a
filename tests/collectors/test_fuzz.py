"""Property-based bad input: whatever arrives, the answer is 200 or a 4xx and the server stays up."""
from __future__ import annotations

import json
import random

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from otlp_builders import span_request

from collectors.attributes import SPAN_ATTRIBUTE_MAP

PATHS = ["/v1/traces", "/v1/logs", "/v1/metrics"]
TYPES = ["application/x-protobuf", "application/json"]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                       max_size=4), max_leaves=20)
attr_values = st.one_of(st.text(max_size=50), st.integers(min_value=-2**63, max_value=2**63 - 1),
                        st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                        st.lists(st.text(max_size=5), max_size=3))


@FUZZ
@given(body=st.binary(max_size=2048), path=st.sampled_from(PATHS), ctype=st.sampled_from(TYPES))
def test_random_bytes_never_get_a_5xx(server, body, path, ctype):
    r = httpx.post(f"{server.url}{path}", content=body, headers={"content-type": ctype})
    assert r.status_code in (200, 400), (r.status_code, r.text)


@FUZZ
@given(doc=json_values, path=st.sampled_from(PATHS))
def test_random_json_never_gets_a_5xx(server, doc, path):
    r = httpx.post(f"{server.url}{path}", content=json.dumps(doc).encode(), headers={"content-type": TYPES[1]})
    assert r.status_code in (200, 400), (r.status_code, r.text)


@FUZZ
@given(attrs=st.dictionaries(st.sampled_from(sorted(SPAN_ATTRIBUTE_MAP) + ["x", "gen_ai.input.messages"]),
                             attr_values, max_size=12))
def test_mapped_attributes_of_any_type_are_accepted(server, attrs):
    body = span_request([{"attributes": attrs}], service="fuzz").SerializeToString()
    r = httpx.post(f"{server.url}/v1/traces", content=body, headers={"content-type": TYPES[0]})
    assert r.status_code == 200, r.text


def test_server_still_answers_after_its_own_fuzzing(server):
    """Fuzzes on its own (fixed seed), so it holds whichever tests ran before it: random bytes,
    truncated and bit-flipped protobuf, broken JSON on every path, then /readyz and a good request."""
    rng = random.Random(14)
    good = span_request([{"attributes": {"gen_ai.request.model": "m"}}], service="after-fuzz").SerializeToString()
    bodies = [rng.randbytes(rng.randint(0, 2048)) for _ in range(20)]
    bodies += [good[: rng.randint(0, len(good) - 1)] for _ in range(10)]
    bodies += [bytes(b ^ (1 << rng.randrange(8)) if rng.random() < 0.05 else b for b in good) for _ in range(10)]
    bodies += [b'{"resourceSpans": [' * rng.randint(1, 50), b'{"resourceSpans": "x"}', b"\xff\xfe{", b"null"]
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for i, body in enumerate(bodies):
            r = client.post(PATHS[i % 3], content=body, headers={"content-type": TYPES[i % 2]})
            assert r.status_code in (200, 400), (i, r.status_code, r.text)
        assert client.get("/readyz").status_code == 200
        r = client.post("/v1/traces", content=good, headers={"content-type": TYPES[0]})
        assert r.status_code == 200, r.text


def test_deeply_nested_json_is_a_400(server):
    doc = "[" * 100_000 + "]" * 100_000
    r = httpx.post(f"{server.url}/v1/traces", content=doc.encode(), headers={"content-type": TYPES[1]})
    assert r.status_code == 400
