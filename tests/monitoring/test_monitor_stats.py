"""The streaming statistics against their definitions: scipy's KS, the baseline's binning rule,
the PSI formula with its empty-bin rule, NumPy's moments."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_serving.monitor.stats import (
    CategoricalAccumulator,
    KsCounts,
    NumericAccumulator,
    fill_empty,
    psi,
    to_float,
)
from mlops_training.baseline import bin_index as training_bin_index

scipy_stats = pytest.importorskip("scipy.stats")

values = st.lists(st.integers(-6, 6), min_size=1, max_size=60)


@pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful")
@settings(max_examples=200, deadline=None)
@given(reference=values, current=values, cuts=st.lists(st.integers(0, 60), max_size=4),
       halves=st.booleans())
def test_streaming_ks_equals_scipy_ks_2samp_bit_for_bit_whatever_the_chunking(reference, current, cuts, halves):
    # Samples this small put scipy in its exact mode, where it rounds the rational statistic once, as we do.
    # Small integers make ties within and across the samples common, the case that needs care.
    ref = np.array(reference, dtype=float) / (2.0 if halves else 1.0)
    cur = np.array(current, dtype=float)
    ks = KsCounts(ref)
    for chunk in np.split(cur, sorted(c for c in cuts if c <= len(cur))):
        ks.update(chunk)
    assert ks.statistic() == scipy_stats.ks_2samp(ref, cur).statistic


def test_streaming_ks_ignores_nan_and_is_none_without_values():
    ks = KsCounts([1.0, 2.0, 3.0])
    assert ks.statistic() is None
    ks.update(np.array([np.nan, 2.5, np.nan, 0.5]))
    assert ks.statistic() == scipy_stats.ks_2samp([1.0, 2.0, 3.0], [2.5, 0.5]).statistic
    assert KsCounts([]).statistic() is None


def test_continuous_ks_on_a_large_stream_equals_scipy():
    rng = np.random.default_rng(7)
    sample = rng.normal(size=10_000)
    current = rng.normal(0.05, 1.1, size=200_003)
    ks = KsCounts(sample)
    for chunk in np.array_split(current, 7):
        ks.update(chunk)
    # Above 10,000 values scipy is in its asymptotic mode: two rounded fractions subtracted.
    assert ks.statistic() == pytest.approx(scipy_stats.ks_2samp(sample, current).statistic, rel=0, abs=1e-15)


def test_bin_counts_follow_the_baselines_rule_below_above_and_on_edges():
    edges = [0.0, 1.0, 2.0, 2.0, 3.0, 5.0]  # a repeated interior edge: an always-empty bin
    acc = NumericAccumulator(edges=edges, sample=[1.0])
    data = np.array([-4.0, 0.0, 0.5, 1.0, 2.0, 2.0, 2.5, 3.0, 4.99, 5.0, 9.0, np.nan])
    for chunk in np.array_split(data, 3):
        acc.update(chunk)
    expected = np.bincount(training_bin_index(np.array(edges), data[~np.isnan(data)]), minlength=5)
    assert acc.counts.tolist() == expected.tolist() == [3, 1, 0, 3, 4]
    assert (acc.present, acc.nulls) == (11, 1)


def test_infinities_and_non_numbers_count_as_invalid_nulls_and_stay_out_of_the_statistics():
    acc = NumericAccumulator(edges=[0.0, 1.0, 2.0], sample=[0.5, 1.5])
    numbers, invalid = to_float(["0.5", "abc", None, "inf", 1.5])
    acc.update(numbers, invalid=invalid)
    assert (acc.present, acc.nulls, acc.invalid) == (2, 3, 2)
    assert acc.counts.tolist() == [1, 1] and acc.moments.maximum == 1.5
    assert acc.ks.statistic() == 0.0


def test_psi_is_the_symmetric_log_ratio_sum():
    e = [0.2, 0.3, 0.5]
    a = [0.25, 0.25, 0.5]
    assert psi(e, a) == pytest.approx(sum((x - y) * math.log(x / y) for x, y in zip(e, a)), abs=1e-15)
    assert psi(e, e) == 0.0


def test_empty_bins_get_a_ten_thousandth_or_a_millionth_of_the_smallest_share():
    assert fill_empty(np.array([0.0, 0.5, 0.5])).tolist() == [1e-4, 0.5, 0.5]
    # When a real share is itself tiny, an empty bin must still weigh less.
    assert fill_empty(np.array([0.0, 5e-5, 1 - 5e-5]))[0] == pytest.approx(5e-11)
    with pytest.raises(ValueError):
        fill_empty(np.zeros(3))


def test_moments_merged_over_chunks_equal_numpy():
    rng = np.random.default_rng(3)
    data = rng.lognormal(4.0, 1.0, size=10_001)
    acc = NumericAccumulator(edges=[0.0, 1.0], sample=[])
    for chunk in np.array_split(data, 13):
        acc.update(chunk)
    m = acc.moments
    assert m.mean == pytest.approx(data.mean(), rel=1e-12)
    assert m.std == pytest.approx(data.std(), rel=1e-12)
    assert (m.minimum, m.maximum, m.count) == (data.min(), data.max(), data.size)


def test_unseen_categories_share_one_bin_and_their_names_are_capped():
    acc = CategoricalAccumulator(categories=["de", "fr"], max_new_categories=2)
    acc.update(["de", "de", "fr", None, "x", "y", "z", "z", 7])
    assert acc.counts.tolist() == [2, 1]
    assert (acc.new_total, dict(acc.new), acc.new_untracked) == (4, {"x": 1, "y": 1}, 2)
    assert (acc.nulls, acc.invalid, acc.present) == (1, 1, 7)
    assert acc.shares().tolist() == [2 / 7, 1 / 7, 4 / 7]
    assert acc.missing({"de": 0.5, "fr": 0.5}) == []


def test_column_values_become_floats_with_nan_for_null_and_count_what_is_not_a_number():
    assert to_float([1, 2.5, None])[1] == 0
    numbers, invalid = to_float(["1.5", "", " 2 ", "abc", None, True])
    assert numbers[[0, 2]].tolist() == [1.5, 2.0]
    assert np.isnan(numbers[[1, 3, 4, 5]]).all()
    assert invalid == 2
