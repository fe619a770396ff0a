"""Calls are attributed to the requested model: a provider's snapshot answer and a failed call
(only the requested name) land in one group, with the snapshot kept as its own column."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from analysis import runner
from analysis.base import Window
from analysis.traffic import TrafficAnalyzer
from store.queries import store_queries
from tests.analysis.gen import T0, minute, spans, write

REGISTRY = store_queries()

SNAPSHOT = "gpt-4o-mini-2024-07-18"


def _snapshot_answers(table: pa.Table) -> pa.Table:
    """As real providers answer: the snapshot name on success, no response model on failure."""
    failed = pc.equal(table.column("status_code"), "error")
    response = pc.if_else(failed, pa.scalar(None, pa.string()), pa.scalar(SNAPSHOT))
    return table.set_column(table.schema.get_field_index("response_model"), "response_model", response)


def test_failures_and_snapshot_answers_are_one_model(store):
    data = _snapshot_answers(spans(T0, 10, 30, seed=4, error_p=0.05))
    write(store, data)
    runner.analyze(store, TrafficAnalyzer(store), Window(T0, minute(10), T0))
    models = store.query("SELECT DISTINCT model FROM analysis_metrics WHERE model IS NOT NULL").column("model")
    assert models.to_pylist() == ["gpt-4o-mini"]
    [row] = store.query("SELECT value FROM analysis_metrics WHERE metric = 'error_rate' AND grain = '1h' "
                        "AND service_name = 'svc' AND model = 'gpt-4o-mini' AND model_version IS NULL "
                        "AND route IS NULL AND arm IS NULL").to_pylist()
    errors = np.asarray(data.column("status_code").to_pylist()) == "error"
    assert 0 < errors.sum() < len(errors)
    assert row["value"] == pytest.approx(errors.mean(), rel=1e-12)


def test_summary_and_dimensions_key_on_the_requested_model_and_list_the_snapshot(store):
    write(store, _snapshot_answers(spans(T0, 10, 20, seed=5, error_p=0.1)))
    window = {"start": T0.isoformat(), "end": minute(10).isoformat()}
    [row] = REGISTRY["summary"].execute(store, window).to_pylist()
    assert row["model"] == "gpt-4o-mini" and row["response_models"] == SNAPSHOT and row["errors"] > 0
    dims = REGISTRY["dimensions"].execute(store, window).to_pylist()
    assert {d["model"] for d in dims} == {"gpt-4o-mini"}
    assert {d["response_model"] for d in dims} == {SNAPSHOT, None}
    filtered = REGISTRY["spans"].execute(store, {**window, "model": "gpt-4o-mini", "limit": "10000"})
    assert filtered.num_rows == 200
