"""Several instances: a deliverer whose instance no longer holds the lease sends nothing; the rows
stay pending and go out once it (or the next holder) may send again."""
from __future__ import annotations

import random

from harness import MIN, T0
from test_delivery import incident, routed_config, rx  # noqa: F401 - rx: the receivers fixture

from alerts.delivery import Deliverer, DeliveryRetry
from store import alerting


def test_no_send_without_the_lease(store, script_for, clock, rx):  # noqa: F811
    incident(store, 5, 12)
    config = routed_config(rx)
    script_for(config).run_until(T0 + 10 * MIN)
    assert alerting.pending_outbox(store)
    holding = [False]
    deliverer = Deliverer(store, config, clock, rng=random.Random(7), policy=DeliveryRetry(),
                          fence=lambda: holding[0])
    assert deliverer.run_once() == [] and rx.requests == []
    holding[0] = True
    assert {o.outcome for o in deliverer.run_once()} == {"delivered"}
    assert alerting.pending_outbox(store) == [] and rx.pages() == 1
