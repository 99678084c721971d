"""Streaming distribution statistics: bin counts, PSI, exact two-sample KS, moments. Pure NumPy.

Every accumulator takes its values in chunks (`update`) and keeps only fixed-size state, so a
capture of any length is summarised in memory that depends on the baseline, never on the rows.

Binning (docs/contracts.md §4, the same rule as `mlops_training.baseline.bin_index`): the bin of
`v` is the number of interior edges `<= v`, i.e. bins are `[e_i, e_{i+1})`, the last one closed,
values below the first edge fall into the first bin and values above the last edge into the last.

KS is exact, not estimated from a reservoir: the reference side is the baseline's sample (at most
10,000 values), and the two-sample statistic `sup_x |F_ref(x) - F_cur(x)|` only needs the current
empirical CDF just below and at each distinct sample value (proof in `KsCounts`). Those are two
integer vectors of the sample's length, summed over chunks, and the statistic is the exact rational
`max |a*n - b*m| / (m*n)` rounded once. It equals `scipy.stats.ks_2samp(sample, all_values).statistic`
bit for bit in scipy's exact mode (both sides at most 10,000 values, where scipy also rounds the
rational once) and to within an ulp in its asymptotic mode (where scipy subtracts two rounded
fractions), whatever the row count.

PSI: `sum((a_i - e_i) * ln(a_i / e_i))` over the bins, `e` the baseline's share of each bin and `a`
the current one. An empty bin would make it infinite, so in each distribution separately a zero
share is replaced by `1e-4`, or by a millionth of the smallest non-zero share when that share is
itself `<= 1e-4` (an empty bin must weigh less than any observed one). This is the rule of
evidently's PSI (`get_binned_data(..., feel_zeroes=True)`), so the numbers are comparable.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts).
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

PSI_EMPTY_SHARE = 1e-4
"""The share an empty bin gets in the PSI sum (see the module docstring for the exception)."""


def bin_index(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The bin of each value under the contract's rule (the training baseline's rule)."""
    return np.searchsorted(np.asarray(edges, dtype=np.float64)[1:-1], values, side="right")


def fill_empty(shares: np.ndarray) -> np.ndarray:
    """A copy of `shares` with zeros replaced by the PSI's empty-bin share."""
    out = np.array(shares, dtype=np.float64)
    nonzero = out[out != 0]
    if nonzero.size == 0:
        raise ValueError("a distribution with no observations has no PSI")
    smallest = nonzero.min()
    out[out == 0] = smallest / 1e6 if smallest <= PSI_EMPTY_SHARE else PSI_EMPTY_SHARE
    return out


def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """Population stability index of `actual` shares against `expected` shares (same bins)."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape or e.ndim != 1:
        raise ValueError(f"expected {e.shape} and actual {a.shape} shares must be 1-D of the same length")
    e = fill_empty(e)
    a = fill_empty(a)
    return float(np.sum((e - a) * np.log(e / a)))


def ks_statistic(
    *, ref_le: np.ndarray, ref_lt: np.ndarray, m: int, cur_le: np.ndarray, cur_lt: np.ndarray, n: int
) -> float:
    """Two-sample KS statistic from counts at the reference's distinct values (see `KsCounts`).

    `|a/m - b/n| = |a*n - b*m| / (m*n)`: integer arithmetic, then one correctly rounded division,
    so the result is the exact rational statistic rounded once.
    """
    at = np.abs(ref_le.astype(np.int64) * n - cur_le * m)
    below = np.abs(ref_lt.astype(np.int64) * n - cur_lt * m)
    numerator = max(int(at.max(initial=0)), int(below.max(initial=0)))
    return numerator / (m * n)  # Python int division: correctly rounded


class KsCounts:
    """Exact two-sample KS of a stream of values against a fixed reference sample.

    With `v_1 < ... < v_k` the distinct reference values, both empirical CDFs are right-continuous
    steps that only change at data points, and `F_ref` is constant on `[v_j, v_{j+1})`. On that
    interval the data points are `v_j` itself and the current values in it, where `F_cur` grows
    from `#{cur <= v_j}/n` to at most `#{cur < v_{j+1}}/n`; below `v_1`, `F_ref = 0` and `F_cur`
    reaches `#{cur < v_1}/n`. Hence

        D = max_j max(|F_ref(v_j) - #{cur <= v_j}/n|, |F_ref(v_{j-1}) - #{cur < v_j}/n|)

    with `F_ref(v_0) = 0`: the statistic needs `#{cur <= v_j}` and `#{cur < v_j}` for each `j`,
    which add up over chunks. A sorted chunk gives both with two `searchsorted` calls.
    """

    def __init__(self, sample: Iterable[float]) -> None:
        ref = np.sort(np.asarray(list(sample) if not isinstance(sample, np.ndarray) else sample, dtype=np.float64))
        ref = ref[~np.isnan(ref)]
        self.m = int(ref.size)
        self.values = np.unique(ref)
        self.ref_le = np.searchsorted(ref, self.values, side="right")
        self.ref_lt = np.searchsorted(ref, self.values, side="left")
        self.cur_le = np.zeros(self.values.size, dtype=np.int64)
        self.cur_lt = np.zeros(self.values.size, dtype=np.int64)
        self.n = 0

    def update_sorted(self, ordered: np.ndarray) -> None:
        """Add a chunk of present (non-NaN) values, already sorted ascending."""
        if ordered.size == 0:
            return
        self.cur_le += np.searchsorted(ordered, self.values, side="right")
        self.cur_lt += np.searchsorted(ordered, self.values, side="left")
        self.n += int(ordered.size)

    def update(self, values: np.ndarray) -> None:
        """Add a chunk of values in any order (NaNs are ignored)."""
        values = np.asarray(values, dtype=np.float64)
        self.update_sorted(np.sort(values[~np.isnan(values)]))

    def statistic(self) -> float | None:
        """`ks_2samp(sample, everything added).statistic`, or None when either side is empty."""
        if self.m == 0 or self.n == 0:
            return None
        return ks_statistic(ref_le=self.ref_le, ref_lt=self.ref_lt, m=self.m,
                            cur_le=self.cur_le, cur_lt=self.cur_lt, n=self.n)


@dataclass
class Moments:
    """Count, sum, min, max, mean and variance, merged chunk by chunk (Chan et al.)."""

    count: int = 0
    total: float = 0.0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf

    def update_sorted(self, ordered: np.ndarray) -> None:
        n_b = int(ordered.size)
        if n_b == 0:
            return
        total_b = float(ordered.sum())
        mean_b = total_b / n_b
        m2_b = float(np.square(ordered - mean_b).sum())
        n_a = self.count
        n = n_a + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * n_a * n_b / n
        self.count = n
        self.total += total_b
        self.minimum = min(self.minimum, float(ordered[0]))
        self.maximum = max(self.maximum, float(ordered[-1]))

    @property
    def std(self) -> float | None:
        """Population standard deviation (as the baseline's `std`), None without values."""
        return math.sqrt(self.m2 / self.count) if self.count else None


class NumericAccumulator:
    """Everything the drift report needs about one numeric column, in fixed memory."""

    def __init__(self, *, edges: Sequence[float], sample: Sequence[float]) -> None:
        self.edges = np.asarray(edges, dtype=np.float64)
        self._interior = self.edges[1:-1]
        self.n_bins = max(len(self.edges) - 1, 0)
        self.counts = np.zeros(self.n_bins, dtype=np.int64)
        self.nulls = 0
        self.invalid = 0
        self.ks = KsCounts(sample)
        self.moments = Moments()

    @property
    def present(self) -> int:
        return self.moments.count

    @property
    def rows(self) -> int:
        return self.present + self.nulls

    def update(self, values: np.ndarray, *, invalid: int = 0) -> None:
        """Add a chunk; NaN is a null. `invalid` counts values that were not numbers (already NaN:
        they count as nulls as well); an infinity, which the server never accepts, is one of them."""
        values = np.asarray(values, dtype=np.float64)
        infinite = np.isinf(values)
        if infinite.any():
            invalid += int(np.count_nonzero(infinite))
            values = np.where(infinite, np.nan, values)
        # NaN sorts last, so the present values are the sorted array's head.
        ordered = np.sort(values)
        n_present = int(values.size - np.count_nonzero(np.isnan(values)))
        self.nulls += int(values.size) - n_present
        self.invalid += invalid
        ordered = ordered[:n_present]
        if n_present == 0:
            return
        if self.n_bins:
            # Bin j holds #{v < interior[j]} - #{v < interior[j-1]} values (interior edges <= v count).
            below = np.searchsorted(ordered, self._interior, side="left")
            self.counts += np.diff(below, prepend=0, append=n_present)
        self.ks.update_sorted(ordered)
        self.moments.update_sorted(ordered)

    def shares(self) -> np.ndarray | None:
        """Current share of present values in each baseline bin, None without values or bins."""
        if self.present == 0 or self.n_bins == 0:
            return None
        return self.counts / self.present


class CategoricalAccumulator:
    """Counts of a String column against the baseline's categories; unseen ones share one PSI bin.

    The bins are fixed by the baseline, as for numeric features: one per training category plus
    one for every category training never saw. Names of unseen categories are kept for the report
    up to `max_new_categories`; beyond that only their total is counted, so a high-cardinality
    column cannot grow the state.
    """

    def __init__(self, *, categories: Iterable[str], max_new_categories: int = 1000) -> None:
        self.categories = tuple(categories)
        self._known = {c: i for i, c in enumerate(self.categories)}
        self.counts = np.zeros(len(self.categories), dtype=np.int64)
        self.new: Counter[str] = Counter()
        self.new_untracked = 0
        self.new_total = 0
        self.nulls = 0
        self.invalid = 0
        self.present = 0
        self.max_new_categories = max_new_categories

    @property
    def rows(self) -> int:
        return self.present + self.nulls + self.invalid

    def update(self, values: Iterable[object]) -> None:
        """Add a chunk of values: strings, None for null; anything else counts as invalid."""
        counts = Counter(values)
        self.nulls += counts.pop(None, 0)
        for value, count in counts.items():
            if type(value) is not str:
                self.invalid += count
                continue
            self.present += count
            index = self._known.get(value)
            if index is not None:
                self.counts[index] += count
                continue
            self.new_total += count
            if value in self.new or len(self.new) < self.max_new_categories:
                self.new[value] += count
            else:
                self.new_untracked += count

    def shares(self) -> np.ndarray | None:
        """Shares of the baseline categories, then the unseen bin; None without values."""
        if self.present == 0:
            return None
        return np.append(self.counts, self.new_total) / self.present

    def missing(self, baseline: Mapping[str, float]) -> list[str]:
        """Baseline categories with a non-zero training share that did not occur now."""
        return [c for i, c in enumerate(self.categories) if self.counts[i] == 0 and baseline.get(c, 0) > 0]


def to_float(values: Sequence[object]) -> tuple[np.ndarray, int]:
    """Column values -> float64 with NaN for nulls, and how many values were not numbers.

    The common case (numbers and None, as the server accepts them) is one NumPy call (which also
    reads numeric strings, and JSON booleans as 0/1: the server rejects booleans, so only foreign
    captures could hold them); anything else (empty CSV fields, stray text) goes value by value.
    """
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        return values.astype(np.float64, copy=False), 0
    try:
        out = np.array(values, dtype=np.float64)
        if out.ndim == 1:
            return out, 0
    except (TypeError, ValueError):
        pass
    out = np.empty(len(values), dtype=np.float64)
    invalid = 0
    for i, value in enumerate(values):
        kind = type(value)
        if value is None:
            out[i] = np.nan
        elif kind is float or kind is int:
            out[i] = value
        elif kind is str:
            text = value.strip()
            if not text:
                out[i] = np.nan
                continue
            try:
                out[i] = float(text)
            except ValueError:
                out[i] = np.nan
                invalid += 1
        else:
            out[i] = np.nan
            invalid += 1
    return out, invalid
