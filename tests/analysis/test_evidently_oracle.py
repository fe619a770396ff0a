"""The scheduled drift fast path agrees with Evidently's DataDriftPreset on the same data.

One module, because importing Evidently takes seconds.
"""
from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from analysis import stats
from analysis.evidently_report import evidently_drift, save_drift_report
from analysis.settings import AnalysisSettings, DriftColumn
from tests.analysis.gen import T0, Shift, spans, write

COLUMNS = [DriftColumn("n_wide", "num"), DriftColumn("n_few", "num"), DriftColumn("n_binary", "num"),
           DriftColumn("c_three", "cat"), DriftColumn("c_two", "cat")]


def frame(rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    return pd.DataFrame({
        "n_wide": rng.normal(10 + shift, 2, n),
        "n_few": rng.choice([1.0, 2.0, 3.0, 4.0], n, p=[0.4 - shift / 10, 0.3, 0.2, 0.1 + shift / 10]),
        "n_binary": rng.choice([0.0, 1.0], n, p=[0.7 - shift / 5, 0.3 + shift / 5]),
        "c_three": rng.choice(["a", "b", "c"], n, p=[0.5 - shift / 5, 0.3, 0.2 + shift / 5]),
        "c_two": rng.choice(["x", "y"], n, p=[0.6 - shift / 5, 0.4 + shift / 5]),
    })


@pytest.mark.parametrize("n_ref,n_cur,shift", [
    (800, 300, 0.0), (800, 300, 1.0), (600, 600, 0.4),      # small reference: KS, chi-square, z-test
    (5000, 2000, 0.0), (5000, 2000, 1.0), (20000, 500, 0.3),  # large: Wasserstein, Jensen-Shannon
])
def test_fast_path_matches_evidently(n_ref, n_cur, shift):
    rng = np.random.default_rng(n_ref + n_cur)
    ref, cur = frame(rng, n_ref, 0.0), frame(rng, n_cur, shift)
    theirs, their_share = evidently_drift(ref, cur, COLUMNS)
    ours = {c.name: stats.column_drift(c.name, c.kind, ref[c.name].to_numpy(), cur[c.name].to_numpy()) for c in COLUMNS}
    for name, mine in ours.items():
        assert mine.evidently == theirs[name].drifted, (name, mine, theirs[name])
        assert mine.score == pytest.approx(theirs[name].score, rel=1e-6, abs=1e-12), (name, mine, theirs[name])
    # Evidently's dataset share, from its verdicts alone; ours gates each verdict by the chance test
    assert sum(c.evidently for c in ours.values()) / len(ours) == pytest.approx(their_share)
    assert stats.dataset_drift(list(ours.values()))[0] == pytest.approx(
        sum(c.evidently and c.p_value < stats.DRIFT_ALPHA for c in ours.values()) / len(ours))


def test_html_report_is_saved_and_recorded(store, tmp_path):
    day = timedelta(days=1)
    write(store, spans(T0, 2 * 24 * 60, 2, seed=5,
                       shifts=(Shift(T0 + day, T0 + 2 * day, "input_tokens", 1.5, route="search"),)))
    settings = AnalysisSettings(baseline_days=1)
    path = save_drift_report(store, settings, "search", T0 + day, T0 + day + timedelta(hours=6), tmp_path)
    assert path.exists() and path.stat().st_size > 10_000 and b"input_tokens" in path.read_bytes()
    row = store.query("SELECT * FROM analysis_reports WHERE analyzer = 'evidently'").to_pylist()[0]
    assert row["route"] == "search" and json.loads(row["body"])["path"] == str(path)
