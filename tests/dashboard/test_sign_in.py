"""With tokens set, the dashboard (which holds the API token) shows nothing before sign-in: a real
browser against `streamlit run` and a real server with a token; and no sign-in configured at all
is refused rather than left open."""
from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from browser import Browser, find_chromium
from server_harness import ROOT, free_port, start_server, stop_server
from streamlit.testing.v1 import AppTest

from aiwatch.httpapi import signed_link
from dashboard import client
from dashboard.commands import streamlit_command

CHROMIUM = find_chromium()
TOKEN, PASSWORD = "api-t0ken", "correct horse battery staple"
SHOTS = ROOT / "artifacts" / "screenshots"
APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")

_FILL = """(() => {
  const input = document.querySelector('input[type="password"]');
  if (!input) return false;
  Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(input, %s);
  input.dispatchEvent(new Event('input', {bubbles: true}));
  return true;
})()"""
_SUBMIT = """(() => {
  const b = [...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Sign in');
  if (b) b.click();
  return !!b;
})()"""


_OPEN_DRIFT = """document.querySelector('a[href$="/drift"]').click()"""


def save_report(data_dir: Path) -> str:
    """A report as the server saves one (file under reports/, row in analysis_reports): its path."""
    from store import analytics
    from store.db import Store

    report_id = "0123456789abcdef"
    (data_dir / "reports").mkdir(parents=True)
    page = data_dir / "reports" / f"drift-{report_id}.html"
    page.write_text("<html><body><h1>saved drift report</h1></body></html>")
    store = Store(data_dir / "aiwatch.duckdb", writer_max_delay_ms=1)
    store.writer.write(tables={"analysis_reports": analytics.reports_table([{
        "time": datetime(2026, 11, 1), "window_end": datetime(2026, 11, 2), "analyzer": "evidently",
        "kind": "html_report", "route": "/r", "computed_at": datetime(2026, 11, 2),
        "body": {"id": report_id, "path": str(page.resolve()), "url": f"/v1/reports/{report_id}"}}])})
    store.close()
    return f"/v1/reports/{report_id}"


def page_text(browser: Browser) -> str:
    res = browser.call("Runtime.evaluate", expression="document.body.innerText", returnByValue=True)
    return res["result"].get("value", "")


def wait_text(browser: Browser, wanted: str, limit_s: float = 60) -> str:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        text = page_text(browser)
        if wanted in text:
            return text
        time.sleep(0.25)
    raise AssertionError(f"{wanted!r} never showed:\n{page_text(browser)[:2000]}")


def sign_in(browser: Browser, password: str) -> None:
    deadline = time.monotonic() + 30
    while not browser.call("Runtime.evaluate", expression=_FILL % json.dumps(password),
                           returnByValue=True)["result"]["value"]:
        assert time.monotonic() < deadline, "no password field"
        time.sleep(0.25)
    time.sleep(0.5)   # let Streamlit take the value before the submit
    assert browser.call("Runtime.evaluate", expression=_SUBMIT, returnByValue=True)["result"]["value"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_password_sign_in_in_a_real_browser(tmp_path):
    env = {"AIWATCH_API_TOKEN": TOKEN}
    report = save_report(tmp_path / "data")
    server = start_server(tmp_path / "data", env=env)
    port = free_port()
    log = (tmp_path / "streamlit.log").open("wb")
    proc = subprocess.Popen(streamlit_command(port), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **env, "AIWATCH_SERVER_URL": server.url,
                                 "AIWATCH_DASHBOARD_PASSWORD": PASSWORD})
    browser = None
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "streamlit did not start"
            time.sleep(0.2)
        browser = Browser(CHROMIUM)
        text, _ = browser.render(f"{url}/drift", SHOTS / "sign-in.png")
        assert "Password" in text and "Sign in" in text
        assert "Drift" not in text and "Overview" not in text and "Filters" not in text
        sign_in(browser, "guess")
        wait_text(browser, "Wrong password")
        assert "Evidently reports" not in page_text(browser)
        sign_in(browser, PASSWORD)
        text = wait_text(browser, "Sign out")
        assert "Overview" in text
        browser.call("Runtime.evaluate", expression=_OPEN_DRIFT)   # in-app navigation keeps the sign-in
        wait_text(browser, "Evidently reports")
        # A saved report opens from the browser with the dashboard's signed link, not with a bare one.
        browser.call("Page.navigate", url=server.url + report)
        text = wait_text(browser, "unauthorized", limit_s=20)     # the server's JSON 401
        assert "saved drift report" not in text
        text, _ = browser.render(server.url + signed_link(TOKEN, report), SHOTS / "report-signed.png",
                                 timeout=10, settle_s=0)
        assert "saved drift report" in text
    finally:
        if browser is not None:
            browser.close()
        proc.terminate()
        proc.wait(20)
        stop_server(server)


def test_tokens_without_any_sign_in_configured_show_nothing(monkeypatch):
    monkeypatch.setenv("AIWATCH_API_TOKEN", TOKEN)
    monkeypatch.setenv("AIWATCH_SERVER_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("AIWATCH_DASHBOARD_PASSWORD", raising=False)
    client.clear_cache()
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    assert any("needs a sign-in" in e.value for e in at.error)
    assert [t.value for t in at.title] == ["aiwatch"] and not at.metric and not at.text_input
