"""What happens to message content and oversized values at ingest: keep, redact or drop; cap size."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[truncated {len(text) - limit} chars]"


def _keep(text: str, limit: int) -> str:
    return truncate(text, limit)


@dataclass(frozen=True)
class ContentPolicy:
    mode: str = "redact"                  # keep | redact | drop
    max_content_chars: int = 16_384
    max_attribute_chars: int = 4_096
    # (text, limit) -> the text cut to `limit` characters and redacted. Cutting comes first, so the
    # work per string is bounded by the limit whatever a client sends.
    redact: Callable[[str, int], str] = field(default=_keep)

    def apply(self, text: str | None) -> tuple[str | None, bool]:
        """The text to store (or None) and whether it was truncated."""
        if text is None or self.mode == "drop":
            return None, False
        limit = self.max_content_chars
        stored = self.redact(text, limit) if self.mode == "redact" else truncate(text, limit)
        return stored, len(text) > limit


def default_policy(mode: str = "redact", max_content_chars: int = 16_384,
                   max_attribute_chars: int = 4_096) -> ContentPolicy:
    """The policy with the shim's redactor, the same one services use before sending."""
    from shim.redact import Redactor

    return ContentPolicy(mode, max_content_chars, max_attribute_chars, Redactor().redact)
