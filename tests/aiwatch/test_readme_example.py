"""The README's shim example runs as written against the demo's pieces (a server and the fake
provider); only the two loopback ports are the test's own."""
from __future__ import annotations

import re
import subprocess
import sys
import time

from server_harness import ROOT, free_port, start_server, stop_server

from sample_data.fake_provider import FakeOpenAI


def test_readme_shim_example_reaches_the_server(tmp_path):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Instrumenting a service with the shim"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "127.0.0.1:4318" in code and "127.0.0.1:8600" in code   # the demo's defaults
    srv = start_server(tmp_path / "data")
    fake = FakeOpenAI(port=free_port()).start()
    try:
        script = code.replace("127.0.0.1:4318", f"127.0.0.1:{srv.port}").replace("127.0.0.1:8600",
                                                                                  f"127.0.0.1:{fake.port}")
        proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        request_id = proc.stdout.split()[-1]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not srv.query("request", request_id=request_id):
            time.sleep(0.2)
        spans = srv.query("request", request_id=request_id)
        assert spans and spans[0]["route"] == "answer" and spans[0]["service_name"] == "support-bot"
    finally:
        fake.close()
        stop_server(srv)
