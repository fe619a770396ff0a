"""The server's redaction engine: one Hyperscan pass over a batch of texts says which rules can
match where; only those run (Python's `re` and the validators of `core.redact_rules`), and rules of
bounded width only in windows around the reported match ends.

Hyperscan compiles each rule in prefilter mode, loosened by `prefilter_pattern`, which can only
make it match more often, never less; so the findings are exactly those of the pure-`re` `Redactor`
(tests compare the two on the corpus and on random mixtures). Where the hyperscan wheel is
missing, `fast_redactor` returns the pure-`re` one.
"""
from __future__ import annotations

import re
import threading
from bisect import bisect_right
from typing import Any

from core.redact import _STRADDLE, Finding, RedactionMode, Redactor
from core.redact_rules import RULES

# Texts prefiltered together by redact_many: enough to amortise a scan, few enough that one hit
# does not spread windows over many texts.
_BATCH = 32
_BOUND = re.compile(r"\{(\d+)(?:,\d*)?\}")


def prefilter_pattern(pattern: str) -> str:
    """`pattern` loosened for a byte-wise prefilter: lookarounds removed, and repeats of what can
    match a non-ASCII character given no upper bound. Both only widen what matches; the second
    keeps it a superset when one character of the text is several UTF-8 bytes.

    A leading "not after one of these characters" (after any leading lookaheads, which go) and a
    final "not before one of these" stay, as
    "start (end) or another character": they keep the prefilter from firing inside every longer
    number or word. (A reported match end then moves one character on; windows allow for it.)"""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    depth = 0
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
            if not out and pattern.startswith("(?<![", i) and _one_class(pattern[i + 4:end]):
                out.append("(?:^|[^" + pattern[i + 5:end + 1])
            elif (depth == 0 and pattern.startswith("(?![", i) and _one_class(pattern[i + 3:end])
                  and _only_lookarounds(pattern[end + 1:])):
                out.append("(?:$|[^" + pattern[i + 4:end + 1])
                break
            i = end + 1
            continue
        bound = _BOUND.match(pattern, i) if ch == "{" else None
        if bound and _may_span_bytes(out):
            out.append("{" + bound.group(1) + ",}")
            i = bound.end()
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        out.append(ch)
        i += 1
    return "".join(out)


def _one_class(body: str) -> bool:
    """Whether `body` is exactly one positive character class, such as [\\w.\\-]."""
    if not body.startswith("[") or body[1:2] == "^" or not body.endswith("]"):
        return False
    i = 1 + (body[1:2] == "]")
    while i < len(body):
        if body[i] == "\\":
            i += 2
            continue
        if body[i] == "]":
            return i == len(body) - 1
        i += 1
    return False


def _only_lookarounds(rest: str) -> bool:
    i = 0
    while i < len(rest):
        if not rest.startswith(("(?<!", "(?<=", "(?!", "(?="), i):
            return False
        i = _group_end(rest, i) + 1
    return True


def _may_span_bytes(emitted: list[str]) -> bool:
    """Whether the atom just emitted can match a non-ASCII character (several bytes): a negated
    class, `.`, a negated escape or a group. Positive ASCII classes and literals count the same
    in characters and bytes, so their bounds stay (loosening them makes the prefilter slower)."""
    last = emitted[-1] if emitted else ""
    if last in (".", ")") or last in ("\\S", "\\W", "\\D", "\\B"):
        return True
    if last == "]":                         # find where this class opened
        depth = len(emitted) - 1
        while depth > 0 and not emitted[depth].startswith("["):
            depth -= 1
        return emitted[depth].startswith("[^")
    return False


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
        # Bytes, not UTF-8 mode: 5x faster to compile and 2x to scan; prefilter_pattern keeps it a
        # superset. Every match end is reported: it places the texts of a batch that a rule must
        # check, and for rules of bounded width the windows where their matches may start.
        base = hs.HS_FLAG_PREFILTER | hs.HS_FLAG_ALLOWEMPTY
        exprs: list[bytes] = []
        ids: list[int] = []
        always: set[int] = set()
        n_user = len(self.rules) - len(RULES)
        for i, rule in enumerate(self.rules):
            if not rule.pattern.isascii():  # a class of non-ASCII characters is not one byte
                always.add(i)
                continue
            expr = prefilter_pattern(rule.pattern).encode()
            if i < n_user:
                try:  # a user pattern Hyperscan cannot take is simply always run
                    hs.Database().compile(expressions=[expr], ids=[i], elements=1, flags=[base])
                except hs.error:
                    always.add(i)
                    continue
            exprs.append(expr)
            ids.append(i)
        db = hs.Database()
        db.compile(expressions=exprs, ids=ids, elements=len(exprs), flags=[base] * len(exprs))
        return db, frozenset(always)

    def serialized(self) -> bytes:
        """The compiled database, for worker processes (compiling takes seconds, loading does not)."""
        return self._hs.dumpb(self._db)

    def _scan(self, data: bytes) -> dict[int, list[int]]:
        """Rule -> byte offsets in `data` where a match of it may end, in increasing order."""
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:                 # one scratch space per thread (Hyperscan's rule)
            scratch = self._local.scratch = self._hs.Scratch(self._db)
        ends: dict[int, list[int]] = {}
        self._db.scan(data, match_event_handler=_collect, context=ends, scratch=scratch)
        return ends

    def find(self, text: str, only: frozenset[int] | None = None,
             windows: dict[int, list[tuple[int, int]]] | None = None) -> list[Finding]:
        data = text.encode("utf-8", "surrogatepass")
        return self._confirm(text, self._scan(data), data, only)

    def redact_many(self, texts: list[str], limit: int | None = None) -> list[str]:
        """`redact` of each text, with one Hyperscan scan per batch of texts."""
        out = list(texts)
        reach = limit + _STRADDLE if limit is not None else None
        for lo in range(0, len(texts), _BATCH):
            originals = texts[lo:lo + _BATCH]
            cut = originals if reach is None else [t if len(t) <= reach else t[:reach] for t in originals]
            joined = "\x00".join(cut)
            offsets, pos = [], 0
            if joined.isascii():            # the common case: one encode, offsets from lengths
                data = joined.encode()
                for t in cut:
                    offsets.append(pos)
                    pos += len(t) + 1
            else:
                encoded = [t.encode("utf-8", "surrogatepass") for t in cut]
                data = b"\x00".join(encoded)
                for e in encoded:
                    offsets.append(pos)
                    pos += len(e) + 1
            per_text: dict[int, dict[int, list[int]]] = {}
            for rule, ends in self._scan(data).items():
                for end in ends:            # which text the match's last byte is in, and where it ends
                    i = bisect_right(offsets, end - 1) - 1
                    per_text.setdefault(i, {}).setdefault(rule, []).append(end - offsets[i])
            todo = range(len(cut)) if self._always else sorted(per_text)
            for i in todo:
                text = cut[i]
                findings = self._confirm(text, per_text.get(i, {}), text.encode("utf-8", "surrogatepass"), None)
                if findings:
                    out[lo + i] = self.apply(originals[i], findings, limit)
            if limit is not None:
                for i, original in enumerate(originals):
                    if len(original) > limit and out[lo + i] is original:
                        out[lo + i] = self.apply(original, [], limit)
        return out

    def _confirm(self, text: str, ends: dict[int, list[int]], data: bytes, only: frozenset[int] | None) -> list[Finding]:
        """Run the rules the prefilter flagged: bounded ones only where their matches may start."""
        if not ends and not self._always:
            return []
        to_char = _char_offsets(data, ends).__getitem__ if len(data) != len(text) else None
        anywhere = set(self._always)
        spans: dict[int, list[tuple[int, int]]] = {}
        for rule, offsets in ends.items():
            if only is not None and rule not in only:
                continue
            reach = self._reach[rule]
            if reach is None:
                anywhere.add(rule)
            else:
                spans[rule] = _windows(offsets, reach, to_char)
        return Redactor.find(self, text, frozenset(anywhere), spans)


def _windows(ends: list[int], reach: int, to_char: Any) -> list[tuple[int, int]]:
    """Merged ranges of start positions for matches ending at `ends` (byte offsets)."""
    out: list[tuple[int, int]] = []
    for end in ends:                        # Hyperscan reports in order of end offset
        e = to_char(end) if to_char else end
        lo = max(0, e - reach)
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], e)
        else:
            out.append((lo, e))
    return out


def _char_offsets(data: bytes, ends: dict[int, list[int]]) -> dict[int, int]:
    """Byte offset -> character offset (rounded up inside a character) for the offsets in `ends`."""
    # Continuation bytes (10xxxxxx) do not start a character: count them before each offset, in
    # one pass over the offsets in order.
    marks = data.translate(_CONTINUATION)
    out: dict[int, int] = {}
    prev = seen = 0
    for offset in sorted({o for offsets in ends.values() for o in offsets}):
        seen += marks.count(1, prev, offset)
        prev = offset
        out[offset] = offset - seen
    return out


_CONTINUATION = bytes(1 if 0x80 <= b < 0xC0 else 0 for b in range(256))


def _collect(rule: int, _start: int, end: int, _flags: int, ends: Any) -> None:  # ends: dict[int, list[int]]
    hits = ends.get(rule)
    if hits is None:
        ends[rule] = [end]
    else:
        hits.append(end)


def fast_redactor(mode: RedactionMode = "mask", extra_patterns: dict[str, str] | None = None, *,
                  salt: str | None = None, database: bytes | None = None) -> Redactor:
    """The Hyperscan engine where its wheel is installed, else the pure-`re` one (same findings)."""
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        return Redactor(mode, extra_patterns, salt=salt)
    return FastRedactor(mode, extra_patterns, salt=salt, database=database)
