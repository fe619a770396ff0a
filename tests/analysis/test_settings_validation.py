"""Analysis settings reject what they cannot use at load time, naming file, section and key."""
from __future__ import annotations

import pytest

from aiwatch.config import ConfigError, Settings
from analysis.settings import AnalysisSettings
from core.grains import GRAIN_SECONDS


def load(tmp_path, text: str) -> AnalysisSettings:
    path = tmp_path / "analysis.toml"
    path.write_text(text)
    return AnalysisSettings.load(env={"AIWATCH_ANALYSIS_CONFIG": str(path)})


def test_burn_window_the_analyzer_cannot_compute_fails_at_load(tmp_path):
    with pytest.raises(ConfigError, match=r"analysis.toml: \[analysis\] burn_windows: .*'7h'"):
        load(tmp_path, '[analysis]\nburn_windows = ["5m", "7h"]\n')
    assert load(tmp_path, 'burn_windows = ["5m", "2h"]\n').burn_windows == ("5m", "2h")


def test_default_burn_windows_cover_the_default_rules_grains():
    from alerts.rules import DEFAULT_RULES, load_config

    grains = {g for r in load_config(DEFAULT_RULES, env={}).rules
              if r.condition and r.condition.metric.startswith("burn_rate") for g in r.condition.grains}
    assert grains and grains <= set(AnalysisSettings().burn_windows) <= set(GRAIN_SECONDS)


def test_unknown_key_in_an_slo_names_it(tmp_path):
    with pytest.raises(ConfigError, match=r"analysis.toml: \[analysis.slos\[0\]\] unknown key 'treshold_ms'"):
        load(tmp_path, '[[slos]]\nname = "fast"\nkind = "latency"\nobjective = 0.9\ntreshold_ms = 800\n')
    with pytest.raises(ConfigError, match=r"\[analysis.slos\[0\]\] objective: bad value 'high'"):
        AnalysisSettings.from_dict({"slos": [{"name": "a", "kind": "availability", "objective": "high"}]})
    with pytest.raises(ConfigError, match=r"\[analysis.slos\[0\]\] missing key 'objective'"):
        AnalysisSettings.from_dict({"slos": [{"name": "a", "kind": "availability"}]})


@pytest.mark.parametrize("key,value", [("sample_cap", True), ("baseline_days", False), ("sample_cap", "5"),
                                       ("sample_cap", 2.5), ("shadow_comparator", 3)])
def test_wrong_types_are_rejected_not_coerced(key, value):
    with pytest.raises(ConfigError, match=fr"\[analysis\] {key}: bad value"):
        AnalysisSettings.from_dict({key: value})


def test_numbers_still_load():
    s = AnalysisSettings.from_dict({"sample_cap": 100, "baseline_days": 3, "max_window_s": 7200.0})
    assert (s.sample_cap, s.baseline_days, s.max_window_s) == (100, 3.0, 7200)


@pytest.mark.parametrize("key", ["port", "audit_poll_s"])
def test_server_settings_reject_bools_for_numbers(tmp_path, key):
    path = tmp_path / "aiwatch.toml"
    path.write_text(f"{key} = true\n")
    with pytest.raises(ConfigError, match=key):
        Settings.load(path, env={})
