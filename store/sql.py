"""The two walls between input and SQL: one quoting helper for identifiers and literals, and a
DuckDB connection that cannot reach files, extensions or the environment even if a string slips.

Values are always bound as parameters. Identifiers come from allow-lists; where a name must be
spelled in SQL (an attribute key in a JSON path, a column alias) it goes through `quote_ident` or
`quote_literal` here, and nowhere else.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb

# DuckDB's own wall: no file reads/writes beyond the database itself, no extension installs, no
# replacement scans of Python objects, and `SET` cannot undo it (lock_configuration).
LOCKED_CONFIG: dict[str, Any] = {"enable_external_access": False, "lock_configuration": True}

# Attribute keys a drift column or filter may name: what OpenTelemetry attribute names use.
ATTRIBUTE_KEY = re.compile(r"[A-Za-z0-9_.\-/]{1,128}")


def connect(path: str | Path, *, read_only: bool = False, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB database with the locked configuration (every aiwatch connection comes from here)."""
    config: dict[str, Any] = dict(LOCKED_CONFIG)
    if threads:
        config["threads"] = threads
    return duckdb.connect(str(path), read_only=read_only, config=config)


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("NUL character in an SQL name or literal")
    return text


def quote_ident(name: str) -> str:
    """`name` as a double-quoted SQL identifier (embedded quotes doubled)."""
    return '"' + _no_nul(name).replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """`text` as a single-quoted SQL string literal (embedded quotes doubled; DuckDB has no backslash escapes)."""
    return "'" + _no_nul(text).replace("'", "''") + "'"


def attribute_key(key: str) -> str:
    """Check an attribute key against ATTRIBUTE_KEY (ValueError naming it otherwise)."""
    if not ATTRIBUTE_KEY.fullmatch(key):
        raise ValueError(f"attribute key {key!r} is not allowed: use 1-128 letters, digits, '_', '.', '-' or '/'")
    return key


def json_path(key: str) -> str:
    """The quoted JSON path literal that reads top-level attribute `key` (checked first)."""
    return quote_literal('$."' + attribute_key(key) + '"')
