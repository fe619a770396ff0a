"""What happens to message content and other stored strings at ingest: keep, redact or drop; cap size."""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.redact import Redactor

_MARK = "…[truncated "


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    # Already cut (and redacted) at this limit by the scrubber: replacements can make the kept part a
    # little longer than the limit, so a marked text up to 3x the limit is left as it is.
    if len(text) <= 3 * limit + 64 and text.endswith(" chars]") and _MARK in text[-40:]:
        return text
    return f"{text[:limit]}{_MARK}{len(text) - limit} chars]"


def _keep(text: str, limit: int) -> str:
    return truncate(text, limit)


@dataclass(frozen=True)
class RedactionConfig:
    """How stored strings are redacted. Plain data, so worker processes build the same policy."""

    strings: bool = True                   # every stored string, not only message content
    replacement: str = "mask"              # mask | hash
    salt: str = ""
    keep_keys: frozenset[str] = frozenset()
    drop_keys: frozenset[str] = frozenset()
    patterns: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ContentPolicy:
    mode: str = "redact"                  # keep | redact | drop
    max_content_chars: int = 16_384
    max_attribute_chars: int = 4_096
    # (text, limit) -> the text cut to `limit` characters and redacted. Cutting comes first, so the
    # work per string is bounded by the limit whatever a client sends.
    redact: Callable[[str, int], str] = field(default=_keep)
    # The engine behind `redact`; with `strings`, collectors.scrub also runs it on every other
    # stored string (attributes, names, status messages, log bodies, resource attributes).
    redactor: Redactor | None = None
    strings: bool = False
    keep_keys: frozenset[str] = frozenset()
    drop_keys: frozenset[str] = frozenset()

    @property
    def scrubs(self) -> bool:
        return self.redactor is not None and (self.strings or bool(self.drop_keys))

    def apply(self, text: str | None) -> tuple[str | None, bool]:
        """The text to store (or None) and whether it was truncated."""
        if text is None or self.mode == "drop":
            return None, False
        limit = self.max_content_chars
        stored = self.redact(text, limit) if self.mode == "redact" else truncate(text, limit)
        return stored, len(text) > limit


def build_policy(mode: str = "redact", max_content_chars: int = 16_384, max_attribute_chars: int = 4_096,
                 config: RedactionConfig = RedactionConfig(), database: bytes | None = None) -> ContentPolicy:
    """The ingest policy: the server's redaction engine (Hyperscan-prefiltered where installed)."""
    redactor = _redactor(config.replacement, config.salt, config.patterns, database)
    return ContentPolicy(mode, max_content_chars, max_attribute_chars, redactor.redact, redactor,
                         config.strings, config.keep_keys, config.drop_keys)


@functools.lru_cache(maxsize=8)
def _redactor(replacement: str, salt: str, patterns: tuple[tuple[str, str], ...], database: bytes | None) -> Redactor:
    # Compiling the prefilter takes about a second: tests and the sample loader build many policies.
    from collectors.redact_fast import fast_redactor

    return fast_redactor(replacement, dict(patterns), salt=salt or None, database=database)  # type: ignore[arg-type]


def default_policy(mode: str = "redact", max_content_chars: int = 16_384,
                   max_attribute_chars: int = 4_096) -> ContentPolicy:
    """The policy with default redaction settings."""
    return build_policy(mode, max_content_chars, max_attribute_chars)
