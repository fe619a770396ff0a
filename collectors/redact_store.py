"""Re-redaction of rows already stored: data written by an older aiwatch, or with content_mode=keep.

Runs as one writer transaction (`aiwatch redact store`, with the server stopped: DuckDB allows one
writing process). Rows are read in rowid order in pages; only rows with findings are updated.
"""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

from collectors.content import ContentPolicy
from collectors.scrub import IDENTITY_KEYS

# table -> (time column, free-text columns, JSON attribute columns). Ids, enums and the service's
# identity are left as they are.
TARGETS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "spans": ("start_time", ("name", "status_message", "request_id", "user_id", "tenant", "route", "error_type",
                             "response_id"), ("attributes",)),
    "span_content": ("start_time", ("input_text", "output_text"), ()),
    "audit_events": ("time", ("request_id", "user_id", "decision_path", "input_text", "output_text"), ("attributes",)),
    "feedback": ("time", ("request_id", "reviewer", "reason"), ("attributes",)),
    "logs": ("time", ("body",), ("attributes",)),
    "resource_metrics": ("time", (), ("attributes",)),
}
_PAGE = 5_000


def reredact_store(con: Any, policy: ContentPolicy, since: datetime | None) -> Counter[tuple[str, str]]:
    """Redact every stored string written since `since` (None: all); (table, kind) -> findings.
    Attribute keys in the policy's drop list count as kind "dropped_key"."""
    counts: Counter[tuple[str, str]] = Counter()
    for table, (time_col, text_cols, json_cols) in TARGETS.items():
        cols = text_cols + json_cols
        last = -1
        while True:
            rows = con.execute(
                f"SELECT rowid, {', '.join(cols)} FROM {table} WHERE rowid > ? "
                f"{'AND ' + time_col + ' >= ?' if since else ''} ORDER BY rowid LIMIT {_PAGE}",
                [last, since] if since else [last]).fetchall()
            if not rows:
                break
            last = rows[-1][0]
            for row in rows:
                changes = {}
                for col, value in zip(cols, row[1:]):
                    if not value:
                        continue
                    found: Counter[str] = Counter()
                    new = _json(value, policy, found) if col in json_cols else _text(value, policy, found)
                    if new != value:
                        changes[col] = new
                        for kind, n in found.items():
                            counts[(table, kind)] += n
                if changes:
                    con.execute(f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in changes)} WHERE rowid = ?",
                                [*changes.values(), row[0]])
    return counts


def _text(value: str, policy: ContentPolicy, found: Counter[str]) -> str:
    redactor = policy.redactor
    assert redactor is not None
    findings = redactor.find(value)
    found.update(f.kind for f in findings)
    return redactor.apply(value, findings) if findings else value


def _json(value: str, policy: ContentPolicy, found: Counter[str]) -> str:
    try:
        data = json.loads(value)
    except ValueError:
        return _text(value, policy, found)
    changed = False

    def walk(node: Any) -> Any:
        nonlocal changed
        if isinstance(node, str):
            new = _text(node, policy, found)
            changed = changed or new != node
            return new
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if k in policy.drop_keys:
                    found["dropped_key"] += 1
                    changed = True
                elif k in policy.keep_keys or k in IDENTITY_KEYS:
                    out[k] = v
                else:
                    out[k] = walk(v)
            return out
        return node

    data = walk(data)
    return json.dumps(data, ensure_ascii=False) if changed else value
