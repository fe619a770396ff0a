"""Migrations for alert state, silences, notification log and outbox (versions 200-299), owned by alerts/.

The alert evaluator and dispatcher keep everything they must remember across restarts here: the
state of every alert (by label fingerprint), aggregation groups with their next flush time, the
notification log (what each receiver was last told), the outbox of notifications still to deliver
and the log of every delivery attempt. Timestamps are naive UTC.
"""
from __future__ import annotations

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (200, "alert state, groups, notification log, outbox, silences, review", [
        # One row per alert (label fingerprint) that is pending, firing or recently resolved.
        """CREATE TABLE alert_state (
             fingerprint VARCHAR PRIMARY KEY,
             rule VARCHAR, severity VARCHAR,
             labels VARCHAR,              -- JSON object
             annotations VARCHAR,         -- JSON object (rendered summary, description, runbook, ...)
             state VARCHAR,               -- pending | firing | resolved
             active_at TIMESTAMP,         -- condition first true (pending since)
             fired_at TIMESTAMP,
             resolved_at TIMESTAMP,
             last_true_at TIMESTAMP,      -- last evaluation with the condition true (keep_firing_for)
             last_eval_at TIMESTAMP,
             value DOUBLE, threshold DOUBLE,
             group_key VARCHAR,           -- aggregation group this alert is dispatched in
             resolve_flushed BOOLEAN DEFAULT false)""",
        # Append-only transitions: the alert history the read API and backtests show.
        """CREATE TABLE alert_history (
             time TIMESTAMP, fingerprint VARCHAR, rule VARCHAR, severity VARCHAR, labels VARCHAR,
             from_state VARCHAR, to_state VARCHAR, value DOUBLE, threshold DOUBLE)""",
        # Aggregation groups (Alertmanager's dispatcher): one per route and group_by values.
        """CREATE TABLE alert_groups (
             group_key VARCHAR PRIMARY KEY, route VARCHAR, group_labels VARCHAR,
             created_at TIMESTAMP, next_flush_at TIMESTAMP, last_flush_at TIMESTAMP)""",
        # Notification log: what each receiver of a group was last told (dedup and repeat_interval).
        """CREATE TABLE alert_nflog (
             group_key VARCHAR, receiver VARCHAR, firing VARCHAR, resolved VARCHAR,  -- JSON lists of fingerprints
             notified_at TIMESTAMP, PRIMARY KEY (group_key, receiver))""",
        # Outbox: a notification is decided and recorded in one transaction; delivery is at least once.
        """CREATE TABLE alert_outbox (
             id VARCHAR PRIMARY KEY, seq BIGINT, created_at TIMESTAMP, receiver VARCHAR, receiver_type VARCHAR,
             group_key VARCHAR, status VARCHAR,        -- firing | resolved (of the notification)
             dedup_key VARCHAR, payload VARCHAR,       -- JSON body, without secrets (added at send time)
             state VARCHAR,                            -- pending | delivered | failed | dead
             attempts INTEGER DEFAULT 0, next_attempt_at TIMESTAMP, delivered_at TIMESTAMP,
             last_status INTEGER, last_error VARCHAR)""",
        # Every delivery attempt with the receiver's answer.
        """CREATE TABLE alert_notifications (
             time TIMESTAMP, outbox_id VARCHAR, receiver VARCHAR, receiver_type VARCHAR, group_key VARCHAR,
             status VARCHAR, attempt INTEGER, outcome VARCHAR,  -- delivered | retry | failed | dead
             http_status INTEGER, error VARCHAR, duration_ms DOUBLE)""",
        """CREATE TABLE alert_silences (
             id VARCHAR PRIMARY KEY, matchers VARCHAR,  -- JSON list of {name, op, value}
             starts_at TIMESTAMP, ends_at TIMESTAMP, created_by VARCHAR, comment VARCHAR,
             created_at TIMESTAMP, updated_at TIMESTAMP)""",
        # P3 notifications recorded for the weekly review.
        """CREATE TABLE alert_review (
             time TIMESTAMP, fingerprint VARCHAR, rule VARCHAR, severity VARCHAR, status VARCHAR,
             labels VARCHAR, summary VARCHAR, description VARCHAR, value DOUBLE, threshold DOUBLE,
             starts_at TIMESTAMP, ends_at TIMESTAMP, outbox_id VARCHAR)""",
        # Small key-value state of the alerts stage (last weekly digest, ...).
        "CREATE TABLE alert_kv (key VARCHAR PRIMARY KEY, value VARCHAR, updated_at TIMESTAMP)",
    ]),
]
