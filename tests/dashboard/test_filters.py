"""Global filters live in the URL: a shared link opens the same view, and widgets write back to it."""
from __future__ import annotations

from pathlib import Path

import pytest
from otlp_data import SERVICE
from streamlit.testing.v1 import AppTest

from dashboard import client, filters
from dashboard.filters import Filters, from_mapping, view_url

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


def test_link_filters_are_applied_and_kept(data_server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIWATCH_SERVER_URL", data_server.url)
    client.clear_cache()
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({"service": SERVICE, "start": "-6h", "route": "/classify"})
    at.run()
    assert at.sidebar.selectbox(key="f_service").value == SERVICE
    assert at.sidebar.selectbox(key="f_range").value == "-6h"
    assert at.query_params["service"] == SERVICE and at.query_params["route"] == "/classify"
    # Switching page keeps them; the page reads only the filtered rows (half the calls are /classify).
    at.switch_page("views/review.py").run()
    assert at.query_params["route"] == "/classify"
    assert [m.value for m in at.metric if m.label == "Reviewed"] == ["15"]


def test_widgets_write_the_url(data_server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIWATCH_SERVER_URL", data_server.url)
    client.clear_cache()
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert "start" not in at.query_params  # defaults stay out of the link
    at.sidebar.selectbox(key="f_range").set_value("-1h").run()
    at.sidebar.selectbox(key="f_model").set_value("gpt-4o-mini").run()
    assert at.query_params["start"] == "-1h" and at.query_params["model"] == "gpt-4o-mini"
    at.sidebar.selectbox(key="f_range").set_value("custom").run()
    at.sidebar.text_input(key="f_start").input("2020-01-01T00:00:00").run()
    assert at.query_params["start"] == "2020-01-01T00:00:00"
    assert not at.exception


def test_from_mapping_rejects_bad_times_and_reads_lists() -> None:
    f = from_mapping({"start": "yesterday-ish", "service": ["a", "b"], "route": " "})
    assert f == Filters(start=filters.DEFAULT_START, end="now", service="b")


def test_grain_follows_the_window() -> None:
    assert Filters(start="-1h").grain() == "1m"
    assert Filters(start="-7d").grain() == "1h"


def test_view_url_carries_the_filters() -> None:
    url = view_url("http://127.0.0.1:8501/", "latency", {"service": "checkout", "route": "/a b", "start": "-6h"})
    assert url == "http://127.0.0.1:8501/latency?start=-6h&service=checkout&route=%2Fa+b"
