"""Statistics of the online-experiment readouts: intervals, two-sample tests and sample sizes.

Standard library only (no scipy at run time; tests/experiment compares every figure with scipy's):

- `delong`: an AUC and its variance by DeLong's structural components (DeLong, DeLong and
  Clarke-Pearson 1988), computed from midranks in O(n log n);
- `wilson`: the Wilson score interval of a proportion;
- `mean_interval`: a mean with its Student-t interval;
- `two_proportions`: the pooled two-proportion z-test (equal to Pearson's chi-square on the 2x2 table);
- `welch`: Welch's unequal-variance t-test;
- `two_estimates`: a z-test of two independent estimates with known variances (two AUCs, from two
  variants' disjoint requests);
- `sample_size`: per-group size for a two-sided z-test to detect `effect` with `power` at `alpha`.

Must not import: `pulumi` or its providers, `components`, `mlops_training`, `mlops_serving` (pure logic of
the operator CLI).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

_NORMAL = NormalDist()


def z_quantile(p: float) -> float:
    """The standard normal quantile at `p`."""
    return _NORMAL.inv_cdf(p)


def normal_two_sided(z: float) -> float:
    """Two-sided p-value of a standard normal statistic."""
    return 2.0 * _NORMAL.cdf(-abs(z))


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_two_sided(t: float, df: float) -> float:
    """Two-sided p-value of Student's t with `df` degrees of freedom."""
    if math.isinf(df):
        return normal_two_sided(t)
    return _betainc(df / 2.0, 0.5, df / (df + t * t))


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile at `p` (bisection on the CDF; exact to 1e-12)."""
    if p == 0.5:
        return 0.0
    target = 2.0 * min(p, 1.0 - p)  # the two-sided tail mass of |t|
    low, high = 0.0, 1.0
    while t_two_sided(high, df) > target:
        high *= 2.0
    for _ in range(200):
        mid = (low + high) / 2.0
        low, high = (mid, high) if t_two_sided(mid, df) > target else (low, mid)
        if high - low < 1e-13:
            break
    value = (low + high) / 2.0
    return value if p > 0.5 else -value


def _midranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def _variance(values: Sequence[float]) -> float:
    n = len(values)
    mean = sum(values) / n
    return sum((v - mean) ** 2 for v in values) / (n - 1)


def delong(scores: Sequence[float], labels: Sequence[int]) -> tuple[float, float]:
    """(AUC, its DeLong variance) of `scores` against 0/1 `labels`; ValueError without two of each class."""
    positives = [s for s, y in zip(scores, labels) if y == 1]
    negatives = [s for s, y in zip(scores, labels) if y == 0]
    m, n = len(positives), len(negatives)
    if m < 2 or n < 2:
        raise ValueError(f"AUC needs at least two labelled positives and two negatives; got {m} and {n}")
    overall = _midranks(positives + negatives)
    within_pos, within_neg = _midranks(positives), _midranks(negatives)
    v10 = [(overall[i] - within_pos[i]) / n for i in range(m)]
    v01 = [1.0 - (overall[m + j] - within_neg[j]) / m for j in range(n)]
    auc = sum(v10) / m
    return auc, _variance(v10) / m + _variance(v01) / n


def wilson(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of `successes` out of `n`."""
    if n < 1:
        raise ValueError("a proportion needs at least one observation")
    z = z_quantile(0.5 + confidence / 2.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def mean_interval(values: Sequence[float], *, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the Student-t interval of the mean of `values` (at least two)."""
    n = len(values)
    if n < 2:
        raise ValueError(f"an interval of a mean needs at least two values; got {n}")
    mean = sum(values) / n
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * math.sqrt(_variance(values) / n)
    return mean, mean - half, mean + half


def two_proportions(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """(z, two-sided p) of the pooled two-proportion z-test of k2/n2 against k1/n1."""
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (k2 / n2 - k1 / n1) / se
    return z, normal_two_sided(z)


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """(t, degrees of freedom, two-sided p) of Welch's t-test of mean(b) against mean(a)."""
    va, vb = _variance(a) / len(a), _variance(b) / len(b)
    if va + vb == 0:
        return 0.0, float(len(a) + len(b) - 2), 1.0
    t = (sum(b) / len(b) - sum(a) / len(a)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
    return t, df, t_two_sided(t, df)


def two_estimates(first: float, first_variance: float, second: float, second_variance: float) -> tuple[float, float]:
    """(z, two-sided p) of second - first for two independent estimates with the given variances."""
    se = math.sqrt(first_variance + second_variance)
    if se == 0:
        return 0.0, 1.0
    z = (second - first) / se
    return z, normal_two_sided(z)


def sample_size(*, unit_variance_a: float, unit_variance_b: float, effect: float, alpha: float, power: float) -> int:
    """Observations per group for a two-sided z-test at `alpha` to detect a difference of `effect`
    with `power`, where one observation of each group has the given variance: the smallest n with
    (z_{1-alpha/2} + z_{power})^2 (va + vb) / effect^2 <= n."""
    if effect <= 0:
        raise ValueError(f"effect {effect}: a positive difference is needed")
    z = z_quantile(1 - alpha / 2) + z_quantile(power)
    return max(2, math.ceil(z * z * (unit_variance_a + unit_variance_b) / (effect * effect) - 1e-9))
