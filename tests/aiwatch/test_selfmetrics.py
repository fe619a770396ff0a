"""/metrics through prometheus-client: parsed with its parser, values checked against what was sent."""
from __future__ import annotations

from otlp_builders import span_request
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from aiwatch.config import Settings
from aiwatch.selfmetrics import SelfMetrics
from aiwatch.server import AiwatchServer

PB = {"content-type": "application/x-protobuf"}


def parse(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(family, suffix: str = "") -> dict[tuple, float]:
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples if s.name == family.name + suffix}


def test_label_values_and_help_are_escaped():
    m = SelfMetrics()
    hostile = 'a"b\\c\nd'
    m.counter("x_total", 'help with "quotes", a \\ and\na newline', ("who",))
    m.inc("x_total", 2, who=hostile)
    m.family("y_total", "read at scrape", lambda: [({"analyzer": hostile}, 3)])
    m.gauge("z", "broken reader", lambda: 1 / 0)   # skipped, the rest still scraped
    fams = parse(m.render().decode())
    assert samples(fams["x"], "_total") == {(("who", hostile),): 2.0}
    assert fams["x"].documentation == 'help with "quotes", a \\ and\na newline'
    assert fams["y"].type == "counter" and samples(fams["y"], "_total") == {(("analyzer", hostile),): 3.0}
    assert "z" not in fams


def test_metrics_count_ingest_and_the_writer_as_counters_and_histograms(tmp_path):
    server = AiwatchServer(Settings(data_dir=str(tmp_path), scheduler_enabled=False, ingest_workers=0))
    sizes = [3, 5, 7]
    with TestClient(server.app()) as client:
        for n in sizes:
            body = span_request([{"name": f"chat {i}"} for i in range(n)], service="m").SerializeToString()
            assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
        assert client.post("/v1/traces", content=b"\x00garbage", headers=PB).status_code == 400
        r = client.get("/metrics")
        fams = parse(r.text)
        stats = server.store.writer.stats

    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert fams["aiwatch_accepted"].type == "counter"
    assert samples(fams["aiwatch_accepted"], "_total")[(("signal", "traces"),)] == sum(sizes)
    requests = samples(fams["aiwatch_requests"], "_total")
    assert requests[(("code", "200"), ("signal", "traces"))] == 3
    assert requests[(("code", "400"), ("signal", "traces"))] == 1
    latency = fams["aiwatch_request_duration_seconds"]
    assert latency.type == "histogram"
    assert samples(latency, "_count") == {(("signal", "traces"),): 4.0}

    commits = samples(fams["aiwatch_writer_commits"], "_total")[()]
    assert fams["aiwatch_writer_commits"].type == "counter" and commits == stats.commits >= 1
    assert samples(fams["aiwatch_writer_rows"], "_total")[()] == stats.rows_committed
    for name in ("aiwatch_writer_commit_seconds", "aiwatch_writer_batch_rows"):
        fam = fams[name]
        assert fam.type == "histogram" and samples(fam, "_count")[()] == commits
        buckets = [s.value for s in fam.samples if s.name == name + "_bucket"]
        assert buckets == sorted(buckets) and buckets[-1] == commits   # cumulative, +Inf holds all
    # every committed row is in a batch: the batch-size histogram sums to the rows written
    assert samples(fams["aiwatch_writer_batch_rows"], "_sum")[()] == stats.rows_committed >= sum(sizes)
    assert samples(fams["aiwatch_writer_broken"])[()] == 0
    assert fams["aiwatch_queue_rows"].type == "gauge" and fams["aiwatch_uptime_seconds"].type == "gauge"
