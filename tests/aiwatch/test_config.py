"""Settings: file, environment and explicit values in order; bad values name the key; README lists all."""
from __future__ import annotations

from pathlib import Path

import pytest

from aiwatch.config import ConfigError, Settings, settings_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_precedence_is_explicit_then_environment_then_file_then_default(tmp_path):
    cfg = tmp_path / "aiwatch.toml"
    cfg.write_text('[aiwatch]\nport = 5000\nretention_days = 7\ncontent_mode = "drop"\n')
    s = Settings.load(cfg, env={"AIWATCH_PORT": "6000"}, retention_days=3)
    assert (s.port, s.retention_days, s.content_mode, s.host) == (6000, 3, "drop", "127.0.0.1")


@pytest.mark.parametrize("env,fragment", [
    ({"AIWATCH_PORT": "abc"}, "port (AIWATCH_PORT): bad value 'abc'"),
    ({"AIWATCH_PORT": "70000"}, "port: 70000 is above the maximum"),
    ({"AIWATCH_CONTENT_MODE": "shred"}, "content_mode: 'shred' is not one of keep, redact, drop"),
    ({"AIWATCH_SCHEDULER_ENABLED": "maybe"}, "scheduler_enabled (AIWATCH_SCHEDULER_ENABLED): bad value"),
    ({"AIWATCH_QUEUE_MAX_ROWS": "0"}, "queue_max_rows: 0 is below the minimum"),
])
def test_bad_values_are_rejected_naming_the_key(env, fragment):
    with pytest.raises(ConfigError, match=None) as err:
        Settings.load(env=env)
    assert fragment in str(err.value)


def test_unknown_keys_and_broken_files_are_errors(tmp_path):
    cfg = tmp_path / "a.toml"
    cfg.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="unknown key.*prot"):
        Settings.load(cfg, env={})
    cfg.write_text("port = \n")
    with pytest.raises(ConfigError, match="a.toml"):
        Settings.load(cfg, env={})


def test_default_bind_is_loopback():
    assert Settings.load(env={}).host == "127.0.0.1"


def test_readme_documents_every_setting_with_its_default():
    text = README.read_text()
    for name, env, default, _help in settings_table():
        assert f"| `{name}` | `{env}` | `{default!r}` |" in text, name


def test_cli_reports_bad_configuration_with_exit_code_2(capsys, monkeypatch):
    from aiwatch.cli import main

    monkeypatch.setenv("AIWATCH_PORT", "nope")
    assert main(["serve"]) == 2
    assert "AIWATCH_PORT" in capsys.readouterr().err
