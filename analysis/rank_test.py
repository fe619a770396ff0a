"""The rank test's p-value, shared by the route_shift analyzer (which hours were shifted), the alert
rules (`evidence.test: rank`) and the pages that show a rule's windows: a sum of n super-uniform tail
percentiles is improbably small when P(U1 + ... + Un <= sum) is."""
from __future__ import annotations

import functools
import math


@functools.lru_cache(maxsize=1 << 16)   # a quiet route's windows repeat from one evaluation to the next
def irwin_hall_lower(s: float, n: int) -> float:
    """P(U1 + ... + Un <= s) for independent uniforms: exact (s^n / n! up to 1, else scipy's
    irwinhall for n <= 60), and never above the Chernoff bound exp(-6 (n/2 - s)^2 / n), which holds
    because a uniform is sub-Gaussian with variance proxy 1/12 (sinh(x)/x <= exp(x^2/6))."""
    from scipy.stats import irwinhall  # lazily: scipy.stats takes seconds to import

    if n <= 0 or s >= n / 2:
        return 1.0
    if s <= 0:
        return 0.0
    if s <= 1:
        return math.exp(n * math.log(s) - math.lgamma(n + 1))
    bound = math.exp(-6 * (n / 2 - s) ** 2 / n)
    # irwinhall.cdf(s, n), not irwinhall(n).cdf(s): freezing a distribution formats its docstring,
    # 4x the cost of the cdf itself
    return min(bound, float(irwinhall.cdf(s, n))) if n <= 60 else bound
