"""The server's Hyperscan-prefiltered redactor finds exactly what the pure-`re` one finds."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.redact_fast import FastRedactor, prefilter_pattern
from core.redact import Redactor

pytest.importorskip("hyperscan")
sys.path.insert(0, str(Path(__file__).parents[1] / "shim"))   # the corpus lives with the shim tests

from redaction_gen import corpus  # noqa: E402

PURE = Redactor()
FAST = FastRedactor()


def test_same_findings_on_the_whole_corpus() -> None:
    texts = [e.text for e in corpus()]
    assert [FAST.find(t) for t in texts] == [PURE.find(t) for t in texts]
    assert FAST.redact_many(texts, 200) == PURE.redact_many(texts, 200)


_PIECES = ["4111 1111 1111 1111", "415-555-2671", "+44 20 7946 0958", "123-45-6789", "SSN ", "10.0.0.1", "::1",
           "2001:db8::7", "jane@example.com", "sk-proj-", "AKIA", "password=", "Bearer ", "é", "日本", "\n", " ", "-",
           ".", ":", "@", "=", "\"", "DE89 3704 0044 0532 0130 00", "eyJhbGciOiJIUzI1NiJ9.", "xoxb-", "0", "9", "a", "Z"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES) | st.text(max_size=6), max_size=25))
def test_same_findings_on_random_mixtures(parts: list[str]) -> None:
    text = "".join(parts)
    assert FAST.find(text) == PURE.find(text)
    batch = [text, text[::-1], text[:9], "x" + text, text[-12:]]   # matches that end where a text ends
    assert FAST.redact_many(batch, 40) == PURE.redact_many(batch, 40)


def test_prefilter_pattern_only_loosens() -> None:
    assert prefilter_pattern(r"(?<![\w.])\d{3}(?![\w])(?!\.\d)") == r"(?:^|[^\w.])\d{3}(?:$|[^\w])"
    assert prefilter_pattern(r"(?:a(?![b]))c(?![d]|e)") == r"(?:a)c"
    assert prefilter_pattern(r"ab(?<![x]ab)c{2,5}[{(]") == r"abc{2,5}[{(]"
    assert prefilter_pattern(r"x(?=y(?:z))[)\]]{1}") == r"x[)\]]{1}"
    # What can match a non-ASCII character (several bytes) loses its upper bound.
    assert prefilter_pattern(r'"[^"\n]{4,256}".{2,3}(?:ab){1,2}') == r'"[^"\n]{4,}".{2,}(?:ab){1,}'


def test_user_patterns_hyperscan_cannot_take_still_run() -> None:
    r = FastRedactor(extra_patterns={"badge": r"(\d{4})-\1", "nom": "Müller-\\d+"})
    assert [f.kind for f in r.find("badge 1234-1234 by Müller-7")] == ["badge", "nom"]
