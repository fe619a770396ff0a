"""Settings: one model, one precedence (flag -> AIWATCH_* -> TOML -> default) for the server, analysis,
alerts and dashboard; every bad value and unknown key names where it came from, its section and key."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aiwatch.config import SECTIONS, ConfigError, Settings, env_names, markdown_table

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def test_precedence_is_explicit_then_environment_then_file_then_default(tmp_path):
    cfg = tmp_path / "aiwatch.toml"
    cfg.write_text('[aiwatch]\nport = 5000\nretention_days = 7\ncontent_mode = "drop"\n'
                   '[analysis]\nsample_cap = 10\nbaseline_days = 2\n[alerts]\neval_interval_s = 30\nenabled = false\n')
    s = Settings.load(cfg, env={"AIWATCH_PORT": "6000", "AIWATCH_ANALYSIS_SAMPLE_CAP": "20",
                                "AIWATCH_ALERTS_ENABLED": "yes"}, retention_days=3)
    assert (s.port, s.retention_days, s.content_mode, s.host) == (6000, 3, "drop", "127.0.0.1")
    assert (s.analysis.sample_cap, s.analysis.baseline_days, s.analysis.grace_s) == (20, 2.0, 120)
    assert (s.alerts.enabled, s.alerts.eval_interval_s, s.alerts.deliver_interval_s) == (True, 30.0, 2.0)


def test_the_config_file_comes_from_aiwatch_config_and_keys_may_sit_at_the_top(tmp_path):
    cfg = tmp_path / "top.toml"
    cfg.write_text('port = 5001\n[alerts]\nreplay = "3d"\n')
    s = Settings.load(env={"AIWATCH_CONFIG": str(cfg)})
    assert (s.port, s.alerts.replay) == (5001, "3d")


@pytest.mark.parametrize("env,fragment", [
    ({"AIWATCH_PORT": "abc"}, "environment AIWATCH_PORT: [aiwatch] port: bad value 'abc': expected an integer"),
    ({"AIWATCH_PORT": "70000"}, "environment AIWATCH_PORT: [aiwatch] port: 70000 is above the maximum 65535"),
    ({"AIWATCH_CONTENT_MODE": "shred"}, "[aiwatch] content_mode: 'shred' is not one of keep, redact, drop"),
    ({"AIWATCH_SCHEDULER_ENABLED": "maybe"}, "AIWATCH_SCHEDULER_ENABLED: [aiwatch] scheduler_enabled: bad value"),
    ({"AIWATCH_QUEUE_MAX_ROWS": "0"}, "[aiwatch] queue_max_rows: 0 is below the minimum 1"),
    ({"AIWATCH_ANALYSIS_SAMPLE_CAP": "lots"},
     "environment AIWATCH_ANALYSIS_SAMPLE_CAP: [analysis] sample_cap: bad value 'lots': expected an integer"),
    ({"AIWATCH_ANALYSIS_BURN_WINDOWS": '["5m", "7h"]'}, "AIWATCH_ANALYSIS_BURN_WINDOWS: [analysis] burn_windows: "),
    ({"AIWATCH_ALERTS_EVAL_INTERVAL_S": "0"},
     "environment AIWATCH_ALERTS_EVAL_INTERVAL_S: [alerts] eval_interval_s: 0.0 must be above 0"),
    ({"AIWATCH_ALERTS_REPLAY": "3 days"}, "AIWATCH_ALERTS_REPLAY: [alerts] replay: '3 days' is not a duration"),
])
def test_bad_environment_values_name_the_variable_section_and_key(env, fragment):
    with pytest.raises(ConfigError) as err:
        Settings.load(env=env)
    assert fragment in str(err.value)


@pytest.mark.parametrize("text,message", [
    ("prot = 1\n", "[aiwatch] unknown key 'prot' (did you mean 'port'?)"),
    ("[aiwatch]\nport = true\n", "[aiwatch] port: bad value True: expected an integer"),
    ("[aiwatch]\naudit_poll_s = false\n", "[aiwatch] audit_poll_s: bad value False: expected a number"),
    ("ingest_workers = -2\n", "[aiwatch] ingest_workers: -2 is below the minimum -1"),
    ('redact_patterns = "nokind"\n', "[aiwatch] redact_patterns: 'nokind' is not kind=regex"),
    ("[analysis]\nsample_cap = true\n", "[analysis] sample_cap: bad value True: expected an integer"),
    ('[analysis]\nsample_cap = "5"\n', "[analysis] sample_cap: bad value '5': expected an integer"),
    ("[analysis]\nsample_cap = 2.5\n", "[analysis] sample_cap: bad value 2.5: expected an integer"),
    ("[analysis]\nlatncy_ms = 3\n", "[analysis] unknown key 'latncy_ms'"),
    ('[analysis]\nburn_windows = ["5m", "7h"]\n',
     "[analysis] burn_windows: ['5m', '7h'] is not a non-empty list of 1m, 5m, 30m, 1h, 2h, 6h, 1d, 3d"),
    ("[analysis]\nburn_windows = []\n", "[analysis] burn_windows: [] is not a non-empty list"),
    ('[analysis]\nburn_windows = ["5m", 5]\n', "[analysis] burn_windows[1]: bad value 5: expected a string"),
    ('[analysis]\ndrift_columns = ["nope"]\n', "[analysis] drift_columns: "),
    ('[analysis]\nreference_start = "last tuesday"\n', "[analysis] reference_start: Invalid isoformat string"),
    ('[[analysis.slos]]\nname = "fast"\nkind = "latency"\nobjective = 0.9\nthreshold_ms = 800\nlatncy_ms = 3\n',
     "[analysis.slos[0]] unknown key 'latncy_ms'"),
    ('[[analysis.slos]]\nname = "a"\nkind = "availability"\n', "[analysis.slos[0]] missing key 'objective'"),
    ('[[analysis.slos]]\nname = "a"\nkind = "availability"\nobjective = true\n',
     "[analysis.slos[0]] objective: bad value True: expected a number"),
    ('[[analysis.slos]]\nname = "a"\nkind = "availability"\nobjective = 1.5\n',
     "[analysis.slos[0]] objective: 1.5 must be below 1"),
    ('[[analysis.slos]]\nname = "a"\nkind = "speed"\nobjective = 0.9\n',
     "[analysis.slos[0]] kind: 'speed' is not one of availability, latency"),
    ('[[analysis.slos]]\nname = "a"\nkind = "latency"\nobjective = 0.9\n',
     "[analysis.slos[0]] threshold_ms: a latency SLO needs a positive threshold"),
    ("analysis = 5\n", "[analysis] bad value 5: expected a table"),
    ('[alerts]\nrulez = "x.yaml"\n', "[alerts] unknown key 'rulez' (did you mean 'rules'?)"),
    ("[alerts]\nenabled = 1\n", "[alerts] enabled: bad value 1: expected true or false"),
    ("[alerts]\ndeliver_interval_s = -1\n", "[alerts] deliver_interval_s: -1 must be above 0"),
])
def test_bad_file_values_name_the_file_section_and_key(tmp_path, text, message):
    cfg = tmp_path / "aiwatch.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as err:
        Settings.load(cfg, env={})
    assert f"{cfg}: {message}" in str(err.value)


def test_every_problem_is_listed_at_once(tmp_path):
    cfg = tmp_path / "aiwatch.toml"
    cfg.write_text("port = -1\n[analysis]\nsample_cap = true\n[alerts]\nenabled = 2\n")
    with pytest.raises(ConfigError) as err:
        Settings.load(cfg, env={})
    assert len(str(err.value).splitlines()) == 3


def test_broken_and_missing_files_name_the_file(tmp_path):
    cfg = tmp_path / "a.toml"
    cfg.write_text("port = \n")
    with pytest.raises(ConfigError, match="a.toml"):
        Settings.load(cfg, env={})
    with pytest.raises(ConfigError, match="missing.toml"):
        Settings.load(tmp_path / "missing.toml", env={})


def test_analysis_file_in_the_data_dir_or_named_by_the_environment(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "analysis.toml").write_text("[analysis]\nsample_cap = 7\n")
    assert Settings.load(env={}, data_dir=str(data)).analysis.sample_cap == 7
    assert Settings.load(env={"AIWATCH_DATA_DIR": str(data)}).analysis.sample_cap == 7
    other = tmp_path / "other.toml"
    other.write_text("sample_cap = true\n")
    with pytest.raises(ConfigError) as err:
        Settings.load(env={"AIWATCH_ANALYSIS_CONFIG": str(other)}, data_dir=str(data))
    assert f"{other}: [analysis] sample_cap: bad value True" in str(err.value)


def test_code_built_settings_read_no_environment(monkeypatch):
    monkeypatch.setenv("AIWATCH_PORT", "1234")
    assert Settings().port == 4318 and Settings(port=5).port == 5
    assert Settings.load().port == 1234


def test_every_setting_has_one_environment_variable_and_no_two_share_one():
    names = env_names()
    assert len(set(names.values())) == len(names)
    assert {p[0] for p in names} == set(Settings.model_fields)


def test_default_bind_is_loopback():
    assert Settings.load(env={}).host == "127.0.0.1"


@pytest.mark.parametrize("section", [None, *SECTIONS])
def test_readme_tables_are_the_models(section):
    """Regenerate with `python -m aiwatch.config`."""
    assert markdown_table(section) in README.read_text()


def test_cli_reports_bad_configuration_with_exit_code_2(capsys, monkeypatch):
    from aiwatch.cli import main

    monkeypatch.setenv("AIWATCH_PORT", "nope")
    assert main(["serve"]) == 2
    assert "AIWATCH_PORT" in capsys.readouterr().err


def test_cli_names_the_file_section_and_key(tmp_path):
    cfg = tmp_path / "aiwatch.toml"
    cfg.write_text('[[analysis.slos]]\nname = "fast"\nkind = "latency"\nobjective = 0.9\nlatncy_ms = 800\n')
    done = subprocess.run([sys.executable, "-m", "aiwatch", "--config", str(cfg), "serve", "--port", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert f"{cfg}: [analysis.slos[0]] unknown key 'latncy_ms'" in done.stderr


def test_readme_lease_example_is_valid_and_the_lease_needs_clickhouse_and_keeper(tmp_path):
    import re

    section = README.read_text()[README.read_text().index("**Several instances: the lease.**"):]
    example = tmp_path / "aiwatch.toml"
    example.write_text(re.search(r"```toml\n(.*?)```", section, re.S).group(1))
    settings = Settings.load(example, env={})
    assert settings.lease and settings.instance_id == "aiwatch-1" and settings.lease_ttl_s == 30
    with pytest.raises(ConfigError, match="lease: needs the ClickHouse backend"):
        Settings.load(env={}, lease=True)
    with pytest.raises(ConfigError, match="chdb needs `keeper`"):
        Settings.load(env={}, lease=True, store="chdb:///tmp/x")
    with pytest.raises(ConfigError, match="is not host:port"):
        Settings.load(env={}, keeper="keeper-1")
    with pytest.raises(ConfigError, match="instance_id"):
        Settings.load(env={}, instance_id="a host/with path")
    with pytest.raises(ConfigError, match="above the maximum"):
        Settings.load(env={}, lease_ttl_s=90)   # 1.5x must stay within two minutes
