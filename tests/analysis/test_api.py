"""Evidently drift reports over HTTP, against a real server (a subprocess) on a store with spans."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.analysis.gen import T0, Shift, spans, write

DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A server whose store holds two days of calls; the second day's 'search' prompts are longer."""
    from server_harness import start_server, stop_server

    from store.db import Store

    data = tmp_path_factory.mktemp("reports") / "data"
    db = Store(data / "aiwatch.duckdb")
    write(db, spans(T0, 2 * 24 * 60, 2, seed=5, shifts=(Shift(T0 + DAY, T0 + 2 * DAY, "input_tokens", 1.5,
                                                                   route="search"),)))
    db.close()
    (data / "analysis.toml").write_text("baseline_days = 1.0\n")
    srv = start_server(data)
    yield srv
    stop_server(srv)


def post(server, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/reports/drift", json=body, timeout=120)


def test_a_report_is_generated_saved_recorded_and_served(server):
    r = post(server, {"route": "search", "start": (T0 + DAY).isoformat(), "end": (T0 + DAY + 6 * timedelta(hours=1)).isoformat()})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["url"] == f"/v1/reports/{out['id']}" and out["reference"] == [T0.isoformat(), (T0 + DAY).isoformat()]
    assert out["current_rows"] > 0 and out["reference_rows"] > 0 and "input_tokens" in out["columns"]
    page = httpx.get(server.url + out["url"], timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert len(page.text) > 10_000 and "input_tokens" in page.text
    saved = list(Path(server.data_dir, "reports").glob(f"*{out['id']}.html"))
    assert len(saved) == 1
    rows = server.query("reports", start=(T0 + DAY).isoformat(), end=(T0 + 2 * DAY).isoformat(), analyzer="evidently")
    assert [r["route"] for r in rows] == ["search"] and out["id"] in rows[0]["body"]


def test_a_pinned_reference_and_chosen_columns(server):
    r = post(server, {"route": "chat", "service": "svc", "start": (T0 + DAY).isoformat(),
                      "end": (T0 + 2 * DAY).isoformat(), "reference_start": T0.isoformat(),
                      "reference_end": (T0 + 12 * timedelta(hours=1)).isoformat(),
                      "columns": ["input_tokens", "attr:aiwatch.input.language:cat"]})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["columns"] == ["input_tokens", "attr:aiwatch.input.language"]
    assert out["reference"][1] == (T0 + 12 * timedelta(hours=1)).isoformat()


@pytest.mark.parametrize("body,status,code", [
    ({"route": "nope", "start": T0.isoformat(), "end": (T0 + DAY).isoformat()}, 404, "unknown_route"),
    ({"route": "search", "start": (T0 + 5 * DAY).isoformat(), "end": (T0 + 6 * DAY).isoformat()}, 422, "empty_window"),
    ({"route": "search", "start": (T0 + DAY).isoformat(), "end": (T0 + 2 * DAY).isoformat(),
      "reference_start": (T0 - 3 * DAY).isoformat(), "reference_end": (T0 - 2 * DAY).isoformat()}, 422, "empty_window"),
    ({"start": T0.isoformat(), "end": (T0 + DAY).isoformat()}, 400, "bad_parameter"),
    ({"route": "search", "start": "yesterday-ish", "end": (T0 + DAY).isoformat()}, 400, "bad_parameter"),
    ({"route": "search", "start": (T0 + DAY).isoformat(), "end": T0.isoformat()}, 400, "bad_parameter"),
    ({"route": "search", "start": T0.isoformat(), "end": (T0 + DAY).isoformat(), "reference_start": T0.isoformat()},
     400, "bad_parameter"),
    ({"route": "search", "start": T0.isoformat(), "end": (T0 + DAY).isoformat(), "columns": ["no_such_column"]},
     400, "bad_parameter"),
])
def test_bad_input_is_a_4xx_with_a_structured_error(server, body, status, code):
    r = post(server, body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["message"] and err["request_id"] == r.headers["x-request-id"]


def test_not_json_and_unknown_reports(server):
    r = httpx.post(f"{server.url}/v1/reports/drift", content=b"{nope", timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_json"
    for rid in ("0123456789abcdef", "..aiwatch.duckdb", "x" * 40):
        r = httpx.get(f"{server.url}/v1/reports/{rid}", timeout=30)
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_report"


def test_the_drift_page_generates_a_report_and_links_to_it(server, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from dashboard import client

    monkeypatch.setenv("AIWATCH_SERVER_URL", server.url)
    client.clear_cache()
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py"), default_timeout=120)
    at.query_params["start"], at.query_params["end"] = T0.isoformat(), (T0 + 2 * DAY).isoformat()
    at.run()
    at.switch_page("views/drift.py").run()
    fields = {t.label: t for t in at.text_input}
    fields["Route"].set_value("search")
    fields["Start (UTC)"].set_value((T0 + DAY).isoformat())
    fields["End (UTC)"].set_value((T0 + DAY + timedelta(hours=3)).isoformat())
    next(b for b in at.button if b.label == "Generate report").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Report saved" in at.success[0].value
    link = next(e for e in at.get("link_button")).proto.url
    assert link.startswith(f"{server.url}/v1/reports/")
    assert httpx.get(link, timeout=30).headers["content-type"].startswith("text/html")
