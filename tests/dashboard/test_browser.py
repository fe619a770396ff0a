"""A real browser against the real server and `streamlit run`: every page renders its headings and
values. Screenshots land in artifacts/screenshots/ (look at them)."""
from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from browser import Browser, find_chromium
from otlp_data import N_SPANS, REQUEST_ID, SECRET_EMAIL, model_calls
from server_harness import ROOT, free_port

from dashboard.commands import streamlit_command

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
SHOTS = ROOT / "artifacts" / "screenshots"

# url path -> texts the rendered page must show (values from the telemetry the data server holds,
# computed independently with numpy over the calls that were sent)
_OK = np.array([c["duration_ms"] for c in model_calls() if not c["failed"]])
_FAILED = sum(c["failed"] for c in model_calls())
P50, P95, P99 = (f"{np.percentile(_OK, q):,.0f} ms" for q in (50, 95, 99))
PAGES: dict[str, tuple[str, ...]] = {
    "": ("Overview", "Requests", f"{N_SPANS + 1}", P95, f"{_FAILED / (N_SPANS + 1):.2%}", "SLOs and error budget",
         "What changed since yesterday"),
    "latency": ("Latency", "Percentiles over time", P50, P95, P99, "Distribution"),
    "errors": ("Errors & reliability", "Failed calls", f"{_FAILED}", f"{_FAILED / (N_SPANS + 1):.2%}",
               "Recent failed calls"),
    "cost": ("Cost & tokens", f"${N_SPANS * 0.0125 + 0.02:,.2f}", "Month-end projection", "Top spenders", "Prices applied"),
    "resources": ("Resources", "CPU", "46.0%", "Queue depth"),
    "quality": ("Quality & confidence", "Format compliance", "Confidence distribution"),
    "drift": ("Drift", "Evidently reports"),
    "review": ("Human review", "Override rate", "50.0%", "hallucinated order number"),
    "canary": ("Canary & shadow", "Arms side by side"),
    "alerts": ("Alerts",),
    "incident": ("Incident", "One row per incident"),   # the table itself is a canvas
    f"traces?id={REQUEST_ID}": ("Traces", "Span waterfall", "[REDACTED:email]", "Audit record",
                                 "route:primary>primary:ok"),
    "weekly": ("Weekly review", "Download HTML", "Top changes against last week", "Failing routes"),
}
CHARTS = {"": 4, "latency": 2, "errors": 3, "cost": 1, "resources": 4, "quality": 1, "review": 2, "canary": 1,
          f"traces?id={REQUEST_ID}": 1}


@pytest.fixture(scope="module")
def dashboard_url(data_server) -> Iterator[str]:
    port = free_port()
    log = (data_server.data_dir / f"streamlit-{port}.log").open("wb")
    proc = subprocess.Popen(streamlit_command(port), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "AIWATCH_SERVER_URL": data_server.url})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("streamlit did not start")
    yield url
    proc.terminate()
    proc.wait(20)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    b = Browser(CHROMIUM)
    yield b
    b.close()


def weekly_availability(sent_ns: int) -> tuple[str, str]:
    """The week of the first call sent and that week's availability line. Not the clock's week: the
    calls reach back 50 minutes, so just after Monday 00:00 UTC some or all of them are last week's."""
    calls = model_calls(sent_ns)
    week = calls[0]["week"]
    in_week = [c for c in calls if c["week"] == week]
    return week, f"checkout-assistant: availability {1 - sum(c['failed'] for c in in_week) / len(in_week):.2%}"


@pytest.mark.parametrize("path", list(PAGES))
def test_page_renders_in_a_real_browser(path: str, dashboard_url: str, browser: Browser, data_server) -> None:
    name = path.split("?")[0] or "overview"
    expected = PAGES[path]
    if path == "weekly":
        week, availability = weekly_availability(data_server.sent_ns)
        path, expected = f"weekly?week={week}", (*expected, availability)
    text, charts = browser.render(f"{dashboard_url}/{path}", SHOTS / f"{name}.png", min_charts=CHARTS.get(path, 0))
    missing = [t for t in expected if t not in text]
    assert not missing, f"{name}: {missing} not on the page:\n{text[:3000]}"
    for bad in ("Traceback", "Error running app", SECRET_EMAIL, "Page not found"):
        assert bad not in text
    assert charts >= CHARTS.get(path, 0), f"{name}: only {charts} chart(s) rendered"
    assert (SHOTS / f"{name}.png").stat().st_size > 20_000  # a real page, not a blank frame


# The failure-class chart's points: scroll the first one with a trace id into view, and say where it
# is on screen and which trace it carries (plotly draws markers as path.point in trace order).
_EXEMPLAR_POINT_JS = """(() => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const traces = gd.querySelectorAll('.scatterlayer .trace');
    for (let t = 0; t < gd.data.length && t < traces.length; t++) {
      const custom = gd.data[t].customdata;
      if (!custom) continue;
      const points = traces[t].querySelectorAll('.points path.point');
      for (let i = 0; i < points.length && i < custom.length; i++) {
        if (!/^[0-9a-f]{32}$/.test(custom[i][0])) continue;
        points[i].scrollIntoView({block: 'center'});
        const r = points[i].getBoundingClientRect();
        return JSON.stringify({trace_id: custom[i][0], x: r.x + r.width / 2, y: r.y + r.height / 2});
      }
    }
  }
  return null;
})()"""


def test_a_chart_point_opens_its_trace_in_one_click(dashboard_url: str, browser: Browser) -> None:
    import json

    text, _ = browser.render(f"{dashboard_url}/errors", SHOTS / "errors-before-click.png", min_charts=CHARTS["errors"])
    assert "Click a point to open its newest failing trace" in text
    found = browser.evaluate(_EXEMPLAR_POINT_JS)
    assert found, "no chart point carries a trace id"
    point = json.loads(found)
    # one more try if the page did not move: once in 17 local runs a first click right after the
    # scroll did not register. (A click that went to a failure class with no call at the same spot
    # was a product bug, fixed in charts.failure_classes.)
    for _ in range(2):
        time.sleep(0.5)   # the scroll settles before the click lands
        browser.click(point["x"], point["y"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "traces" not in str(browser.evaluate("location.href")):
            time.sleep(0.25)
        if "traces" in str(browser.evaluate("location.href")):
            break
        point = json.loads(browser.evaluate(_EXEMPLAR_POINT_JS))
    href, text = browser.wait_rendered(SHOTS / "trace-from-chart-point.png", "traces")
    assert f"id={point['trace_id']}" in href, href
    assert "Span waterfall" in text and point["trace_id"] in text, text[:3000]
    for bad in ("Traceback", "Error running app", SECRET_EMAIL, "No trace"):
        assert bad not in text


# The "Recent failed calls" table (a canvas): where its first trace-id cell is, and a stand-in for
# window.open that records the address a click opens (Streamlit opens link cells in a new tab).
_FAILED_TABLE_JS = """(() => {
  window.__opened = [];
  window.open = (url) => { window.__opened.push(String(url)); return null; };
  const heading = [...document.querySelectorAll('h3')].find(h => h.innerText.includes('Recent failed calls'));
  if (!heading) return null;
  const all = [...document.querySelectorAll('[data-testid="stDataFrame"]')];
  const grid = all.find(g => heading.compareDocumentPosition(g) & Node.DOCUMENT_POSITION_FOLLOWING);
  if (!grid) return null;
  grid.scrollIntoView({block: 'center'});
  const r = grid.getBoundingClientRect();
  return JSON.stringify({x: r.x + 60, y: r.y + 35 + 17});
})()"""


def test_a_failed_call_row_opens_its_trace_in_one_click(dashboard_url: str, browser: Browser) -> None:
    import json

    browser.render(f"{dashboard_url}/errors", SHOTS / "errors-table-before-click.png", min_charts=CHARTS["errors"])
    found = browser.evaluate(_FAILED_TABLE_JS)
    assert found, "no failed-calls table"
    cell = json.loads(found)
    time.sleep(0.5)
    browser.click(cell["x"], cell["y"])
    deadline = time.monotonic() + 10
    opened: list = []
    while not opened and time.monotonic() < deadline:
        time.sleep(0.25)
        opened = browser.evaluate("window.__opened") or []
    assert opened, "clicking the trace cell opened nothing"
    assert "/traces?id=" in opened[0], opened
    trace_id = opened[0].split("id=")[1][:32]
    text, _ = browser.render(opened[0] if opened[0].startswith("http") else f"{dashboard_url}{opened[0]}",
                             SHOTS / "trace-from-failed-call.png")
    assert "Span waterfall" in text and trace_id in text and "error" in text
