"""Shared fixtures for the shim tests: the loopback fake provider, in-memory OTel exporters and an
injectable clock, so no test sleeps for real or leaves the machine."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))   # makes tests/fakes importable as `fakes`
sys.path.insert(0, str(Path(__file__).parent))        # makes redaction_corpus importable
