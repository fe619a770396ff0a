"""Drive headless Chromium over the DevTools protocol: open a URL, wait until Streamlit has
rendered, read the page text and save a screenshot.

`chromium --screenshot --virtual-time-budget` fires before Streamlit's websocket delivers the
page (virtual time does not wait for it), so the test waits on the rendered DOM instead.
"""
from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from websockets.sync.client import connect

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000"]

# Done when the page title is there, Streamlit is not running the script, and skeletons are gone.
_READY_JS = """(() => {
  const running = document.querySelector('[data-testid="stStatusWidget"]');
  const skeleton = document.querySelector('[data-testid="stSkeleton"]');
  const h1 = document.querySelector('h1');
  return JSON.stringify({ready: !!h1 && !running && !skeleton, text: document.body.innerText,
                         charts: document.querySelectorAll('.js-plotly-plot').length});
})()"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    def __init__(self, binary: str) -> None:
        self._profile = tempfile.mkdtemp(prefix="aiwatch-chromium-")
        self.proc = subprocess.Popen([binary, *FLAGS, "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
                                      f"--user-data-dir={self._profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and port is None:
            line = self.proc.stderr.readline()
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
        if port is None:
            self.close()
            raise RuntimeError("chromium did not start its DevTools endpoint")
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(t for t in targets if t["type"] == "page")
        self._stack = contextlib.ExitStack()
        self._ws = self._stack.enter_context(connect(page["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024,
                                                     open_timeout=10))
        self._ids = itertools.count(1)
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1, mobile=False)

    def call(self, method: str, **params: object) -> dict:
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv(timeout=60))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def render(self, url: str, screenshot: Path, timeout: float = 45, settle_s: float = 0.5,
               min_charts: int = 0) -> tuple[str, int]:
        """Open `url`, wait for Streamlit to finish, save a PNG; returns the visible text and chart count.

        Finished: rendered, at least `min_charts` charts drawn (they draw after the script ends), and
        the text and chart count unchanged for `settle_s`."""
        self.call("Page.navigate", url=url)
        state = self._settled(lambda: True, timeout, settle_s, min_charts)
        self._screenshot(screenshot)
        return state.get("text", ""), int(state.get("charts", 0))

    def _settled(self, also: Callable[[], bool], timeout: float, settle_s: float, min_charts: int = 0) -> dict:
        """Poll the page until it is rendered and `also()` holds, with nothing changing for `settle_s`."""
        deadline, state, stable_since, last = time.monotonic() + timeout, {}, None, None
        while time.monotonic() < deadline:
            time.sleep(0.25)
            state = json.loads(str(self.evaluate(_READY_JS)))
            seen = (state["text"], state["charts"])
            if state["ready"] and state["charts"] >= min_charts and also():
                if seen != last or stable_since is None:
                    stable_since = time.monotonic()
                elif time.monotonic() - stable_since >= settle_s:
                    break
            else:
                stable_since = None
            last = seen
        return state

    def _screenshot(self, path: Path) -> None:
        shot = self.call("Page.captureScreenshot", format="png")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def evaluate(self, expression: str) -> object:
        """The value of a JavaScript expression in the page (JSON-serializable)."""
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"page script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def click(self, x: float, y: float) -> None:
        """A real left click at viewport pixel (x, y): move there, press, release."""
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        time.sleep(0.3)   # canvas widgets (the data grid) take the hover on their next frame
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def wait_rendered(self, screenshot: Path, url_part: str, timeout: float = 45,
                      settle_s: float = 0.5) -> tuple[str, str]:
        """After a click: wait until the address contains `url_part` and Streamlit has rendered;
        save a PNG; returns the address and the visible text."""
        href = ""

        def at_url() -> bool:
            nonlocal href
            href = str(self.evaluate("location.href"))
            return url_part in href

        state = self._settled(at_url, timeout, settle_s)
        self._screenshot(screenshot)
        return href, state.get("text", "")

    def close(self) -> None:
        stack = getattr(self, "_stack", None)
        if stack is not None:
            with contextlib.suppress(Exception):
                stack.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self._profile, ignore_errors=True)
