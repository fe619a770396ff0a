"""core: one grammar for durations and times (settings, rules, queries, CLI), and one Retry-After."""
from __future__ import annotations

import argparse
from datetime import datetime, timedelta

import pytest

from core.durations import BadTime, format_duration, parse_duration, parse_time
from core.grains import GRAIN_SECONDS, ceil_time, floor_time
from core.retry_after import parse_retry_after, retry_after_seconds

NOW = datetime(2026, 11, 20, 12, 0, 0)


@pytest.mark.parametrize("text,seconds", [
    ("500ms", 0.5), ("30s", 30), ("5m", 300), ("1.5h", 5400), ("7d", 604_800), ("1w", 604_800), (" 2 h ", 7200),
])
def test_one_duration_grammar_for_rules_and_relative_times(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert parse_time(f"-{text.strip()}", now=NOW) == NOW - timedelta(seconds=seconds)
    assert parse_time(f"now-{text.strip()}", now=NOW) == NOW - timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "5", "-5m", "5y", "5 minutes", "m", "1e3s", "nan s", True, float("nan"),
                                 float("inf"), -1, "9" * 30 + "w"])
def test_what_is_not_a_duration_says_so(bad):
    with pytest.raises(BadTime):
        parse_duration(bad)


def test_numbers_are_seconds_only_where_the_caller_allows_them():
    assert parse_duration(90) == timedelta(seconds=90)
    with pytest.raises(BadTime):
        parse_duration(90, numbers=False)


def test_format_is_the_inverse_on_whole_units():
    for text in ("90m", "2h", "3d", "45s"):
        assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize("text,expected", [
    ("now", NOW), ("2026-11-20T10:00:00Z", datetime(2026, 11, 20, 10)),
    ("2026-11-20T12:00:00+02:00", datetime(2026, 11, 20, 10)), ("0", datetime(1970, 1, 1)),
])
def test_absolute_times(text, expected):
    assert parse_time(text, now=NOW) == expected


@pytest.mark.parametrize("bad", ["yesterday", "1e20", "nan", "-99999999w", "0001-01-01", None])
def test_what_is_not_a_time_says_so(bad):
    with pytest.raises(BadTime):
        parse_time(bad, now=NOW)


def test_the_read_api_still_answers_bad_times_with_bad_parameter():
    from store.queries import BadParameter
    from store.queries import parse_time as query_time
    with pytest.raises(BadParameter, match="not a time"):
        query_time("yesterday")


def test_analyze_chunks_use_the_same_grammar():
    # `aiwatch analyze --chunk` knew only m/h/d and took 0m (a chunk that never advances)
    from analysis.register import _duration
    assert _duration("1w") == timedelta(weeks=1) and _duration("90m") == timedelta(minutes=90)
    for bad in ("0m", "30s", "6x"):
        with pytest.raises(argparse.ArgumentTypeError):
            _duration(bad)


def test_grains_floor_and_ceil():
    t = datetime(2026, 11, 20, 12, 34, 56)
    assert floor_time(t, "1h") == datetime(2026, 11, 20, 12) and ceil_time(t, "1h") == datetime(2026, 11, 20, 13)
    assert ceil_time(datetime(2026, 11, 20, 12), "5m") == datetime(2026, 11, 20, 12)
    assert all(parse_duration(g) == timedelta(seconds=s) for g, s in GRAIN_SECONDS.items())


def test_retry_after():
    assert parse_retry_after("2") == 2.0 and parse_retry_after("0.5") == 0.5 and parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("garbage") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0) == 30.0
    # a receiver answering `Retry-After: inf` or `nan` used to park the notification (inf) or retry at once
    assert parse_retry_after("inf") is None and parse_retry_after("nan") is None
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5 and retry_after_seconds(None) is None
    assert retry_after_seconds({"retry-after": "4", "retry-after-ms": "1500"}) == 4.0
