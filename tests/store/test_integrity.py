"""A damaged database file stops start-up with a message naming it, instead of a server that says
ready while every query that reaches the missing blocks fails."""
from __future__ import annotations

import os
import subprocess
import sys

import duckdb
import pytest
from server_harness import ROOT, free_port

from store.db import HEADER_BYTES, Store
from tests.analysis.gen import T0, spans


def filled_database(path) -> int:
    store = Store(path)
    for i in range(4):
        store.writer.write(tables={"spans": spans(T0, 10, 500, seed=i, ids=str(i))})
    store.close()   # checkpointed: the rows are in the file, not the WAL
    return path.stat().st_size


def test_the_file_layout_the_check_relies_on_holds_for_this_duckdb(tmp_path):
    size = filled_database(tmp_path / "a.duckdb")
    con = duckdb.connect(str(tmp_path / "a.duckdb"), read_only=True)
    block_size, blocks = con.execute("SELECT block_size, total_blocks FROM pragma_database_size()").fetchone()
    con.close()
    assert blocks > 1 and size == HEADER_BYTES + blocks * block_size


def test_a_file_whose_trailing_free_blocks_duckdb_cut_off_opens(tmp_path):
    """A checkpoint cuts free blocks off the end of the file while the header still counts them; a
    server stopped cleanly after heavy ingest left such a file, and the size check refused to start."""
    path = tmp_path / "a.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE a AS SELECT range AS x FROM range(1000)")
    con.execute("CHECKPOINT")
    con.execute("CREATE TABLE b AS SELECT range AS x, repeat('y', 200) AS s FROM range(200000)")
    con.execute("CHECKPOINT")
    con.execute("DROP TABLE b")   # its blocks, the last ones in the file, become free
    con.execute("CHECKPOINT")
    con.close()
    con = duckdb.connect(str(path), read_only=True)
    block_size, blocks = con.execute("SELECT block_size, total_blocks FROM pragma_database_size()").fetchone()
    con.close()
    assert path.stat().st_size < HEADER_BYTES + blocks * block_size   # the layout once taken for damage
    Store(path).close()


@pytest.mark.parametrize("keep", [0.9, 0.1])   # 0.9: DuckDB opens it; 0.1: it cannot read its metadata
def test_a_truncated_database_file_stops_the_server_with_a_clear_message(tmp_path, keep):
    data = tmp_path / "data"
    data.mkdir()
    path = data / "aiwatch.duckdb"
    size = filled_database(path)
    with path.open("r+b") as f:
        f.truncate(int(size * keep))
    done = subprocess.run([sys.executable, "-m", "aiwatch", "--log-level", "WARNING", "serve", "--port",
                           str(free_port()), "--data-dir", str(data)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "AIWATCH_SCHEDULER_ENABLED": "false", "AIWATCH_INGEST_WORKERS": "0"})
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"the database file {path} is damaged" in done.stderr and "Traceback" not in done.stderr
