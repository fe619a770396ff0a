"""The weekly review: contents from a fake source, escaping, every format, and the CLI end to end."""
from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from otlp_data import model_calls

from dashboard import export
from dashboard.client import QueryResult
from store.queries import CALL_GROUPS

EVIL = "</script><script>alert('pwned')</script>"


class FakeSource:
    """Named queries answered from frames; anything else is 'missing' (an older server)."""

    def __init__(self, frames: dict[str, pd.DataFrame]) -> None:
        self.frames, self.calls = frames, []

    def query(self, name: str, **params: object) -> QueryResult:
        self.calls.append((name, params))
        if name == "incidents" and "alert_history" in self.frames:   # the server's grouping, in-process
            from store.incidents import firing_intervals, group_incidents

            end = datetime.fromisoformat(str(params["end"]))
            rows = [r for r in group_incidents(firing_intervals(self.frames["alert_history"].to_dict("records"), end),
                                               end) if r["severity"] in ("P1", "P2")]
            return QueryResult(name, "ok" if rows else "empty", pd.DataFrame(rows))
        if name not in self.frames:
            return QueryResult(name, "missing")
        frame = self.frames[name]
        if name == "calls":  # what the server computes: counts summed per group, rates as their ratio
            keys = list(CALL_GROUPS[str(params.get("by", "none"))]) or ["all"]   # none: one row of totals
            frame = frame.assign(all=0).groupby(keys, as_index=False).agg(
                requests=("requests", "sum"), errors=("errors", "sum"), p95_ms=("p95_ms", "max"),
                cost_usd=("cost_usd", "sum")).assign(error_rate=lambda f: f["errors"] / f["requests"])
        return QueryResult(name, "ok" if len(frame) else "empty", frame)


def summary_rows(route: str, errors: int, cost: float) -> dict:
    return {"service_name": "svc", "model": "gpt-x", "model_version": "v1", "route": route, "requests": 100,
            "errors": errors, "error_rate": errors / 100, "p50_ms": 100.0, "p95_ms": 300.0, "p99_ms": 500.0,
            "input_tokens": 1000.0, "output_tokens": 200.0, "cost_usd": cost}


def fake_source() -> FakeSource:
    return FakeSource({
        "calls": pd.DataFrame([summary_rows("/a", 5, 1.5), summary_rows(EVIL, 20, 2.5)]),
        "dimensions": pd.DataFrame({"service_name": ["svc", "svc"], "model": ["gpt-x"] * 2,
                                    "model_version": ["v1"] * 2, "route": ["/a", EVIL]}),
        "alert_history": pd.DataFrame([
            {"time": datetime(2026, 11, 17, 10, 0), "fingerprint": "f1", "rule": "HighErrorRate", "severity": "P1",
             "labels": '{"service": "svc"}', "from_state": "pending", "to_state": "firing"},
            {"time": datetime(2026, 11, 17, 10, 45), "fingerprint": "f1", "rule": "HighErrorRate", "severity": "P1",
             "labels": '{"service": "svc"}', "from_state": "firing", "to_state": "resolved"},
            {"time": datetime(2026, 11, 17, 10, 30), "fingerprint": "f3", "rule": "ErrorBudgetFastBurn",
             "severity": "P1", "labels": '{"service": "svc"}', "from_state": "pending", "to_state": "firing"},
            {"time": datetime(2026, 11, 17, 10, 40), "fingerprint": "f3", "rule": "ErrorBudgetFastBurn",
             "severity": "P1", "labels": '{"service": "svc"}', "from_state": "firing", "to_state": "resolved"},
            {"time": datetime(2026, 11, 18, 9, 0), "fingerprint": "f2", "rule": "DriftDetected", "severity": "P3",
             "labels": "{}", "from_state": "pending", "to_state": "firing"},
        ]),
        "canary": pd.DataFrame([{"time": datetime(2026, 11, 18), "service_name": "svc", "model_version": "v2",
                                 "verdict": "fail",
                                 "body": '{"checks": [{"metric": "error_rate", "failed": true}]}'}]),
    })


def test_iso_week_bounds_and_default() -> None:
    assert export.iso_week("2026-W47")[1:] == (datetime(2026, 11, 16), datetime(2026, 11, 23))
    label, start, _ = export.iso_week(None, today=date(2026, 11, 26))  # a Thursday: last week is W47
    assert (label, start) == ("2026-W47", datetime(2026, 11, 16))
    with pytest.raises(ValueError, match="ISO week"):
        export.iso_week("november")


def test_review_contents_from_a_source() -> None:
    review = export.build_weekly_review(fake_source(), "2026-W47")
    tables = review.tables()
    inc = tables["incidents"]   # two overlapping P1 alerts are one incident; P3 is not an incident
    assert inc["rules"].tolist() == ["ErrorBudgetFastBurn, HighErrorRate"] and inc["duration_min"].iloc[0] == 45.0
    failing = tables["failing_routes"]
    assert failing["route"].iloc[0] == EVIL and failing["errors"].iloc[0] == 20
    assert tables["canary"]["last_verdict"].tolist() == ["fail"]
    notes = " ".join(n for s in review.sections for n in s.notes)
    assert "not available on this server yet" in notes  # e.g. drift metrics on an older server
    # Every read is for this week or the one before, never more.
    starts = {p.get("start") for _, p in review_calls(fake_source())}
    assert starts == {"2026-11-16T00:00:00", "2026-11-09T00:00:00"}


def test_availability_is_errors_over_calls_never_a_mean_of_group_rates() -> None:
    # a big healthy version and a tiny broken one: the mean of their rates would say 50% errors
    rows = [summary_rows("/a", 10, 1.0) | {"requests": 1000, "model_version": "v1"},
            summary_rows("/a", 3, 1.0) | {"requests": 3, "model_version": None}]
    review = export.build_weekly_review(FakeSource({"calls": pd.DataFrame(rows)}), "2026-W47")
    [avail] = review.tables()["availability"]["availability"].tolist()
    assert avail == pytest.approx(1 - 13 / 1003)


def test_default_week_is_the_last_complete_week_with_data() -> None:
    def source(first: datetime, last: datetime) -> FakeSource:
        return FakeSource({"data_range": pd.DataFrame({"first_span": [first], "last_span": [last], "data_dir": [None]})})

    thursday = date(2026, 11, 26)   # W48; last complete week W47
    assert export.default_week(source(datetime(2026, 11, 1), datetime(2026, 11, 26)), thursday) == "2026-W47"
    # data stopped two weeks ago: the last week that has any
    assert export.default_week(source(datetime(2026, 11, 1), datetime(2026, 11, 11)), thursday) == "2026-W46"
    # all data is from this (incomplete) week: that week
    assert export.default_week(source(datetime(2026, 11, 24), datetime(2026, 11, 26)), thursday) == "2026-W48"


def review_calls(source: FakeSource) -> list:
    export.build_weekly_review(source, "2026-W47")
    return source.calls


def test_html_is_small_self_contained_and_escapes_text() -> None:
    page = export.to_html(export.build_weekly_review(fake_source(), "2026-W47"))
    assert EVIL not in page and "alert('pwned')</script>" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(" in page  # the route name, escaped in the table
    assert "<script" not in page and "http" not in page   # nothing runs, nothing is fetched
    assert len(page) < 300_000
    # the summary comes first, human-formatted: no JSON, no raw ratios
    summary = page[:page.index("<h2>Details</h2>")]
    assert "svc: availability 87.50%" in summary and "1 incident(s) (P1 1), 45 min in total" in summary
    assert "svc v2: last verdict fail (failed: error_rate)" in summary
    assert '{"' not in page and "Tue 17 Nov 10:00" in page


def test_every_format_is_written(tmp_path: Path) -> None:
    review = export.build_weekly_review(fake_source(), "2026-W47")
    paths = export.write(review, tmp_path)
    names = {p.relative_to(tmp_path).as_posix() for p in paths}
    assert {"weekly-review-2026-W47.html", "weekly-review-2026-W47.md",
            "weekly-review-2026-W47-csv/incidents.csv", "weekly-review-2026-W47-parquet/failing_routes.parquet"} <= names
    assert pd.read_parquet(tmp_path / "weekly-review-2026-W47-parquet/failing_routes.parquet")["route"].iloc[0] == EVIL
    md = (tmp_path / "weekly-review-2026-W47.md").read_text()
    assert "## Incidents (P1 / P2)" in md and "HighErrorRate" in md


def test_cli_exports_from_a_running_server(data_server, tmp_path: Path) -> None:
    # The week of the first call sent, not of the clock now: the calls reach back 50 minutes, so on a
    # Monday just after 00:00 UTC they (some or all) are last week's, and this week may have none.
    calls = model_calls(data_server.sent_ns)
    week = calls[0]["week"]
    proc = subprocess.run([sys.executable, "-m", "aiwatch", "export", "weekly", "--server", data_server.url,
                           "--week", week, "--format", "html,csv", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / f"weekly-review-{week}.html").read_text()
    assert "/summarize" in html and "checkout-assistant" in html
    routes = pd.read_csv(tmp_path / f"weekly-review-{week}-csv" / "failing_routes.csv")
    assert set(routes["route"]) == {c["route"] for c in calls if c["week"] == week}
    # the quality figures over every call of the week: format compliance among the successful calls'
    # checked outputs, means over the calls that carry a score (never a mean of hourly means)
    mine = [c for c in calls if c["week"] == week]
    checked = [c["format_ok"] for c in mine if not c["failed"] and c["format_ok"] is not None]
    want = {"format compliance": sum(checked) / len(checked),
            "quality mean": np.mean([c["quality_score"] for c in mine if c["quality_score"] is not None]),
            "confidence mean": np.mean([c["confidence"] for c in mine if c["confidence"] is not None])}
    quality = pd.read_csv(tmp_path / f"weekly-review-{week}-csv" / "quality.csv").set_index("figure")["this_week"]
    assert quality.to_dict() == pytest.approx(want, rel=1e-9)


def test_cli_defaults_write_under_the_servers_data_dir_for_the_week_with_data(data_server, tmp_path: Path) -> None:
    # run from another folder: the default data_dir setting (./aiwatch-data) is not the server's
    proc = subprocess.run([sys.executable, "-m", "aiwatch", "export", "weekly", "--server", data_server.url,
                           "--format", "html"], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert proc.returncode == 0, proc.stderr
    # The last complete week with data, else the week of the newest data: the calls span 50 minutes, so
    # either way the week their first call fell in (the export's clock is minutes after the sending).
    week = model_calls(data_server.sent_ns)[0]["week"]
    path = data_server.data_dir / "reports" / f"weekly-review-{week}.html"
    assert proc.stdout.strip() == str(path) and path.stat().st_size < 300_000
    assert not (tmp_path / "aiwatch-data").exists()


def test_cli_says_when_the_server_is_down(down_url: str, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "aiwatch", "export", "weekly", "--server", down_url,
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "cannot reach the aiwatch server" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_store_source_reads_a_column_that_is_all_null(store) -> None:
    import pyarrow as pa

    from store.schema import arrow_schema

    schema = arrow_schema("spans")
    cols = {f.name: pa.nulls(3, f.type) for f in schema}
    cols.update({"trace_id": pa.array(["a" * 32] * 3), "is_llm": pa.array([True] * 3),
                 "start_time": pa.array([datetime(2026, 11, 17, 10)] * 3, pa.timestamp("us")),
                 "status_code": pa.array(["ok"] * 3), "duration_ms": pa.array([1.0, 2.0, 3.0])})
    store.writer.write({"spans": pa.table(cols, schema=schema)})
    res = export.StoreSource(store).query("calls", by="route", start="2026-11-16T00:00:00", end="2026-11-23T00:00:00")
    assert res.ok and res.frame["route"].isna().all() and res.frame["requests"].tolist() == [3]


def test_humanized_numbers_keep_their_unit_in_last_week_columns() -> None:
    frame = pd.DataFrame({"p95_ms": [2258.4], "p95_ms_last_week": [2291.0], "calls_with_own_cost": [7997],
                          "input_per_mtok": [0.15]})
    row = export.humanize(frame).iloc[0].to_dict()
    assert row == {"p95": "2,258 ms", "p95 last week": "2,291 ms", "calls with own cost": "7,997",
                   "input per mtok": "$0.15"}
