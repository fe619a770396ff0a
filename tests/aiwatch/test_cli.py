"""The `aiwatch` command line: help without the heavy packages, each sub-command's usage on a bad flag,
and `analyze` on a folder without a database."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aiwatch.cli import declared_commands, join_relative_times, load_command, main

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pandas", "numpy", "duckdb", "pyarrow", "scipy", "polars", "streamlit", "httpx", "evidently", "pydantic")


def test_help_lists_every_command_without_importing_heavy_packages():
    code = ("import sys\nfrom aiwatch.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print('LOADED:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    *help_lines, loaded = proc.stdout.strip().splitlines()
    assert loaded == "LOADED:"
    for name in ("serve", "demo", "analyze", "alerts", "silence", "sample", "dashboard", "export", "redact"):
        assert any(line.strip().startswith(name + " ") for line in help_lines), name


def test_every_declared_command_loads_as_itself():
    declared = declared_commands()
    assert {"serve", "analyze", "alerts", "export"} <= set(declared)
    for name, found in declared.items():
        configure, fn = load_command(found)
        assert fn.aiwatch_command == (name, configure) and callable(configure)


def test_bad_flag_prints_the_subcommand_usage(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "--no-such-flag"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: aiwatch analyze") and "unrecognized arguments: --no-such-flag" in err


def test_analyze_on_a_folder_without_a_database_says_so(tmp_path, capsys):
    assert main(["analyze", "--since=-1h", "--data-dir", str(tmp_path)]) == 1
    assert "no aiwatch database" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []          # nothing created


def test_a_relative_time_after_its_flag_is_a_value_not_an_option(tmp_path, capsys):
    """`--since -3d`, as alerts/README.md and every `--help` write it: argparse alone rejects it
    ("expected one argument"); the CLI reads it as `--since=-3d`."""
    assert main(["analyze", "--since", "-1h", "--until", "now-5m", "--data-dir", str(tmp_path)]) == 1
    assert "no aiwatch database" in capsys.readouterr().err
    assert join_relative_times(["alerts", "backtest", "--since", "-3d", "--until", "-1.5h", "--json"]) == [
        "alerts", "backtest", "--since=-3d", "--until=-1.5h", "--json"]
    # only a relative time joins: a flag's ordinary value, and a `-x` after a flag's `=`, stay as given
    assert join_relative_times(["--since=-3d", "-7d", "--step", "1m", "-h"]) == ["--since=-3d", "-7d", "--step", "1m", "-h"]
