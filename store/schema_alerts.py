"""Migrations for alert state, silences, notification log and outbox (versions 200-299), owned by alerts/."""
from __future__ import annotations

MIGRATIONS: list[tuple[int, str, list[str]]] = []
