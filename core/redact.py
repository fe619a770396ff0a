"""Redaction of personal data and secrets before anything leaves the process.

The shim runs it on audit events and captured content with Python's `re` (light to import); the
server runs the same rules behind a one-pass Hyperscan prefilter (`collectors.redact_fast`). The
rules and their validators (Luhn, mod-97, SSN ranges, libphonenumber) are in `core.redact_rules`.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import Any, Literal

from core.redact_rules import RULES, Rule

RedactionMode = Literal["mask", "hash", "drop"]

DROPPED = "[REDACTED]"
# Matches (findings or near misses) examined per text before the whole text is redacted as
# UNSCANNED: bounds the work per text whatever it holds. Below it both engines find the same.
MAX_CANDIDATES = 256
UNSCANNED = "unscanned"
# With a length limit, scan this far past the cut so a value straddling it is still recognised.
_STRADDLE = 512


@dataclass(frozen=True, slots=True)
class Finding:
    """One sensitive span in a text: what kind it is and where (start, end). Never the value."""

    kind: str
    span: tuple[int, int]

    @property
    def start(self) -> int:
        return self.span[0]

    @property
    def end(self) -> int:
        return self.span[1]


class Redactor:
    """Finds and removes personal data and credentials in text (the kinds in `core.redact_rules`).

    mode="mask" -> "[REDACTED:email]"; "hash" -> "[email:1a2b3c4d5e6f]" (sha256 of salt + value, so
    equal values stay joinable without being readable); "drop" -> the whole text becomes
    "[REDACTED]" if anything was found. `extra_patterns` maps a kind name to a regex; they win over
    the built-in rules. The hash salt defaults to the AIWATCH_REDACT_SALT environment variable:
    without a salt, a hashed phone number can be brute-forced, so set one in production.
    """

    def __init__(
        self,
        mode: RedactionMode = "mask",
        extra_patterns: dict[str, str] | None = None,
        *,
        salt: str | None = None,
        hash_chars: int = 12,
    ) -> None:
        if mode not in ("mask", "hash", "drop"):
            raise ValueError(f"unknown redaction mode {mode!r}")
        self.mode: RedactionMode = mode
        self._salt = (salt if salt is not None else os.environ.get("AIWATCH_REDACT_SALT", "")).encode()
        self._hash_chars = hash_chars
        # User patterns go first: a user who names a pattern means it to win over the defaults.
        self.rules: tuple[Rule, ...] = tuple(Rule(kind, pattern) for kind, pattern in (extra_patterns or {}).items()) + RULES
        self._compiled = [(rule, re.compile(rule.pattern, re.ASCII)) for rule in self.rules]
        # How far past the start of a match a windowed search must see: the longest match plus
        # lookahead context (None: unbounded, such a rule is always searched whole).
        self._reach: list[int | None] = [_reach(rule.pattern) for rule in self.rules]

    def find(self, text: str, only: frozenset[int] | None = None,
             windows: dict[int, list[tuple[int, int]]] | None = None) -> list[Finding]:
        """All sensitive spans in `text`, left to right, non-overlapping.

        A prefilter may narrow the work: `only` lists the rules to run over the whole text, and
        `windows` the rules to run only where a match may start ((lo, hi) ranges of start
        positions, sorted, for rules of bounded width). The result is the same as a full scan
        whenever the prefilter never misses a match. A text with more than MAX_CANDIDATES matches
        to examine comes back as one UNSCANNED finding over all of it.
        """
        candidates: list[tuple[int, int, int, str]] = []
        lowered: str | None = None
        budget = MAX_CANDIDATES
        compiled = self._compiled
        if only is None and windows is None:
            order: Any = range(len(compiled))
        else:
            order = sorted((only or frozenset()) | (windows.keys() if windows else frozenset()))
        for priority in order:
            rule, regex = compiled[priority]
            if rule.triggers:
                if rule.lower:
                    lowered = text.lower() if lowered is None else lowered
                    hay = lowered
                else:
                    hay = text
                if not any(t in hay for t in rule.triggers):
                    continue
            spans = windows.get(priority) if windows else None
            search = regex.search if spans is None else _WindowedSearch(regex, text, spans, self._reach[priority])
            validate, groups = rule.validate, rule.groups
            pos = 0
            while True:
                m = search(text, pos)
                if m is None:
                    break
                budget -= 1
                if budget < 0:
                    # A text made of near misses (or of thousands of findings) would cost
                    # milliseconds per kilobyte: redact it whole rather than stall ingest.
                    return [Finding(UNSCANNED, (0, len(text)))]
                start, end = m.span()
                for name in groups:
                    if m.start(name) >= 0:
                        start, end = m.span(name)
                        break
                if validate is not None:
                    valid_end = validate(text, start, end)
                    if not valid_end:
                        # Not this kind after all; rescan from the next character (boundary
                        # lookbehinds stop the rest of the same number from matching).
                        pos = m.start() + 1
                        continue
                    end = valid_end
                if end > start:
                    candidates.append((start, priority, end, rule.kind))
                pos = max(end, m.start() + 1)
        if len(candidates) > 1:
            candidates.sort()
        findings: list[Finding] = []
        last_end = -1
        for start, _, end, kind in candidates:
            if start >= last_end:
                findings.append(Finding(kind, (start, end)))
                last_end = end
        return findings

    def redact(self, text: str, limit: int | None = None) -> str:
        """`text` with every finding replaced according to the mode.

        With `limit`, only the first `limit` characters are kept (plus a truncation marker), and
        only they are scanned: cutting first bounds the work by the limit, not by what a client
        sent. A finding that straddles the cut is redacted whole.
        """
        if not text:
            return text
        return self.apply(text, self.find(text if limit is None else text[:limit + _STRADDLE]), limit)

    def redact_many(self, texts: list[str], limit: int | None = None) -> list[str]:
        """`redact` of each text (the server's engine scans a batch of texts at once)."""
        return [self.redact(text, limit) if text else text for text in texts]

    def apply(self, text: str, findings: list[Finding], limit: int | None = None) -> str:
        """`text` with `findings` replaced (and cut at `limit`, see `redact`)."""
        cut = len(text) if limit is None or len(text) <= limit else limit
        if findings and self.mode == "drop":
            return DROPPED
        out: list[str] = []
        last = 0
        for f in findings:
            if f.start >= cut:
                break
            out.append(text[last:f.start])
            out.append(self._replacement(f.kind, text[f.start:f.end]))
            last = f.end
        if not out and cut == len(text):
            return text
        cut = max(cut, last)
        out.append(text[last:cut])
        if cut < len(text):
            out.append(f"…[truncated {len(text) - cut} chars]")
        return "".join(out)

    def redact_value(self, value: Any) -> Any:
        """Redact every string inside a JSON-like value (dicts, lists, tuples); other types pass."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.redact_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact_value(v) for v in value]
        return value

    def _replacement(self, kind: str, value: str) -> str:
        if self.mode == "hash":
            digest = hashlib.sha256(self._salt + value.encode()).hexdigest()[: self._hash_chars]
            return f"[{kind}:{digest}]"
        return f"[REDACTED:{kind}]"


class _WindowedSearch:
    """`regex.search(text, pos)` for a rule whose matches can only start inside `spans`.

    Each window is searched with an end position far enough past it (the longest match plus
    lookahead context) that a match starting inside it is the one a whole-text search finds."""

    def __init__(self, regex: re.Pattern[str], text: str, spans: list[tuple[int, int]], reach: int | None) -> None:
        assert reach is not None
        self._search, self._spans, self._reach, self._n, self._k = regex.search, spans, reach, len(text), 0

    def __call__(self, text: str, pos: int) -> re.Match[str] | None:
        spans, k = self._spans, self._k
        while k < len(spans):
            lo, hi = spans[k]
            if hi >= pos:
                m = self._search(text, max(lo, pos), min(self._n, hi + self._reach))
                if m is not None and m.start() <= hi:
                    self._k = k
                    return m
            k += 1
        self._k = k
        return None


def _reach(pattern: str) -> int | None:
    """Longest match of `pattern` plus its longest lookahead, plus 2 (`$` before a final newline);
    None when unbounded or when the pattern looks past the match in ways this cannot bound."""
    from re import _parser  # type: ignore[attr-defined]  # the parser of the `re` in use: widths as the engine counts them

    try:
        tree = _parser.parse(pattern, re.ASCII)
    except re.error:
        return None
    longest = tree.getwidth()[1]
    ahead = _lookahead(tree)
    if longest >= _UNBOUNDED or ahead is None:
        return None
    return longest + ahead + 2


def _lookahead(node: Any) -> int | None:
    widest = 0
    for op, av in getattr(node, "data", node):
        name = str(op)
        if name in ("ASSERT", "ASSERT_NOT"):
            direction, sub = av
            if direction == 1:
                width = sub.getwidth()[1]
                if width >= _UNBOUNDED:
                    return None
                widest = max(widest, width)
        for child in av if isinstance(av, (list, tuple)) else (av,):
            kids = [child] if hasattr(child, "data") else (child if isinstance(child, list) else [])
            for kid in kids:
                if hasattr(kid, "data"):
                    sub_width = _lookahead(kid)
                    if sub_width is None:
                        return None
                    widest = max(widest, sub_width)
    return widest


_UNBOUNDED = 10_000
_default: Redactor | None = None


def default_redactor() -> Redactor:
    """A shared mask-mode redactor, built once (compiling the pattern costs a few ms)."""
    global _default
    if _default is None:
        _default = Redactor()
    return _default
