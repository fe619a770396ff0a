"""The server's redaction engine: one Hyperscan pass over a text decides which rules can match;
only those run (with Python's `re` and the validators of `shim.redact_rules`).

Hyperscan compiles each rule in prefilter mode, loosened by `prefilter_pattern`, which can only
make it match more often, never less; so the findings are exactly those of the pure-`re` `Redactor`
(tests compare the two on the corpus). Where the hyperscan wheel is missing, `fast_redactor`
returns the pure-`re` one.
"""
from __future__ import annotations

import re
import threading
from typing import Any

from shim.redact import Finding, RedactionMode, Redactor


_BOUND = re.compile(r"\{(\d+)(?:,\d*)?\}")


def prefilter_pattern(pattern: str) -> str:
    """`pattern` loosened for a byte-wise prefilter: lookarounds removed and repeat counts given no
    upper bound. Both only widen what matches; the second keeps it a superset when one character
    of the text is several UTF-8 bytes."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            j = i + 1 + (pattern[i + 1:i + 2] == "^")
            if pattern[j:j + 1] == "]":      # a leading ] is a literal inside the class
                j += 1
            out.append(pattern[i:j])
            i = j
            continue
        if pattern.startswith(("(?<!", "(?<=", "(?!", "(?="), i):
            end = _group_end(pattern, i)
            body = pattern[i + 4:end]
            # A leading "not after one of these characters" can stay, as "start or another character":
            # it keeps the prefilter from firing inside every longer number or word.
            if i == 0 and pattern.startswith("(?<![", i) and body[:1] == "[" and body[1:2] != "^" \
                    and _group_end("(" + body + ")", 0) == len(body) + 1 and body.endswith("]") \
                    and body.count("[") == 1:
                out.append("(?:^|[^" + body[1:] + ")")
            i = end + 1
            continue
        bound = _BOUND.match(pattern, i) if ch == "{" else None
        if bound:
            out.append("{" + bound.group(1) + ",}")
            i = bound.end()
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _group_end(pattern: str, i: int) -> int:
    """Index of the ")" closing the group that opens at `i`."""
    depth, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if pattern[i + 1:i + 2] == "^":
                i += 1
            if pattern[i + 1:i + 2] == "]":
                i += 1
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError(f"unbalanced group in {pattern!r}")


class FastRedactor(Redactor):
    """A `Redactor` whose `find` asks Hyperscan which rules can match before running any."""

    def __init__(self, mode: RedactionMode = "mask", extra_patterns: dict[str, str] | None = None, *,
                 salt: str | None = None, hash_chars: int = 12, database: bytes | None = None) -> None:
        super().__init__(mode, extra_patterns, salt=salt, hash_chars=hash_chars)
        import hyperscan

        self._hs = hyperscan
        self._always: frozenset[int] = frozenset()
        if database is not None:
            self._db = hyperscan.loadb(database, hyperscan.HS_MODE_BLOCK)
        else:
            self._db, self._always = self._compile()
        self._local = threading.local()

    def _compile(self) -> tuple[Any, frozenset[int]]:
        hs = self._hs
        # Bytes, not UTF-8 mode: 5x faster to compile and 2x to scan; prefilter_pattern keeps it a superset.
        flags = hs.HS_FLAG_PREFILTER | hs.HS_FLAG_SINGLEMATCH | hs.HS_FLAG_ALLOWEMPTY
        exprs, ids, always = [], [], set()
        for i, rule in enumerate(self.rules):
            if not rule.pattern.isascii():  # a class of non-ASCII characters is not one byte
                always.add(i)
                continue
            expr = prefilter_pattern(rule.pattern).encode()
            try:  # a user pattern Hyperscan cannot take is simply always run
                hs.Database().compile(expressions=[expr], ids=[i], elements=1, flags=[flags])
            except hs.error:
                always.add(i)
                continue
            exprs.append(expr)
            ids.append(i)
        db = hs.Database()
        db.compile(expressions=exprs, ids=ids, elements=len(exprs), flags=[flags] * len(exprs))
        return db, frozenset(always)

    def serialized(self) -> bytes:
        """The compiled database, for worker processes (compiling takes seconds, loading does not)."""
        return self._hs.dumpb(self._db)

    def rules_that_may_match(self, text: str) -> frozenset[int]:
        data = text.encode("utf-8", "surrogatepass")
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:                 # one scratch space per thread (Hyperscan's rule)
            scratch = self._local.scratch = self._hs.Scratch(self._db)
        hits: set[int] = set(self._always)
        self._db.scan(data, match_event_handler=_collect, context=hits, scratch=scratch)
        return frozenset(hits)

    def _may_match(self, text: str) -> frozenset[int] | None:
        return self.rules_that_may_match(text)

    def find(self, text: str, only: frozenset[int] | None = None) -> list[Finding]:
        may = self.rules_that_may_match(text)
        if not may:
            return []
        return super().find(text, may if only is None else may & only)


def _collect(rule: int, _start: int, _end: int, _flags: int, hits: set[int]) -> None:
    hits.add(rule)


def fast_redactor(mode: RedactionMode = "mask", extra_patterns: dict[str, str] | None = None, *,
                  salt: str | None = None, database: bytes | None = None) -> Redactor:
    """The Hyperscan engine where its wheel is installed, else the pure-`re` one (same findings)."""
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        return Redactor(mode, extra_patterns, salt=salt)
    return FastRedactor(mode, extra_patterns, salt=salt, database=database)
