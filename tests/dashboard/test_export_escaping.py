"""The weekly export keeps user data inert: no raw HTML or Markdown links in the Markdown file, no
formulas a spreadsheet would run in the CSV files."""
from __future__ import annotations

import csv
from datetime import datetime

import pandas as pd

from dashboard import export

HOSTILE = {"route": ["<img src=x onerror=alert(1)>", "[click](https://evil.example)", "`code` | *bold*",
                     "=HYPERLINK(\"https://evil.example\",\"x\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
                     "\tTAB", "\rCR", "/plain"],
           "errors": [1, 2, 3, 4, 5, 6, 7, 8, 9, -10]}


def review() -> export.WeeklyReview:
    frame = pd.DataFrame(HOSTILE)
    section = export.Section("Failing routes", {"failing_routes": frame},
                             notes=["route <b>x</b> had [a link](https://evil.example)"])
    return export.WeeklyReview("2026-W47", datetime(2026, 11, 16), datetime(2026, 11, 23), datetime(2026, 11, 24),
                               [section], {"Routes": ["<script>alert(2)</script> failed"]})


def test_markdown_has_no_raw_html_and_no_links() -> None:
    md = export.to_markdown(review())
    for raw in ("<img", "<b>", "<script>", "[click](", "[a link](", "`code`", "*bold*"):
        assert raw not in md, raw
    assert "&lt;img src=x onerror=alert(1)&gt;" in md and "\\[click\\](https://evil.example)" in md
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert all(line.count(" | ") == 1 for line in table)       # a | in a name never adds a cell


def test_csv_cells_never_start_a_formula(tmp_path) -> None:
    [path] = export.write(review(), tmp_path, formats=["csv"])
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    routes = [r["route"] for r in rows]
    for value in routes:
        assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value
    assert routes[3] == "'=HYPERLINK(\"https://evil.example\",\"x\")" and routes[-1] == "/plain"
    assert rows[-1]["errors"] == "-10"                       # numbers stay numbers
