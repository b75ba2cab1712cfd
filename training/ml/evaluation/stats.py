"""Confidence intervals for rates measured on a few hundred prompts."""

import math


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of k successes in n trials (95% for the default z): (low, high) in [0, 1].

    Unlike the normal approximation it stays inside [0, 1] and is not zero-width at k = 0 or k = n, which is
    where safety rates live (0 harmful replies in 50 still allows several percent). n = 0 says nothing: (0, 1).
    """
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # Exact ends at k = 0 and k = n (the formula gives them up to rounding).
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high
