from __future__ import annotations

import pytest

from analysis.settings import AnalysisSettings


@pytest.fixture
def settings() -> AnalysisSettings:
    return AnalysisSettings(baseline_days=1, initial_lookback_s=10 * 86_400, sample_cap=50_000)
