"""Resource attributes are stored once per resource, and attribute JSON is capped per span and per request.

The attack this answers: one 0.5 MB request of 20,000 resource attributes and 500 spans was copied
into every span (13 s, 2.6 GB of memory, 248 MB of WAL).
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import duckdb
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from otlp_builders import span_request
from server_harness import start_server, stop_server

PB = {"content-type": "application/x-protobuf"}
SPAN_CAP, REQUEST_CAP = 16_384, 200_000


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("caps"), env={
        "AIWATCH_MAX_SPAN_ATTRIBUTE_BYTES": str(SPAN_CAP), "AIWATCH_MAX_REQUEST_ATTRIBUTE_BYTES": str(REQUEST_CAP)})
    yield server
    stop_server(server)


def _db_bytes(data_dir: Path) -> int:
    return sum(f.stat().st_size for f in data_dir.glob("aiwatch.duckdb*"))


def _post(srv, req) -> ExportTraceServiceResponse:
    r = httpx.post(f"{srv.url}/v1/traces", content=req.SerializeToString(), headers=PB, timeout=60)
    assert r.status_code == 200, r.text
    return ExportTraceServiceResponse.FromString(r.content)


def test_20000_resource_attributes_on_500_spans_are_stored_once_and_capped(srv):
    service = f"svc-{uuid.uuid4().hex[:8]}"
    resource = {f"attr.{i:05d}": f"value-{i}" for i in range(20_000)}
    req = span_request([{"name": f"s{i}", "attributes": {"custom.n": i}} for i in range(500)], service=service,
                       resource=resource)
    assert len(req.SerializeToString()) > 400_000
    before = _db_bytes(srv.data_dir)
    resp = _post(srv, req)
    assert resp.partial_success.rejected_spans == 0
    assert "per-item cap" in resp.partial_success.error_message
    # Stored once, capped: the database grew by about one resource, not 500 copies of it.
    assert _db_bytes(srv.data_dir) - before < 16 * 1024 * 1024
    rows = srv.query("spans", service=service, limit=1000)
    assert len(rows) == 500
    attrs = json.loads(rows[0]["attributes"])
    assert set(attrs) == {"custom.n", "resource"}
    kept = {k: v for k, v in attrs["resource"].items() if k != "aiwatch.attributes.dropped"}
    assert list(kept) == sorted(resource)[:len(kept)]  # whole attributes, in order, until the cap
    assert attrs["resource"]["aiwatch.attributes.dropped"] == 20_000 - len(kept)
    assert len(json.dumps(attrs["resource"]).encode()) <= SPAN_CAP * 1.1
    # The same resource again, its attributes in another order: still one row.
    _post(srv, span_request([{"name": "again"}], service=service, resource=dict(reversed(resource.items()))))
    counts = {r["table"]: r["rows"] for r in srv.query("table_counts")}
    assert counts["resources"] == 1
    [again] = [r for r in srv.query("spans", service=service, limit=1000) if r["name"] == "again"]
    assert json.loads(again["attributes"])["resource"] == attrs["resource"]


def test_span_attributes_are_capped_per_span_and_per_request(srv):
    service = f"svc-{uuid.uuid4().hex[:8]}"
    # 40 spans of 40 x 1 KiB attributes: each is over the 16 KiB span cap; all are over the 200 KB request cap.
    spans = [{"name": f"wide-{i:02d}", "attributes": {"gen_ai.request.model": "m",
                                                       **{f"k{j:02d}": "x" * 1024 for j in range(40)}}}
             for i in range(40)]
    resp = _post(srv, span_request(spans, service=service))
    assert resp.partial_success.rejected_spans == 0
    message = resp.partial_success.error_message
    assert "per-item cap" in message and "request's attribute cap" in message
    rows = sorted(srv.query("spans", service=service, limit=1000), key=lambda r: r["name"])
    assert len(rows) == 40 and all(r["request_model"] == "m" for r in rows)  # typed columns are kept
    stored = [json.loads(r["attributes"]) for r in rows]
    first = stored[0]
    assert first["aiwatch.attributes.dropped"] == 40 - (len(first) - 1) and len(first) > 5
    assert len(rows[0]["attributes"].encode()) <= SPAN_CAP
    emptied = [a for a in stored if set(a) == {"aiwatch.attributes.dropped"}]
    assert emptied and all(a["aiwatch.attributes.dropped"] == 40 for a in emptied)
    assert sum(len(r["attributes"].encode()) for r in rows) <= REQUEST_CAP + 40 * 64


def test_rows_written_before_resources_were_stored_once_still_read(tmp_path):
    from store.db import Store
    from store.queries import store_queries

    path = tmp_path / "old.duckdb"
    Store(path).close()
    # Turn it back into a version-2 database with a span that carries its resource inline.
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE resources")
    con.execute("ALTER TABLE spans DROP COLUMN resource_id")
    con.execute("DELETE FROM schema_version WHERE version = 3")
    con.execute("""INSERT INTO spans (trace_id, span_id, name, start_time, service_name, attributes)
                   VALUES ('ab', 'cd', 'old', now()::TIMESTAMP, 'old-svc', '{"k": 1, "resource": {"host": "h"}}')""")
    con.close()
    store = Store(path)
    try:
        [row] = store_queries()["spans"].execute(store, {"service": "old-svc"}).to_pylist()
        assert json.loads(row["attributes"]) == {"k": 1, "resource": {"host": "h"}}
        assert store.scalar("SELECT count(*) FROM resources") == 0
    finally:
        store.close()
