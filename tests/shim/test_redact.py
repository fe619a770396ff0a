"""Redactor: labelled corpus figures, modes, user patterns, speed."""

from __future__ import annotations

import time

import pytest

from redaction_corpus import ALL_NEGATIVES, ALL_POSITIVES
from shim.redact import DROPPED, Finding, Redactor


def corpus_scores(redactor: Redactor) -> tuple[int, int, int, list[str]]:
    tp = fn = fp = 0
    problems: list[str] = []
    for text, labels in ALL_POSITIVES:
        found = [(f.kind, text[f.start:f.end]) for f in redactor.find(text)]
        for label in labels:
            if label in found:
                tp += 1
            else:
                fn += 1
                problems.append(f"missed {label} in {text!r}: {found}")
        for item in found:
            if item not in labels:
                fp += 1
                problems.append(f"false positive {item} in {text!r}")
    for text in ALL_NEGATIVES:
        for f in redactor.find(text):
            fp += 1
            problems.append(f"false positive {(f.kind, text[f.start:f.end])} in {text!r}")
    return tp, fn, fp, problems


def test_corpus_recall_and_precision(capsys: pytest.CaptureFixture[str]) -> None:
    tp, fn, fp, problems = corpus_scores(Redactor())
    recall = tp / (tp + fn)
    precision = tp / (tp + fp)
    with capsys.disabled():
        print(f"\nredaction corpus: {len(ALL_POSITIVES)} positive texts ({tp + fn} entities), "
              f"{len(ALL_NEGATIVES)} near-miss negatives: recall={recall:.4f} precision={precision:.4f}")
    assert recall >= 0.99, problems
    # Random 16-digit numbers pass Luhn one time in ten; a few such look-alikes are expected.
    assert precision >= 0.98, problems


def test_mask_mode_keeps_context() -> None:
    r = Redactor()
    out = r.redact("mail john@example.com, card 4111 1111 1111 1111, Bearer abcdefghijklmnop1234")
    assert out == "mail [REDACTED:email], card [REDACTED:card_number], Bearer [REDACTED:bearer_token]"


def test_hash_mode_is_stable_and_salted() -> None:
    a = Redactor("hash", salt="s1").redact("write to john@example.com")
    b = Redactor("hash", salt="s1").redact("write to john@example.com")
    c = Redactor("hash", salt="s2").redact("write to john@example.com")
    assert a == b and a != c
    assert a.startswith("write to [email:") and a.endswith("]")
    assert "john" not in a


def test_drop_mode_drops_whole_text_only_when_something_found() -> None:
    r = Redactor("drop")
    assert r.redact("my iban is DE89 3704 0044 0532 0130 00") == DROPPED
    assert r.redact("nothing to see") == "nothing to see"


def test_find_returns_kind_and_span() -> None:
    text = "id AKIAIOSFODNN7EXAMPLE end"
    assert Redactor().find(text) == [Finding("aws_access_key", (3, 23))]


def test_extra_patterns_win_and_are_named() -> None:
    r = Redactor(extra_patterns={"employee_id": r"EMP-\d{6}"})
    assert r.redact("ticket by EMP-123456 re jane@example.com") == \
        "ticket by [REDACTED:employee_id] re [REDACTED:email]"


def test_bad_mode_and_bad_pattern_fail_early() -> None:
    with pytest.raises(ValueError):
        Redactor("blur")  # type: ignore[arg-type]
    with pytest.raises(Exception):
        Redactor(extra_patterns={"x": "("})


def test_redact_value_walks_json() -> None:
    value = {"messages": [{"role": "user", "content": "call +1 415 555 2671"}], "n": 3}
    assert Redactor().redact_value(value) == \
        {"messages": [{"role": "user", "content": "call [REDACTED:phone]"}], "n": 3}


def test_fast_enough_for_ingest() -> None:
    r = Redactor()
    clean = "The quick brown fox jumps over the lazy dog, version 1.2.3 on 2024-01-15. " * 14  # ~1 KB
    dirty = clean + " contact jane@example.com or 4111 1111 1111 1111"
    r.redact(clean)
    n = 300
    t0 = time.perf_counter()
    for _ in range(n):
        r.redact(clean)
        r.redact(dirty)
    per_kb_us = (time.perf_counter() - t0) / (2 * n) * 1e6
    # Generous bound for slow CI machines; the bench script reports the real figure.
    assert per_kb_us < 2000, per_kb_us


def test_pathological_input_is_linear() -> None:
    r = Redactor()
    t0 = time.perf_counter()
    r.redact("a" * 100_000 + "@")
    r.redact("1 " * 50_000)
    r.redact("A1" * 50_000)
    assert time.perf_counter() - t0 < 2.0
