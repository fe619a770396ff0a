"""Values read in their unit: the one formatter of alert tables, the backtest and notifications."""
from __future__ import annotations

import math

import pytest

from alerts.rules import load_config
from analysis.metrics_catalog import CATALOG
from core.units import format_value


@pytest.mark.parametrize("value,unit,text", [
    (0.15, "ratio", "15%"), (0.0123, "ratio", "1.23%"), (0.005, "ratio", "0.5%"), (0.2286, "ratio", "22.86%"),
    (1.0, "ratio", "100%"), (31234.5, "ms", "31,234 ms"), (4.5, "ms", "4.5 ms"), (0.0123, "USD", "$0.0123"),
    (1234.5, "USD", "$1,234.50"), (14.4, "x budget", "14.4x budget"), (3.2e-7, "p-value", "3.2e-07"),
    (1.0, "flag", "yes"), (0.0, "flag", "no"), (12.0, "count", "12"), (2.5, "count", "2.5"),
    (1500.0, "tokens", "1,500 tokens"), (36.0, "hours", "36 h"), (0.734, "score", "0.734"),
    (0.5, "1/s", "0.5 1/s"), (None, "ratio", "-"), (math.nan, "ms", "-"), (math.inf, "ratio", "inf"),
])
def test_a_value_reads_in_its_unit(value, unit, text):
    assert format_value(value, unit) == text


def test_every_shipped_rule_has_a_unit_the_formatter_knows():
    """Rule values are shares for evidence rules and the metric's catalog unit otherwise: each one
    the catalog names, so no alert shows a bare 0.2286."""
    units = {unit for unit, _ in CATALOG.values()}
    config = load_config()
    assert len(config.rules) > 10
    for rule in config.rules:
        c = rule.condition
        assert c.unit in units, rule.name
        if c.evidence is not None:
            assert c.unit == "ratio" and c.op == ("<=" if c.evidence.test == "rank" else ">"), rule.name
