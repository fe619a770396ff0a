"""Redaction throughput: microseconds per ~1 KB message, clean and with findings.

The collector runs the Redactor on every message at ingest; this is the figure to watch.
Run: .venv/bin/python bench/shim_redaction.py
"""

from __future__ import annotations

import statistics
import time

from shim.redact import Redactor


def per_call_us(fn, text: str, n: int = 2000) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn(text)
        samples.append((time.perf_counter_ns() - t0) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.99 * len(samples))]


def main() -> None:
    r = Redactor()
    clean = ("The quick brown fox jumps over the lazy dog, version 1.2.3 on 2024-01-15. " * 14)[:1024]
    dirty = clean[:900] + " mail jane@example.com card 4111 1111 1111 1111 key sk-proj-" + "a" * 40
    for name, text in (("clean 1KB", clean), ("dirty 1KB", dirty)):
        p50, p99 = per_call_us(r.redact, text)
        print(f"{name:10s} p50={p50:7.1f} us  p99={p99:7.1f} us  ({1e6 / p50 / 1024:.1f} MB/s at p50)")


if __name__ == "__main__":
    main()
