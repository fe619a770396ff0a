"""Read-API answers are capped by bytes and say when rows were left out (real server)."""
from __future__ import annotations

import json
import time

import httpx
import pyarrow as pa
import pytest
from otlp_builders import span_request
from server_harness import start_server, stop_server

CAP = 200_000
PB = {"content-type": "application/x-protobuf"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("cap"), env={"AIWATCH_MAX_RESPONSE_BYTES": str(CAP), "AIWATCH_MAX_CONCURRENT_QUERIES": "1"})
    now = time.time_ns()
    # 600 spans of ~1 KiB of attributes each: about 3x the cap as JSON.
    spans = [{"name": f"s{i:03d}", "start_ns": now - i * 10**6, "attributes": {"note": "x" * 1000}}
             for i in range(600)]
    r = httpx.post(f"{server.url}/v1/traces", content=span_request(spans, service="wide").SerializeToString(),
                   headers=PB, timeout=60)
    assert r.status_code == 200, r.text
    yield server
    stop_server(server)


def test_a_json_answer_over_the_cap_is_cut_at_a_row_and_says_so(srv):
    r = httpx.get(f"{srv.url}/v1/query/spans", params={"service": "wide", "limit": "100000"}, timeout=60)
    assert r.status_code == 200
    assert len(r.content) <= CAP + 4096
    body = r.json()
    assert body["truncated"] is True and r.headers["x-truncated"] == "true"
    assert 0 < body["rows"] == len(body["data"]) == int(r.headers["x-rows"]) < 600
    # The rows sent are the first ones of the query's order (newest first), whole.
    assert [row["name"] for row in body["data"]] == [f"s{i:03d}" for i in range(body["rows"])]
    assert all(json.loads(row["attributes"])["note"] == "x" * 1000 for row in body["data"])


def test_an_answer_under_the_cap_is_whole(srv):
    r = httpx.get(f"{srv.url}/v1/query/spans", params={"service": "wide", "limit": "50"}, timeout=60)
    body = r.json()
    assert body["truncated"] is False and r.headers["x-truncated"] == "false" and body["rows"] == 50


def test_an_arrow_answer_over_the_cap_is_cut_and_says_so(srv):
    r = httpx.get(f"{srv.url}/v1/query/spans", params={"service": "wide", "limit": "100000", "format": "arrow"},
                  timeout=60)
    assert r.status_code == 200 and r.headers["x-truncated"] == "true"
    table = pa.ipc.open_stream(r.content).read_all()
    assert 0 < table.num_rows == int(r.headers["x-rows"]) < 600
    assert len(r.content) <= CAP + 64 * 1024


def test_concurrent_reads_take_turns_and_every_outcome_frees_its_slot(srv):
    """One query slot (AIWATCH_MAX_CONCURRENT_QUERIES=1): large reads, bad parameters and small reads
    sent at once all get their own answer, so no path leaves the slot taken."""
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> int:
        params = ({"service": "wide", "limit": "100000"}, {"start": "1e20"}, {"service": "wide", "limit": "1"})[i % 3]
        return httpx.get(f"{srv.url}/v1/query/spans", params=params, timeout=60).status_code

    with ThreadPoolExecutor(9) as pool:
        codes = list(pool.map(one, range(18)))
    assert codes == [200, 400, 200] * 6
