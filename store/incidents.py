"""Incidents: the alerts of one service that overlap in time, as one object, plus the reads its page needs.

An alert fires and resolves (alert_history transitions, per fingerprint); the alerts of one service
whose firing intervals overlap form one incident. Its id is `<service>@<first firing, ISO seconds>`,
so an alert message can link to `/incident?service=S&at=T` (the incident containing that moment)
without knowing which other alerts will join it.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from store.base import Store
from store.queries import (
    END,
    LIMIT,
    SERVICE,
    START,
    BadParameter,
    NamedQuery,
    Param,
    model_sql,
    span_filter_sql,
)

SEVERITY_RANK = {"P1": 1, "P2": 2, "P3": 3}
INCIDENT_COLUMNS = ("incident_id", "service", "severity", "state", "started_at", "ended_at", "duration_min",
                    "alerts", "rules", "fingerprints", "routes", "models", "versions")


def _labels(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value or "{}")
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def firing_intervals(history: Iterable[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """(fingerprint, rule, severity, labels, fired_at, resolved_at) per firing of an alert, oldest first;
    an alert still firing ends at None."""
    open_: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for rec in sorted(history, key=lambda r: r["time"]):
        fp = rec["fingerprint"]
        if rec["to_state"] == "firing" and fp not in open_:
            open_[fp] = {"fingerprint": fp, "rule": rec["rule"], "severity": rec["severity"],
                         "labels": _labels(rec["labels"]), "fired_at": rec["time"], "resolved_at": None,
                         "value": rec.get("value"), "threshold": rec.get("threshold")}
        elif rec["to_state"] in ("resolved", "inactive") and fp in open_:
            interval = open_.pop(fp)
            interval["resolved_at"] = rec["time"]
            out.append(interval)
    out.extend(open_.values())
    return sorted(out, key=lambda i: i["fired_at"])


def group_incidents(intervals: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Alerts of the same service with overlapping firing intervals, merged into incidents."""
    by_service: dict[str, list[dict[str, Any]]] = {}
    for i in intervals:
        by_service.setdefault(str(i["labels"].get("service") or "(no service)"), []).append(i)
    incidents = []
    for service, items in by_service.items():
        current: dict[str, Any] | None = None
        for i in sorted(items, key=lambda x: x["fired_at"]):
            end = i["resolved_at"] or now
            if current is not None and i["fired_at"] <= current["_end"]:
                current["members"].append(i)
                current["_end"] = max(current["_end"], end)
                current["open"] = current["open"] or i["resolved_at"] is None
                continue
            current = {"service": service, "started_at": i["fired_at"], "_end": end, "members": [i],
                       "open": i["resolved_at"] is None}
            incidents.append(current)
    rows = []
    for inc in incidents:
        members = inc["members"]

        def values(label: str, members: list = members) -> str:
            return ", ".join(sorted({str(m["labels"][label]) for m in members if m["labels"].get(label)}))

        ended = None if inc["open"] else inc["_end"]
        rows.append({
            "incident_id": f"{inc['service']}@{inc['started_at'].isoformat(timespec='seconds')}",
            "service": inc["service"],
            "severity": min((m["severity"] for m in members), key=lambda s: SEVERITY_RANK.get(s, 9)),
            "state": "open" if inc["open"] else "resolved", "started_at": inc["started_at"], "ended_at": ended,
            "duration_min": round(((ended or now) - inc["started_at"]).total_seconds() / 60, 1),
            "alerts": len(members), "rules": ", ".join(sorted({m["rule"] for m in members})),
            "fingerprints": ",".join(sorted({m["fingerprint"] for m in members})),
            "routes": values("route"), "models": values("model"), "versions": values("model_version"),
        })
    return sorted(rows, key=lambda r: r["started_at"], reverse=True)


def _history(store: Store, start: datetime, end: datetime, service: str | None) -> list[dict[str, Any]]:
    # Intervals that began before the window but are still open in it: read a day of lead-in.
    label = ("JSONExtractString(ifNull(labels, ''), 'service')" if store.dialect == "clickhouse"
             else "json_extract_string(labels, '$.service')")
    t = store.query(f"""SELECT time, fingerprint, rule, severity, labels, to_state, value, threshold
                        FROM alert_history WHERE time >= $lead AND time < $end
                          AND ($service IS NULL OR {label} = $service)
                        ORDER BY time""", {"lead": start - timedelta(days=1), "end": end, "service": service})
    return t.to_pylist()


def _incidents(store: Store, params: dict[str, Any]) -> pa.Table:
    start, end = params["start"], params["end"]
    worst = SEVERITY_RANK[params["severity"]]
    intervals = [i for i in firing_intervals(_history(store, start, end, params["service"]), end)
                 if SEVERITY_RANK.get(i["severity"], 9) <= worst and (i["resolved_at"] or end) >= start]
    rows = group_incidents(intervals, end)
    if params["at"] is not None:  # the incident containing one moment (an alert message's link)
        at = params["at"]
        rows = [r for r in rows if r["started_at"] <= at <= (r["ended_at"] or end)]
    if params["incident_id"]:
        rows = [r for r in rows if r["incident_id"] == params["incident_id"]]
    rows = rows[: params["limit"]]
    schema = pa.schema([(c, pa.timestamp("us") if c in ("started_at", "ended_at") else pa.float64()
                         if c == "duration_min" else pa.int64() if c == "alerts" else pa.string())
                        for c in INCIDENT_COLUMNS])
    return pa.Table.from_pylist(rows, schema=schema)


# this module's read queries; store.queries.store_queries() collects them
QUERIES: list[NamedQuery] = []
QUERIES.append(NamedQuery(
    "incidents", "Incidents: alerts of one service whose firing intervals overlap, grouped, with duration, "
    "rules, and the routes / models / versions their labels name; newest first.",
    (Param("start", "time", "Window start.", "-7d"), END, SERVICE,
     Param("severity", description="Lowest severity included (P1, P2 or P3).", default="P2",
           choices=("P1", "P2", "P3")),
     Param("at", "time", "Only the incident that contains this moment."),
     Param("incident_id", description="One incident by id (service@ISO start)."), LIMIT),
    run=_incidents, tags=("alerts",)))


def _incident_notifications(store: Store, params: dict[str, Any]) -> pa.Table:
    fingerprints = [f for f in (params["fingerprints"] or "").split(",") if f][:200]
    if not fingerprints:
        raise BadParameter("parameter 'fingerprints' is required")
    # The outbox payload is the Alertmanager message: its alerts carry their fingerprints.
    if store.dialect == "clickhouse":
        sent = ("hasAny(arrayMap(a -> JSONExtractString(a, 'fingerprint'), JSONExtractArrayRaw(ifNull(o.payload, ''), 'alerts')), "
                "$fingerprints)")
    else:
        sent = ("list_has_any(CAST(json_extract_string(o.payload, '$.alerts[*].fingerprint') AS VARCHAR[]), "
                "$fingerprints)")
    return store.query(f"""
        SELECT n.time, n.receiver, n.receiver_type, n.status, n.attempt, n.outcome, n.http_status, n.error
        FROM alert_notifications n JOIN alert_outbox o ON o.id = n.outbox_id
        WHERE n.time >= $start AND n.time < $end AND {sent}
        ORDER BY n.time LIMIT $limit""",
        {"start": params["start"], "end": params["end"], "fingerprints": fingerprints, "limit": params["limit"]})


QUERIES.append(NamedQuery(
    "incident_notifications", "Notifications sent for some alerts (their fingerprints), with the outcome.",
    (START, END, Param("fingerprints", required=True, description="Comma-separated alert fingerprints."), LIMIT),
    run=_incident_notifications, tags=("alerts",)))

QUERIES.append(NamedQuery(
    "exemplars", "Exemplar model calls of a window: the newest failing ones and the slowest successful ones "
    "(`kind`), with their trace ids.",
    (START, END, SERVICE, Param("model"), Param("version"), Param("route"),
     Param("limit", "integer", "Calls of each kind.", "10", maximum=100)),
    sql=f"""SELECT * FROM (
              (SELECT 'failing' AS kind, trace_id, request_id, start_time, service_name, route,
                      {model_sql()} AS model, model_version, duration_ms, http_status,
                      error_type, status_message
               FROM spans WHERE is_llm AND status_code = 'error' AND {span_filter_sql()}
               ORDER BY start_time DESC LIMIT $limit)
              UNION ALL
              (SELECT 'slow', trace_id, request_id, start_time, service_name, route,
                      {model_sql()}, model_version, duration_ms, http_status,
                      error_type, status_message
               FROM spans WHERE is_llm AND status_code <> 'error' AND {span_filter_sql()}
               ORDER BY duration_ms DESC LIMIT $limit))""",
    tags=("alerts",)))
