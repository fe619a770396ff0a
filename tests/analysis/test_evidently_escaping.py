"""The saved Evidently report keeps hostile column names and category values (span attributes) as
data: no `</script>` in them can end the report's script block and run as markup."""
from __future__ import annotations

import json
import re

import pandas as pd

from analysis.evidently_report import _report, save_inert_html
from analysis.settings import DriftColumn

NAME = 'attr:x</script><script>window.pwned=1</script><img src=x onerror="window.pwned=2">'
VALUE = "</script><script>window.pwned=3</script>&amp;<b>"


def test_hostile_names_and_values_stay_data(tmp_path):
    columns = [DriftColumn(NAME, "cat"), DriftColumn("latency_ms", "num")]
    reference = pd.DataFrame({NAME: ["a", "b"] * 40, "latency_ms": [float(i) for i in range(80)]})
    current = pd.DataFrame({NAME: [VALUE, "b"] * 40, "latency_ms": [float(i + 40) for i in range(80)]})
    path = tmp_path / "report.html"
    save_inert_html(_report(reference, current, columns, 0.5), path)
    html = path.read_text()
    assert "window.pwned" in html                                 # the data is there ...
    for markup in ("<script>window.pwned", "<img src=x", "<b>"):
        assert markup not in html                                 # ... but never as markup
    data = [json.loads(m.group(1)) for m in re.finditer(r"^\s*var \w+ = (\{.*\});?\s*$", html, re.M)]
    text = json.dumps(data, ensure_ascii=False)
    assert NAME.replace('"', '\\"') in text and VALUE in text   # and reads back unchanged
