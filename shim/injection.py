"""Prompt-injection heuristics: a score in [0, 1] recorded on every span, blocking only if configured.

Weighted patterns for the common attack phrasings (override instructions, role hijack, prompt
exfiltration, fake chat-template tokens). Scores combine as 1 - prod(1 - w), so several weak signals
add up without exceeding 1. A heuristic, not a classifier: expect misses on novel attacks.
"""

from __future__ import annotations

import re

_RULES: list[tuple[float, str]] = [
    (0.6, r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,40}\b(?:previous|prior|above|earlier|all|your|the)\b[^.\n]{0,20}\b(?:instructions?|prompts?|rules|directions|guidelines)"),
    (0.5, r"\b(?:reveal|show|print|repeat|output|leak)\b[^.\n]{0,30}\b(?:system|hidden|initial|original)\s+(?:prompt|instructions?|message)"),
    (0.4, r"\byou\s+are\s+now\b|\bfrom\s+now\s+on\s+you\b|\bact\s+as\s+(?:an?\s+)?(?:unrestricted|unfiltered|evil|jailbroken)"),
    (0.5, r"\b(?:developer|god|dan|jailbreak)\s+mode\b|\bdo\s+anything\s+now\b|\bDAN\b"),
    (0.5, r"<\|(?:im_start|im_end|system|endoftext)\|>|\[/?INST\]|<<SYS>>|^\s*###\s*(?:system|instruction)s?\s*:"),
    (0.3, r"\b(?:new|updated|real)\s+(?:system\s+)?instructions?\s*:"),
    (0.3, r"\bpretend\s+(?:that\s+)?(?:you|there)\b[^.\n]{0,30}\b(?:no|without)\s+(?:rules|restrictions|filters|limits)"),
    (0.2, r"\b(?:base64|rot13)\b[^.\n]{0,20}\b(?:decode|encoded)\b"),
    (0.3, r"\bwithout\s+(?:any\s+)?(?:restrictions|filters|censorship|safety)\b"),
]
_COMPILED = [(w, re.compile(p, re.IGNORECASE | re.MULTILINE)) for w, p in _RULES]


def injection_score(text: str) -> float:
    """Heuristic likelihood in [0, 1] that `text` tries to override the model's instructions."""
    if not text:
        return 0.0
    keep = 1.0
    for weight, pattern in _COMPILED:
        if pattern.search(text):
            keep *= 1.0 - weight
    return round(1.0 - keep, 4)
