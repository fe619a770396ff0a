"""A hostile client with the API token: no JSON field, query parameter or path segment of any
endpoint becomes SQL text, reads a file or the environment, or earns a 5xx.

A real server (tokens and receiver secrets in its environment) on a store with calls; every body
field and parameter gets every injection payload, and no answer may carry a secret or a file.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import duckdb
import httpx
import pytest

from tests.analysis.gen import T0, spans, write

TOKEN = "api-token-7c1e0f2d9b"
SECRETS = {
    "AIWATCH_API_TOKEN": TOKEN,
    "AIWATCH_INGEST_TOKEN": "ingest-token-51d3a8e6",
    "AIWATCH_SLACK_WEBHOOK_URL": "http://127.0.0.1:9/services/T000/B000/slack-secret-4f2a",
    "AIWATCH_PAGERDUTY_ROUTING_KEY": "pd-routing-key-98cc1b",
    "AIWATCH_APPRISE_URL": "json://oncall:apprise-secret-3b7e@127.0.0.1:9/hooks/Apprise-T0ken-55",
}
AUTH = {"Authorization": f"Bearer {TOKEN}"}

FILE_READS = [f"{fn}('{path}')" for fn in ("read_text", "read_blob") for path in ("/etc/passwd", "/proc/self/environ")]
PAYLOADS = [
    # the reported attack, and its siblings for each reading function
    *(f'attr:x", CAST((SELECT string_agg(content, chr(10)) FROM {r}) AS INTEGER) AS "y' for r in FILE_READS),
    *(f"x') UNION ALL SELECT content FROM {r} --" for r in FILE_READS),
    "attr:x' || (SELECT content FROM read_text('/etc/passwd')) || '",
    'attr:a"b', "attr:a'b", "attr:$.x", "attr:" + "k" * 500, "attr:x\x00y", "input_tokens; DROP TABLE spans",
    "'; DROP TABLE spans; --", "\"; ATTACH '/tmp/x.db' AS x; --", "1e20", "-99999999d", "now'", "$start",
    "SET enable_external_access=true", "\u202e\u0000\ud7ff", "%27%22", "x" * 5000, "",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from server_harness import start_server, stop_server

    from store.db import Store

    data = tmp_path_factory.mktemp("hostile") / "data"
    db = Store(data / "aiwatch.duckdb")
    write(db, spans(T0, 2 * 24 * 60, 1, seed=3))
    db.close()
    (data / "analysis.toml").write_text("baseline_days = 1.0\n")
    srv = start_server(data, env=SECRETS)
    yield srv
    stop_server(srv)


def assert_clean(r: httpx.Response) -> None:
    """No 5xx, and nothing secret or read from a file in the answer."""
    assert r.status_code < 500, (r.request.method, str(r.request.url), r.status_code, r.text[:500])
    for secret in SECRETS.values():
        assert secret not in r.text
    assert "root:x:0:0" not in r.text and "PATH=" not in r.text


def test_the_reported_drift_column_attack_is_a_400_and_leaks_nothing(server):
    attack = ('attr:x", CAST((SELECT string_agg(content, chr(10)) FROM read_blob(\'/proc/self/environ\')) '
              'AS INTEGER) AS "y')
    r = httpx.post(f"{server.url}/v1/reports/drift", headers=AUTH, timeout=60,
                   json={"route": "chat", "start": (T0 + timedelta(days=1)).isoformat(),
                         "end": (T0 + timedelta(days=2)).isoformat(), "columns": [attack]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_parameter", r.text
    assert_clean(r)


def _valid_drift_body() -> dict:
    return {"route": "chat", "service": "svc", "start": (T0 + timedelta(days=1, hours=20)).isoformat(),
            "end": (T0 + timedelta(days=2)).isoformat(), "reference_start": T0.isoformat(),
            "reference_end": (T0 + timedelta(days=1)).isoformat(), "columns": ["input_tokens"]}


def _valid_silence_body() -> dict:
    return {"matchers": ["service=svc"], "duration": "1h", "created_by": "t", "comment": "c"}


@pytest.mark.parametrize("field", sorted(_valid_silence_body()) + ["starts_at", "ends_at"])
def test_every_silence_field_takes_every_payload(server, field):
    for payload in PAYLOADS:
        for value in (payload, [payload], {"name": payload, "op": "=~", "value": payload}):
            body = {**_valid_silence_body(), field: value}
            assert_clean(httpx.post(f"{server.url}/v1/silences", headers=AUTH, json=body, timeout=30))


@pytest.mark.parametrize("field", sorted(_valid_drift_body()))
def test_every_drift_report_field_takes_every_payload(server, field):
    # payloads that pass validation would build a report each (seconds of Evidently): the columns
    # field and the ones that fail early are where an injection could reach SQL
    for payload in PAYLOADS:
        for value in (payload, [payload]):
            body = {**_valid_drift_body(), field: value}
            r = httpx.post(f"{server.url}/v1/reports/drift", headers=AUTH, json=body, timeout=120)
            assert_clean(r)


def test_path_segments_take_every_payload(server):
    for payload in PAYLOADS:
        quoted = quote(payload, safe="") or "%20"
        for method, path in (("GET", f"/v1/reports/{quoted}"), ("DELETE", f"/v1/silences/{quoted}"),
                             ("POST", f"/v1/alerts/silences/{quoted}/expire"), ("GET", f"/v1/query/{quoted}")):
            assert_clean(httpx.request(method, f"{server.url}{path}", headers=AUTH, timeout=30))


def test_every_named_query_parameter_takes_every_payload(server):
    # the read API's own tests fuzz each parameter's grammar; here, the payloads that aim at SQL
    aimed = [PAYLOADS[0], PAYLOADS[4], 'attr:a"b', "'; DROP TABLE spans; --", "1e20", "-99999999d", "x" * 5000]
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        queries = client.get("/v1/queries").json()["queries"]
        assert len(queries) > 10
        for q in queries:
            for name in q["params"]:
                for payload in aimed:
                    assert_clean(client.get(f"/v1/query/{q['name']}",
                                            params={name: payload, "limit": "5"} if name != "limit" else {name: payload}))


def test_the_data_is_intact_and_the_server_answers_after_the_attacks(server):
    rows = httpx.get(f"{server.url}/v1/query/spans", headers=AUTH, timeout=30,
                     params={"start": T0.isoformat(), "end": (T0 + timedelta(days=2)).isoformat(), "limit": "3"})
    assert rows.status_code == 200 and len(rows.json()["data"]) == 3
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


def test_bad_drift_columns_in_the_analysis_file_stop_start_up_naming_the_key(tmp_path: Path):
    from aiwatch.config import ConfigError
    from analysis.settings import AnalysisSettings

    with pytest.raises(ConfigError, match="drift_columns.*not allowed"):
        AnalysisSettings.from_dict({"drift_columns": ['attr:x"); SELECT 1; --:cat']})
    with pytest.raises(ConfigError, match="drift_columns.*unknown drift column"):
        AnalysisSettings.from_dict({"drift_columns": ["s.span_id FROM spans --"]})


def test_the_store_cannot_read_files_or_unlock_itself(tmp_path: Path):
    from store.db import Store

    db = Store(tmp_path / "aiwatch.duckdb")
    try:
        for sql in ("SELECT * FROM read_text('/etc/passwd')", "SELECT * FROM read_blob('/proc/self/environ')",
                    f"ATTACH '{tmp_path / 'other.duckdb'}' AS other", f"COPY spans TO '{tmp_path / 'x.csv'}'",
                    "SET enable_external_access = true", "LOAD httpfs"):
            with pytest.raises(duckdb.Error):
                db.query(sql)
        assert not (tmp_path / "x.csv").exists() and not (tmp_path / "other.duckdb").exists()
    finally:
        db.close()


def test_quoting_helper():
    from store.sql import attribute_key, json_path, quote_ident, quote_literal

    con = duckdb.connect()
    for text in ('a"b', "a'b", 'x", 1 AS "y', "\\'; --"):
        assert con.sql(f"SELECT 1 AS {quote_ident(text)}").columns == [text]
        assert con.sql(f"SELECT {quote_literal(text)} AS v").fetchall()[0][0] == text
    assert con.sql(f"SELECT json_extract_string('{json.dumps({'aiwatch.input.language': 'de'})}', "
                   f"{json_path('aiwatch.input.language')})").fetchall()[0][0] == "de"
    for bad in ('x"', "x'", "a b", "", "k" * 129, "x\x00"):
        with pytest.raises(ValueError):
            attribute_key(bad)
    with pytest.raises(ValueError):
        quote_ident("a\x00b")
