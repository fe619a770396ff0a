"""Redaction of personal data and secrets before anything leaves the process.

The shim runs it on audit events and captured content; the collector runs the same class on every
message at ingest, so it is one precompiled alternation scanned once per text, with cheap
checksum validators (Luhn for cards, mod-97 for IBANs) to keep look-alike numbers untouched.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Literal

RedactionMode = Literal["mask", "hash", "drop"]

DROPPED = "[REDACTED]"


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


# --- validators: take the matched text, return the length of its valid prefix (0 = reject) ---

def _luhn_ok(digits: str) -> bool:
    total = 0
    parity = len(digits) % 2
    for i, ch in enumerate(digits):
        d = ord(ch) - 48
        if i % 2 == parity:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card(match: str) -> int:
    digits = match.replace(" ", "").replace("-", "")
    # Card numbers start 2-6 (Mastercard 2-series, Amex/JCB/Diners 3, Visa 4, MC 5, Discover/UnionPay 6).
    if not 13 <= len(digits) <= 19 or digits[0] not in "23456" or not _luhn_ok(digits):
        return 0
    return len(match)


# Registered IBAN lengths per country (SWIFT IBAN registry); unknown countries accept 15..34.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20,
    "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30,
    "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}


def _iban_mod97_ok(compact: str) -> bool:
    rearranged = compact[4:] + compact[:4]
    # Letters become two-digit numbers (A=10 .. Z=35); fold the remainder as we go.
    rem = 0
    for ch in rearranged:
        v = ord(ch) - 48 if ch <= "9" else ord(ch) - 55
        rem = (rem * (100 if v > 9 else 10) + v) % 97
    return rem == 1


def _iban(match: str) -> int:
    # The pattern is greedy (it may swallow a following upper-case word), so try the longest
    # prefix whose compact length is plausible and whose checksum is right.
    upper = match.upper()
    expected = _IBAN_LENGTHS.get(upper[:2])
    end = len(upper)
    while end >= 15:
        prefix = upper[:end]
        compact = prefix.replace(" ", "")
        ok_len = len(compact) == expected if expected else 15 <= len(compact) <= 34
        if ok_len and not prefix.endswith(" ") and _iban_mod97_ok(compact):
            nxt = match[end:end + 1]
            if not nxt.isalnum():
                return end
        end -= 1
    return 0


def _phone(match: str) -> int:
    n = sum(ch.isdigit() for ch in match)
    # Fewer than 9 digits is more often a date or a count than a reachable phone number.
    return len(match) if 9 <= n <= 15 else 0


# (kind, pattern, validator, secret_group, trigger). secret_group names a sub-pattern whose span
# alone is redacted (keep "Bearer ", hide the token). trigger is a cheap substring test that skips
# the regex when it cannot match. Each pattern starts with a literal or a character class and puts
# its boundary lookbehind after that, so `re` scans for the start in C: one alternation with
# leading lookbehinds measured ~5x slower. List order is priority when two findings start together.
_Entry = tuple[str, "re.Pattern[str]", Callable[[str], int] | None, str | None, Callable[[str], bool] | None]
_TOKEN = r"A-Za-z0-9_\-"
_BUILTIN: list[tuple[str, str, Callable[[str], int] | None, str | None, Callable[[str], bool] | None]] = [
    ("anthropic_key", rf"sk-ant-(?<![{_TOKEN}]sk-ant-)(?:api\d\d-|admin\d\d-)?[{_TOKEN}]{{20,}}(?![{_TOKEN}])", None, None, None),
    ("openai_key", rf"sk-(?<![{_TOKEN}]sk-)(?!ant-)(?:proj-|svcacct-|admin-|None-)?[{_TOKEN}]{{20,}}(?![{_TOKEN}])", None, None, None),
    ("aws_access_key", r"(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)(?<![A-Z0-9]....)[A-Z0-9]{16}(?![A-Z0-9])", None, None, None),
    ("github_token", rf"(?:gh[pousr]_(?<![{_TOKEN}]....)[A-Za-z0-9]{{36,255}}|github_pat_(?<![{_TOKEN}]github_pat_)[A-Za-z0-9_]{{22,255}})(?![{_TOKEN}])", None, None, None),
    ("slack_token", rf"xox[abposr]-(?<![{_TOKEN}].....)(?:[A-Za-z0-9]+-){{1,4}}[A-Za-z0-9]{{6,}}(?![{_TOKEN}])", None, None, None),
    ("bearer_token", r"[Bb]earer(?<![A-Za-z].earer)[ \t]+(?P<_s>[A-Za-z0-9\-._~+/]{16,}=*)", None, "_s", lambda t: "earer" in t),
    ("jwt", rf"eyJ(?<![{_TOKEN}]eyJ)[{_TOKEN}]{{8,}}\.eyJ[{_TOKEN}]{{8,}}\.[{_TOKEN}]{{8,}}(?![{_TOKEN}])", None, None, None),
    ("secret", r"(?i:(?<![A-Za-z0-9])(?:api[_\-]?key|secret(?:[_\-]?key)?|access[_\-]?token|auth[_\-]?token|password|passwd|pwd)"
               r"[\"']?[ \t]*[:=][ \t]*[\"']?)"
               # a value that is itself a known key is left to its specific pattern, for a better kind
               r"(?!sk-|gh[pousr]_|github_pat_|xox|AKIA|ASIA|eyJ|[Bb]earer )(?P<_s>[^\s\"',;]{8,})", None, "_s",
     lambda t: any(k in t.lower() for k in ("key", "secret", "token", "pass", "pwd"))),
    ("email", r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?"
              r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![A-Za-z0-9\-])", None, None,
     lambda t: "@" in t),
    ("iban", r"[A-Z][A-Z]\d\d(?<![A-Za-z0-9]....)(?: ?[A-Z0-9]){11,32}", _iban, None, None),
    ("card_number", r"\d(?<![\d.\-]\d)(?:[ \-]?\d){12,18}(?![\d]|[.\-]\d)", _card, None, None),
    ("phone", r"[+(\d](?<![\w.+\-/][+(\d])(?:"
              r"(?<=\+)\d{1,3}(?:[ .\-]?\(?\d{1,4}\)?){2,5}"           # international: +44 20 7946 0958
              r"|(?<=\()\d{3}\)[ .\-]?\d{3}[ .\-]\d{4}"                # (415) 555-2671
              r"|(?<=\d)\d{2}[.\-]\d{3}[.\-]\d{4}|(?<=\d)\d{2} \d{3} \d{4}"  # 415-555-2671, 415 555 2671
              r"|(?<=0)\d{1,4}(?:[ .\-]\d{2,4}){2,4}|(?<=0)\d{3,4}[ \-]\d{6,7}"  # national, trunk 0: 020 7946 0958
              r")(?![\w]|[.\-/:]\d)", _phone, None, None),
]


class Redactor:
    """Finds and removes emails, phones, card numbers, IBANs and API keys/tokens in text.

    mode="mask" -> "[REDACTED:email]"; "hash" -> "[email:1a2b3c4d5e6f]" (sha256 of salt + value, so
    equal values stay joinable without being readable); "drop" -> the whole text becomes
    "[REDACTED]" if anything was found. `extra_patterns` maps a kind name to a regex.
    The hash salt defaults to the AIWATCH_REDACT_SALT environment variable: without a salt, a
    hashed phone number can be brute-forced, so set one in production.
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
        entries = list(_BUILTIN)
        # User patterns go first: a user who names a pattern means it to win over the defaults.
        for kind, pattern in (extra_patterns or {}).items():
            entries.insert(0, (kind, pattern, None, None, None))
        self._entries: list[_Entry] = [
            (kind, re.compile(pattern), validator, secret_group, trigger)
            for kind, pattern, validator, secret_group, trigger in entries
        ]

    def find(self, text: str) -> list[Finding]:
        """All sensitive spans in `text`, left to right, non-overlapping."""
        candidates: list[tuple[int, int, int, str]] = []
        for priority, (kind, regex, validator, secret_group, trigger) in enumerate(self._entries):
            if trigger is not None and not trigger(text):
                continue
            pos = 0
            while True:
                m = regex.search(text, pos)
                if m is None:
                    break
                start, end = m.span()
                if validator is not None:
                    valid = validator(m.group())
                    if not valid:
                        # Not this kind after all; rescan from the next character (boundary
                        # lookbehinds stop the rest of the same number from matching).
                        pos = start + 1
                        continue
                    end = start + valid
                if secret_group is not None and m.group(secret_group) is not None:
                    s_start, s_end = m.span(secret_group)
                    candidates.append((s_start, priority, s_end, kind))
                else:
                    candidates.append((start, priority, end, kind))
                pos = end if end > start else end + 1
        if len(candidates) > 1:
            candidates.sort()
        findings: list[Finding] = []
        last_end = -1
        for start, _, end, kind in candidates:
            if start >= last_end:
                findings.append(Finding(kind, (start, end)))
                last_end = end
        return findings

    def redact(self, text: str) -> str:
        """`text` with every finding replaced according to the mode."""
        if not text:
            return text
        findings = self.find(text)
        if not findings:
            return text
        if self.mode == "drop":
            return DROPPED
        out: list[str] = []
        last = 0
        for f in findings:
            out.append(text[last:f.start])
            out.append(self._replacement(f.kind, text[f.start:f.end]))
            last = f.end
        out.append(text[last:])
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


_default: Redactor | None = None


def default_redactor() -> Redactor:
    """A shared mask-mode redactor, built once (compiling the pattern costs a few ms)."""
    global _default
    if _default is None:
        _default = Redactor()
    return _default
