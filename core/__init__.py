"""What every stage shares, and nothing else: attribute names (`semconv`), the redactor (`redact`,
`redact_rules`), model prices (`pricing`), the clock (`clock`), grains (`grains`), time and duration
parsing (`durations`) and `Retry-After` (`retry_after`).

`core` imports no other aiwatch package, so the shim, the collectors and the store can all use it
without loading each other (tests/aiwatch/test_layering.py holds this).
"""
