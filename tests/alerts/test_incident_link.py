"""An alert message links to its incident: the link's service and moment find the incident that
holds the alert (store/incidents.py), from the history the engine wrote."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from harness import MIN, T0, make_config, series, write_metrics

import store.incidents  # noqa: F401 - registers the queries
from store.queries import store_queries

REGISTRY = store_queries()


def test_alert_message_links_to_its_incident(store, script_for):
    write_metrics(store, series("error_rate", T0, 60, lambda i: 0.2 if i >= 10 else 0.01))
    s = script_for(make_config())
    s.quiet_until(T0 + 11 * MIN)   # the first bad bucket (10 min) is visible from 11
    s.run_until(T0 + 20 * MIN)
    [(_, message)] = s.notified("firing")
    alert = message["alerts"][0]
    link = urlparse(alert["annotations"]["dashboard"])
    assert link.path == "/incident"
    q = {k: v[0] for k, v in parse_qs(link.query).items()}
    assert q["service"] == "checkout"
    [incident] = REGISTRY["incidents"].execute(store, {"start": (T0).isoformat(), "end": (T0 + 20 * MIN).isoformat(),
                                                       "service": q["service"], "at": q["at"]}).to_pylist()
    assert alert["fingerprint"] in incident["fingerprints"].split(",")
