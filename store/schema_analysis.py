"""Migrations for the analyzers' output tables (versions 100-199), owned by analysis/."""
from __future__ import annotations

MIGRATIONS: list[tuple[int, str, list[str]]] = []
