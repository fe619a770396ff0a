"""The single writer: group commits, futures after commit, bounded queue, bad requests isolated."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa
import pytest

from store.db import Store, migrate
from store.schema import SCHEMA_VERSION, arrow_schema
from store.writer import Overloaded, Writer, WriterClosed
from tests.backends import BACKENDS, opened


def spans(n: int, name: str = "s") -> pa.Table:
    schema = arrow_schema("spans")
    cols = {f.name: pa.nulls(n, f.type) for f in schema}
    cols["trace_id"] = pa.array([f"{i:032x}" for i in range(n)])
    cols["name"] = pa.array([name] * n)
    return pa.table(cols, schema=schema)


def feedback(n: int, start: int = 0) -> pa.Table:
    t = datetime(2026, 11, 2)
    return pa.Table.from_pylist([{"time": t - timedelta(seconds=start + i), "service_name": "s", "action": "accepted"}
                                 for i in range(n)], schema=arrow_schema("feedback"))


def test_concurrent_submissions_are_group_committed(store):
    futures = []
    barrier = threading.Barrier(8)

    def submit() -> None:
        barrier.wait()
        futures.append(store.writer.submit({"spans": spans(1000)}))

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for f in futures:
        f.result(10)
    assert store.scalar("SELECT count(*) FROM spans") == 8000
    assert store.writer.stats.commits < 8  # several requests shared a transaction
    assert store.writer.stats.rows_committed == 8000


def test_a_failing_request_does_not_poison_its_group(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    migrate(con)
    writer = Writer(con.cursor(), max_delay_ms=200)
    writer.start()
    good1 = writer.submit({"spans": spans(10, "a")})
    bad = writer.submit(fn=lambda c: c.execute("INSERT INTO no_such_table VALUES (1)"))
    good2 = writer.submit({"spans": spans(5, "b")})
    good1.result(5), good2.result(5)
    with pytest.raises(duckdb.CatalogException):
        bad.result(5)
    writer.stop()
    assert con.execute("SELECT count(*) FROM spans").fetchone()[0] == 15
    assert writer.stats.failed_requests == 1


def test_the_queue_is_bounded_by_rows(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    migrate(con)
    writer = Writer(con.cursor(), queue_max_rows=100)  # not started: nothing drains
    writer.submit({"spans": spans(60)})
    with pytest.raises(Overloaded):
        writer.submit({"spans": spans(60)})
    writer.start()
    writer.stop()
    assert con.execute("SELECT count(*) FROM spans").fetchone()[0] == 60


def test_fn_results_come_back_after_commit(store):
    assert store.writer.write(fn=lambda con: con.execute("SELECT 41 + 1").fetchone()[0]) == 42


def test_migrations_are_recorded_once_and_reopen_cleanly(tmp_path):
    path = tmp_path / "m.duckdb"
    Store(path).close()
    s = Store(path)
    assert s.scalar("SELECT max(version) FROM schema_version") == SCHEMA_VERSION
    assert s.scalar("SELECT count(*) FROM schema_version") == s.scalar(
        "SELECT count(DISTINCT version) FROM schema_version")
    s.close()


def test_a_newer_database_is_refused(tmp_path):
    con = duckdb.connect(str(tmp_path / "n.duckdb"))
    migrate(con)
    con.execute("INSERT INTO schema_version (version, description) VALUES (9999, 'future')")
    with pytest.raises(RuntimeError, match="newer"):
        migrate(con)


def test_a_second_process_gets_a_clear_error(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "busy.duckdb"
    holder = Store(path)
    try:
        code = ("import sys; sys.path.insert(0, '.')\nfrom store.db import Store, StoreBusy\n"
                f"try:\n    Store({str(path)!r})\nexcept StoreBusy as e:\n    print('BUSY', e)\n")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
        assert out.startswith("BUSY") and "aiwatch serve" in out
    finally:
        holder.close()


class FailingCommit:
    """A write connection whose next COMMIT reports an I/O error, either after the commit landed (a
    checkpoint that fails once the WAL is written) or instead of it: the disk, simulated at its edge."""

    def __init__(self, con: duckdb.DuckDBPyConnection, lands: bool) -> None:
        self._con, self._lands, self.armed = con, lands, True

    def execute(self, sql: str, *args):
        if sql == "COMMIT" and self.armed:
            self.armed = False
            if self._lands:
                self._con.execute(sql)
            raise duckdb.IOException('Could not write file "x.duckdb": No space left on device')
        return self._con.execute(sql, *args)

    def __getattr__(self, name: str):
        return getattr(self._con, name)


@pytest.mark.parametrize("lands", [True, False])
def test_a_commit_that_raises_is_acknowledged_exactly_when_it_landed(tmp_path, lands):
    from store.writer import WriterBroken

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    migrate(con)
    writer = Writer(FailingCommit(con.cursor(), lands), retry_s=0.05)
    writer.start()
    try:
        future = writer.submit({"spans": spans(10, "a")})
        if lands:
            future.result(10)    # durable: acknowledged, so the client does not send it twice
        else:
            with pytest.raises(WriterBroken, match="disk full"):
                future.result(10)
        assert con.execute("SELECT count(*) FROM spans").fetchone()[0] == (10 if lands else 0)
        # the writer was broken until its probe write (and checkpoint) succeeded; then it takes work again
        for _ in range(200):
            if writer.broken is None:
                break
            threading.Event().wait(0.05)
        assert writer.broken is None
        writer.submit({"spans": spans(5, "b")}).result(10)
        assert con.execute("SELECT count(*) FROM spans").fetchone()[0] == (15 if lands else 5)
    finally:
        writer.stop()
        con.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_both_writers_admit_alike(backend, tmp_path):
    """DuckDB's and ClickHouse's writers share one admission (store.writer.QueuedWriter): rows beyond
    queue_max_rows are refused while others wait, one larger request is taken by an empty queue, a
    stopping writer refuses work, and what was admitted is committed."""
    release = threading.Event()
    for store in opened(backend, tmp_path, queue_max_rows=100):
        w = store.writer
        held = w.submit(fn=lambda con: release.wait(30))   # holds the writer while requests queue up
        first = w.submit({"feedback": feedback(60)})
        with pytest.raises(Overloaded):
            w.submit({"feedback": feedback(60)})
        assert w.pending_rows == 60
        release.set()
        held.result(30), first.result(30)
        assert w.pending_rows == 0
        w.write({"feedback": feedback(150, start=1000)})   # larger than the queue, admitted when it is empty
        assert store.scalar("SELECT count(*) FROM feedback") == 210
        w.stop()
        with pytest.raises(WriterClosed):
            w.submit({"feedback": feedback(1, start=5000)})
