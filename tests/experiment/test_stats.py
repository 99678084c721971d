"""The readouts' statistics against scipy's (and scikit-learn's AUC) on the same data."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy import stats as sp
from sklearn.metrics import roc_auc_score

from mlops.experiment import stats


def _scores(seed: int, n: int, shift: float) -> tuple[list[float], list[int]]:
    rng = random.Random(seed)
    labels = [int(rng.random() < 0.3) for _ in range(n)]
    scores = [round(1 / (1 + math.exp(-(rng.gauss(0, 1) + shift * y))), 2) for y in labels]  # rounded: ties
    return scores, labels


def test_t_distribution_matches_scipy():
    for df in (1.0, 3.5, 30.0, 400.0):
        for t in (0.1, 1.0, 2.5, 6.0):
            assert stats.t_two_sided(t, df) == pytest.approx(2 * sp.t.sf(t, df), rel=1e-9, abs=1e-14)
        assert stats.t_quantile(0.975, df) == pytest.approx(sp.t.ppf(0.975, df), rel=1e-9)


def test_delong_auc_is_mann_whitney_and_its_variance_matches_the_bootstrap():
    scores, labels = _scores(1, 600, 1.2)
    auc, variance = stats.delong(scores, labels)
    assert auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    u = sp.mannwhitneyu(pos, neg).statistic
    assert auc == pytest.approx(u / (len(pos) * len(neg)), abs=1e-12)
    data = (np.array(scores), np.array(labels))
    boot = sp.bootstrap(data, lambda s, y: roc_auc_score(y, s), paired=True, vectorized=False, n_resamples=800,
                        method="percentile", random_state=np.random.default_rng(0))
    assert math.sqrt(variance) == pytest.approx(boot.standard_error, rel=0.15)


def test_delong_refuses_a_single_class():
    with pytest.raises(ValueError, match="two labelled positives and two negatives; got 0 and 3"):
        stats.delong([0.1, 0.2, 0.3], [0, 0, 0])


def test_wilson_interval_matches_scipys_binomtest():
    low, high = stats.wilson(37, 120)
    ci = sp.binomtest(37, 120).proportion_ci(confidence_level=0.95, method="wilson")
    assert (low, high) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_mean_interval_matches_scipys_t_interval():
    rng = random.Random(3)
    values = [rng.gauss(2, 1.5) for _ in range(50)]
    mean, low, high = stats.mean_interval(values)
    expected = sp.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=sp.sem(values))
    assert (low, high) == pytest.approx(expected, rel=1e-9)
    assert mean == pytest.approx(np.mean(values))


def test_two_proportion_z_test_matches_chi_square_on_the_table():
    z, p = stats.two_proportions(410, 500, 380, 500)
    chi2, p_chi, _, _ = sp.chi2_contingency([[410, 90], [380, 120]], correction=False)
    assert p == pytest.approx(p_chi, rel=1e-9)
    assert z * z == pytest.approx(chi2, rel=1e-9)
    assert z < 0  # the second proportion is lower


def test_welch_matches_scipys_ttest_ind():
    rng = random.Random(5)
    a = [abs(rng.gauss(0, 1)) for _ in range(80)]
    b = [abs(rng.gauss(0, 1.4)) for _ in range(120)]
    t, df, p = stats.welch(a, b)
    expected = sp.ttest_ind(b, a, equal_var=False)
    assert (t, p) == pytest.approx((expected.statistic, expected.pvalue), rel=1e-9)
    assert df == pytest.approx(expected.df, rel=1e-9)


def test_sample_size_is_the_smallest_n_with_the_wanted_power():
    va, vb, effect = 0.16, 0.21, 0.05
    n = stats.sample_size(unit_variance_a=va, unit_variance_b=vb, effect=effect, alpha=0.05, power=0.8)

    def power(k: int) -> float:  # a two-sided z-test's power at k per group (the far tail included)
        shift = effect / math.sqrt((va + vb) / k)
        crit = sp.norm.ppf(0.975)
        return sp.norm.sf(crit - shift) + sp.norm.cdf(-crit - shift)

    assert power(n) >= 0.8 > power(n - 1) - 1e-3
    assert power(n - 1) < 0.8 + 1e-3
