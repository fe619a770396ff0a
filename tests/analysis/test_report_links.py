"""A saved report opened from a browser: with a token set, the dashboard's signed, short-lived
link works where a bare link (no bearer header) is refused."""
from __future__ import annotations

import time
from datetime import datetime
from types import SimpleNamespace

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from aiwatch.httpapi import signed_link
from analysis.api import ROUTES
from store import analytics
from store.db import Store

TOKEN = "api-t0ken"
REPORT_ID = "0123456789abcdef"


@pytest.fixture
def api(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    page = reports / f"drift-{REPORT_ID}.html"
    page.write_text("<html><body>drift report</body></html>")
    store = Store(tmp_path / "aiwatch.duckdb", writer_max_delay_ms=1)
    store.writer.write(tables={"analysis_reports": analytics.reports_table([{
        "time": datetime(2026, 11, 1), "window_end": datetime(2026, 11, 2), "analyzer": "evidently",
        "kind": "html_report", "route": "/r", "computed_at": datetime(2026, 11, 2),
        "body": {"id": REPORT_ID, "path": str(page), "url": f"/v1/reports/{REPORT_ID}"}}])})
    app = Starlette(routes=ROUTES)
    app.state.aiwatch = SimpleNamespace(store=store, settings=SimpleNamespace(api_token=TOKEN,
                                                                              data_dir=str(tmp_path)))
    yield TestClient(app)
    store.close()


def test_signed_link_opens_the_report_and_nothing_else(api):
    path = f"/v1/reports/{REPORT_ID}"
    assert api.get(path).status_code == 401                                   # a bare browser link
    assert api.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    link = signed_link(TOKEN, path)
    r = api.get(link)
    assert r.status_code == 200 and "drift report" in r.text
    assert api.get(signed_link("other-token", path)).status_code == 401       # signed by someone else
    assert api.get(signed_link(TOKEN, path, now=time.time() - 3600)).status_code == 401   # expired
    tampered = link.replace("expires=", "expires=9")                          # a later expiry
    assert api.get(tampered).status_code == 401
    other = signed_link(TOKEN, "/v1/reports/fedcba9876543210")                # another path's signature
    assert api.get(path + "?" + other.split("?", 1)[1]).status_code == 401


def test_without_a_token_links_stay_bare():
    assert signed_link("", "/v1/reports/x") == "/v1/reports/x"
