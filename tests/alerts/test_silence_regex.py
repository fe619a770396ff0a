"""Silence regexes run on RE2 with Alertmanager's semantics: fully anchored, linear time, and
Python-only syntax (backreferences, lookaround) refused when the silence is created."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
from harness import MIN, T0, make_config, series, write_metrics

from alerts.engine import matcher_matches, parse_matcher, silenced_by
from alerts.silences import SilenceError, add_silence


@pytest.mark.parametrize("op, pattern, value, expected", [
    ("=~", "Cost.*", "CostSpike", True),
    ("=~", "Cost.*", "HighCost", False),          # anchored at the start ...
    ("=~", "che", "checkout", False),             # ... and at the end
    ("=~", "checkout|search", "search", True),
    ("=~", "checkout|search", "checkout-search", False),   # the alternation is anchored as a whole
    ("=~", "", "", True),                         # an empty pattern matches the missing label
    ("!~", "P[12]", "P3", True),
    ("!~", "P[12]", "P1", False),
    ("=~", "(?i)checkout", "CHECKOUT", True),
])
def test_regex_matchers_are_fully_anchored(op, pattern, value, expected):
    matcher = parse_matcher({"name": "service", "op": op, "value": pattern})
    assert matcher_matches(matcher, {"service": value} if value else {}) is expected


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=a)a", "(?<!x)y", "(unclosed"])
def test_patterns_re2_refuses_are_a_clear_error(store, pattern):
    with pytest.raises(SilenceError, match="bad regex"):
        add_silence(store, [f"service=~{pattern}"], ends_at=T0 + MIN, starts_at=T0, created_by="a",
                    comment="c", now=T0)


def test_a_stored_pattern_re2_cannot_compile_silences_nothing():
    silence = {"id": "old", "matchers": [{"name": "service", "op": "=~", "value": "(?=c)checkout"}]}
    assert silenced_by([silence], {"service": "checkout"}) is None


def test_pathological_silence_regex_evaluates_in_bounded_time(tmp_path):
    """`(a|a)*b` against a long run of a's takes exponential time in a backtracking engine; RE2
    answers at once. A subprocess with a generous timeout keeps a regression from hanging the suite."""
    code = textwrap.dedent("""
        import sys
        sys.path.insert(0, "tests/alerts")
        from datetime import timedelta
        from alerts.engine import AlertEngine, MemoryBackend
        from harness import T0, MIN, make_config, series, write_metrics, FakeClock, Script
        from store.db import Store

        store = Store(sys.argv[1], writer_max_delay_ms=1)
        write_metrics(store, series("error_rate", T0, 10, 0.5, service="a" * 40 + "c"))
        silence = {"id": "s", "starts_at": T0, "ends_at": T0 + timedelta(days=1),
                   "matchers": [{"name": "service", "op": "=~", "value": "(a|a)*b"}]}
        clock = FakeClock()
        engine = AlertEngine(make_config(), MemoryBackend([silence]), store, clock)
        Script(engine, clock).run_until(T0 + 9 * MIN)
        print("notified", len(engine.backend.outbox))
        store.close()
    """)
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "re2.duckdb")], capture_output=True,
                         text=True, timeout=120, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert out.returncode == 0, out.stderr
    assert "notified 1" in out.stdout           # not silenced: the pattern does not match, and it returned


def test_regex_silence_mutes_through_the_engine(store, script_for):
    write_metrics(store, series("error_rate", T0, 30, 0.5, service="checkout-eu"))
    add_silence(store, ["service=~checkout-(eu|us)"], starts_at=T0, ends_at=T0 + timedelta(hours=1),
                created_by="a", comment="maintenance", now=T0)
    s = script_for(make_config())
    s.run_until(T0 + 20 * MIN)
    assert s.notes == []
