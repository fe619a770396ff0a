"""One data-dir default: the demo writes where `aiwatch analyze` and `serve` read, and never into a real database."""
from __future__ import annotations

import pytest

from aiwatch import demo
from aiwatch.cli import build_parser
from aiwatch.config import Settings


def test_demo_uses_the_data_dir_setting_like_analyze_and_serve(tmp_path):
    args = build_parser(["demo"]).parse_args(["demo"])
    assert demo.data_folder(args, Settings()) == Settings().db_path.parent   # where analyze looks by default
    configured = Settings.load(env={"AIWATCH_DATA_DIR": str(tmp_path / "d")})
    assert demo.data_folder(args, configured) == tmp_path / "d"
    given = build_parser(["demo"]).parse_args(["demo", "--data-dir", str(tmp_path / "x")])
    assert demo.data_folder(given, configured) == tmp_path / "x"


def test_demo_refuses_a_database_it_did_not_load(tmp_path):
    db = tmp_path / "aiwatch.duckdb"
    db.write_bytes(b"real data")
    with pytest.raises(SystemExit, match="did not load"):
        demo.prepare_data(tmp_path, fresh=True)
    assert db.read_bytes() == b"real data"
    (tmp_path / demo.DEMO_MARKER).write_text("")
    demo.prepare_data(tmp_path, fresh=False)   # its own database: reused as is
    assert db.read_bytes() == b"real data"


def test_a_sample_load_cut_short_is_loaded_again(tmp_path, monkeypatch):
    loads = []

    def load(cmd):
        loads.append(cmd)
        (tmp_path / "aiwatch.duckdb").write_bytes(b"part of the sample")
        if len(loads) == 1:
            raise KeyboardInterrupt   # Ctrl-C during the first load

    monkeypatch.setattr(demo, "_run", load)
    with pytest.raises(KeyboardInterrupt):
        demo.prepare_data(tmp_path, fresh=False)
    demo.prepare_data(tmp_path, fresh=False)   # not "using the existing demo database": loaded again
    assert len(loads) == 2
    demo.prepare_data(tmp_path, fresh=False)   # now complete: reused
    assert len(loads) == 2
