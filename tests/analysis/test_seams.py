"""The stage's seams: catalog completeness, read queries, scheduled jobs and the CLI."""
from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import numpy as np
import pytest

from aiwatch.config import Settings
from analysis import registry, runner
from analysis.base import Window
from analysis.metrics_catalog import CATALOG, PAGES, describe, page_of
from analysis.settings import AnalysisSettings
from core.clock import utcnow
from core.grains import floor_time
from store.queries import store_queries
from tests.analysis.gen import T0, minute, spans, write

REGISTRY = store_queries()

CONTRACT = """requests rps errors error_rate error_rate_4xx error_rate_5xx model_failure_rate timeouts latency_p50_ms
latency_p95_ms latency_p99_ms retries breaker_opens fallback_rate fallback_rule_based fallback_human input_tokens
output_tokens cost_usd cost_per_request_usd format_ok_rate quality_mean confidence_mean confidence_ks_stat
confidence_ks_pvalue confidence_psi confidence_wasserstein drift_share override_rate reviewed cpu_utilization
gpu_utilization memory_utilization queue_depth burn_rate_availability burn_rate_latency slo_attainment
canary_verdict shadow_agreement_rate""".split()


def test_every_owned_metric_is_in_the_catalog_and_the_contract_is_covered():
    owned = {m for spec in registry.ANALYZERS.specs() for m in spec.cls.owns}
    assert owned <= set(CATALOG), owned - set(CATALOG)
    assert set(CONTRACT) <= owned and "drift_score:" in owned
    assert describe("drift_score:input_tokens") == CATALOG["drift_score:"]


def test_every_metric_is_on_one_dashboard_page_that_exists():
    from pathlib import Path
    views = Path(__file__).resolve().parents[2] / "dashboard" / "views"
    placed = [m for metrics in PAGES.values() for m in metrics]
    assert sorted(placed) == sorted(CATALOG), set(placed) ^ set(CATALOG)   # each once, none missing
    assert all((views / f"{page}.py").is_file() for page in PAGES)
    assert page_of("drift_score:input_tokens") == "drift" and page_of("slo_bad:checkout-latency") == "overview"
    assert page_of("route_in_high_score") == "drift" and page_of("route_slow_calls") == "latency"
    assert page_of("not_a_metric") == "overview"


def test_metrics_query_selects_rollups_breakdowns_and_labels(store):
    write(store, spans(T0, 3, 40, seed=1))
    runner.analyze(store, registry.build(store, names=["traffic"])[0], Window(T0, minute(3), T0))
    q = REGISTRY["metrics"]
    base = {"start": T0.isoformat(), "end": minute(3).isoformat(), "metric": "requests,errors"}
    rollup = q.execute(store, base).to_pylist()
    assert {r["metric"] for r in rollup} == {"requests", "errors"} and len(rollup) == 6
    assert all(r["service_name"] is None for r in rollup)
    routes = q.execute(store, {**base, "metric": "requests", "service": "svc", "route": "*"}).to_pylist()
    assert sorted({r["route"] for r in routes}) == ["chat", "search"] and all(r["model"] is None for r in routes)
    assert sum(r["value"] for r in routes) == 120
    chat = q.execute(store, {**base, "metric": "requests", "service": "svc", "route": "chat"}).to_pylist()
    assert len(chat) == 3
    for name in ("top_spenders", "latency_distribution", "confidence_distribution", "overrides", "canary", "drift"):
        out = REGISTRY[name].execute(store, {"start": T0.isoformat(), "end": minute(3).isoformat()})
        assert out is not None
    spend = REGISTRY["top_spenders"].execute(store, {"start": T0.isoformat(), "end": minute(3).isoformat(), "by": "user"})
    assert spend.num_rows == 7 and spend.column("cost_usd").to_pylist()[0] > 0
    hist = REGISTRY["latency_distribution"].execute(store, {"start": T0.isoformat(), "end": minute(3).isoformat()})
    ok = store.scalar("SELECT count(*) FROM spans WHERE status_code <> 'error'")
    assert sum(hist.column("count").to_pylist()) == ok
    # the confidence histogram against numpy; a baseline read without quantiles has the same bins
    window = {"start": T0.isoformat(), "end": minute(3).isoformat()}
    conf = store.query("SELECT confidence FROM spans WHERE confidence IS NOT NULL").column("confidence").to_numpy()
    dist = REGISTRY["confidence_distribution"].execute(store, window).to_pylist()
    bare = REGISTRY["confidence_distribution"].execute(store, {**window, "quantiles": "false"}).to_pylist()
    expected = np.bincount(np.minimum((np.clip(conf, 0, 1) * 20).astype(int), 19), minlength=20)
    assert [r["count"] for r in dist] == [int(c) for c in expected if c]
    assert abs(dist[0]["p50"] - np.percentile(conf, 50)) < 1e-9
    assert [(r["bin_start"], r["count"], r["total"]) for r in bare] == [(r["bin_start"], r["count"], r["total"])
                                                                        for r in dist]
    assert all(r["p50"] is None for r in bare)


def test_scheduled_jobs_run_every_analyzer(store, tmp_path):
    from analysis.register import analysis_jobs

    jobs = analysis_jobs(Settings(data_dir=str(tmp_path)))
    assert {j.name: j.interval_s for j in jobs} == {"analysis-minute": 60, "analysis-hourly": 300}
    recent = floor_time(utcnow(), "1m") - timedelta(minutes=10)
    write(store, spans(recent, 5, 20, seed=3))
    ctx = SimpleNamespace(store=store, settings=None)
    done = {}
    for job in jobs:
        done.update(job.run(ctx))
    assert set(done) == set(registry.ANALYZERS) and all(v >= 0 for v in done.values())
    assert store.scalar("SELECT count(*) FROM job_state WHERE job LIKE 'analysis.%'") >= 4


def test_cli_backfills_with_a_progress_bar(tmp_path, capsys):
    from aiwatch.cli import main
    from store.db import Store

    db = Store(Settings(data_dir=str(tmp_path)).db_path)
    write(db, spans(T0, 30, 10, seed=4))
    db.close()
    code = main(["analyze", "--data-dir", str(tmp_path), "--since", T0.isoformat(),
                 "--until", minute(30).isoformat(), "--analyzers", "traffic,slo"])
    assert code == 0
    out = capsys.readouterr()
    assert "rows written by 2 analyzers" in out.out and "analyze" in out.err
    db = Store(Settings(data_dir=str(tmp_path)).db_path)
    try:
        assert db.scalar("SELECT count(*) FROM analysis_metrics WHERE metric = 'requests' AND grain = '1m' "
                         "AND service_name IS NULL") == 30
    finally:
        db.close()


def test_settings_reject_unknown_keys():
    from aiwatch.config import ConfigError

    with pytest.raises(ConfigError, match="nope"):
        AnalysisSettings.from_dict({"nope": 1})
    s = AnalysisSettings.from_dict({"slos": [{"name": "fast", "kind": "latency", "objective": 0.9,
                                              "threshold_ms": 800}], "baseline_days": 3})
    assert s.slos[0].threshold_ms == 800 and s.baseline_days == 3.0


def test_readme_documents_every_analysis_setting_with_its_default():
    from pathlib import Path

    from aiwatch.config import markdown_table

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text.split("### Analysis settings", 1)[1].split("\n### ", 1)[0]
    assert markdown_table("analysis") in section
    assert sum(line.startswith("| `") for line in section.splitlines()) == len(AnalysisSettings.model_fields)


def test_the_readme_example_loads(tmp_path):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = text.split("### Analysis settings", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "analysis.toml").write_text(example)
    s = AnalysisSettings.load(tmp_path, env={})
    assert s.baseline_days == 3.0 and s.slos[0].threshold_ms == 2500 and len(s.drift_columns) == 3


def test_migration_101_moves_tall_traffic_rows_into_the_wide_table_and_the_view_reads_the_same(tmp_path):
    """A database written before traffic figures were stored wide reads the same through the view."""
    import duckdb

    from store.db import Store, migrate
    from store.schema import ALL_MIGRATIONS

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description VARCHAR, "
                "applied_at TIMESTAMP DEFAULT current_timestamp)")
    for version, description, statements in ALL_MIGRATIONS:
        if version <= 100 or version >= 200:      # the store as it was before 101
            for stmt in statements:
                con.execute(stmt)
            con.execute("INSERT INTO schema_version (version, description) VALUES (?, ?)", [version, description])
    rows = [(T0, "1m", "requests", "svc", None, None, None, None, 12.0),
            (T0, "1m", "latency_p95_ms", "svc", None, None, None, None, 840.5),
            (T0, "1m", "requests", "svc", None, None, "chat", None, 7.0),
            (T0, "1h", "error_rate", None, None, None, None, None, 0.25),
            (T0, "1m", "burn_rate_availability", "svc", None, None, None, None, 3.0),
            (T0, "1h", "drift_share", "svc", None, None, "chat", None, 0.4)]
    con.executemany("INSERT INTO analysis_metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, TIMESTAMP '2026-01-01')", rows)
    before = con.execute("SELECT * FROM analysis_metrics ORDER BY ALL").fetchall()
    migrate(con)
    assert con.execute("SELECT * FROM analysis_metrics ORDER BY ALL").fetchall() == before
    assert con.execute("SELECT count(*) FROM traffic_metrics").fetchone()[0] == 3       # 3 label sets
    assert con.execute("SELECT count(*) FROM analysis_metric_rows").fetchone()[0] == 2  # non-traffic rows
    con.close()
    store = Store(path)    # opens at the current version
    try:
        assert store.scalar("SELECT max(version) FROM schema_version") >= 101
    finally:
        store.close()


def test_the_analyzer_registry_refuses_a_duplicate_or_an_unknown_cadence():
    traffic = registry.ANALYZERS["traffic"]
    with pytest.raises(ValueError, match="registered twice"):
        registry.AnalyzerRegistry([traffic, traffic])
    with pytest.raises(ValueError, match="cadence 'daily'"):
        registry.AnalyzerRegistry([registry.AnalyzerSpec("x", traffic.target, "daily")])
    assert registry.ANALYZERS.named("hourly") == ["confidence", "drift", "canary"]
    with pytest.raises(ValueError, match="unknown analyzer"):
        registry.build(None, names=["nope"])
