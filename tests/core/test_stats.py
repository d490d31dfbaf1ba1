"""The statistics of repeated runs and paired tests, on inputs whose answers are known."""

import math

import pytest

from dlbench.stats import mcnemar, paired_bootstrap, summarize


def test_t_interval_of_known_values():
    # mean 3, sample std sqrt(2.5); t(0.975, 4) = 2.7764451 (tables): half = 2.776 * 1.5811 / sqrt(5)
    s = summarize([1, 2, 3, 4, 5])
    assert s.mean == 3 and s.n == 5
    assert s.std == pytest.approx(math.sqrt(2.5))
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)
    assert (s.ci95_low, s.ci95_high) == pytest.approx((3 - half, 3 + half))
    assert s.metrics("acc") == pytest.approx({"acc_mean": 3.0, "acc_std": math.sqrt(2.5),
                                              "acc_n": 5.0, "acc_ci95_low": 3 - half,
                                              "acc_ci95_high": 3 + half})
    assert s.text(2) == f"3.00 ± {half:.2f} (n=5)"


def test_two_values_use_the_wide_t_of_one_degree_of_freedom():
    s = summarize([0.0, 1.0])  # std sqrt(0.5); t(0.975, 1) = 12.7062047
    assert (s.ci95_high - s.mean) == pytest.approx(12.706204736 * math.sqrt(0.5) / math.sqrt(2))


def test_one_value_has_no_spread_and_logs_none():
    s = summarize([0.7])
    assert s.mean == 0.7 and s.n == 1 and math.isnan(s.std) and math.isnan(s.ci95_low)
    assert s.metrics("acc") == {"acc_mean": 0.7, "acc_n": 1.0}
    assert s.text() == "0.700 (n=1)"


def test_identical_values_have_a_zero_width_interval():
    s = summarize([0.5, 0.5, 0.5])
    assert s.std == 0 and s.ci95_low == s.ci95_high == 0.5


def test_nothing_to_summarize_is_an_error():
    with pytest.raises(ValueError):
        summarize([])


def test_mcnemar_exact_on_a_constructed_case():
    # 100 examples: both right on 60, both wrong on 20, only b right on 15, only a right on 5.
    a = [1] * 60 + [0] * 20 + [0] * 15 + [1] * 5
    b = [1] * 60 + [0] * 20 + [1] * 15 + [0] * 5
    test = mcnemar(a, b)
    assert (test.n, test.a_only, test.b_only) == (100, 5, 15)
    assert test.difference == pytest.approx(0.10)
    # Two-sided exact: 2 * P(X <= 5), X ~ Binomial(20, 1/2) = 2 * 21700 / 2**20
    assert test.p_value == pytest.approx(2 * 21700 / 2**20)
    assert test.p_value == pytest.approx(0.041389, abs=1e-6)


def test_mcnemar_is_symmetric_and_one_without_disagreement():
    a = [1, 0, 1, 1, 0, 0, 1]
    b = [0, 1, 1, 1, 0, 1, 1]
    ab, ba = mcnemar(a, b), mcnemar(b, a)
    assert ab.p_value == ba.p_value and ab.difference == -ba.difference
    assert mcnemar(a, a).p_value == 1.0 and mcnemar(a, a).difference == 0
    with pytest.raises(ValueError):
        mcnemar([1, 0], [1])


def test_paired_bootstrap_brackets_a_shift_and_is_reproducible():
    import numpy as np

    rng = np.random.default_rng(1)
    a = rng.normal(size=400)
    b = a + 0.5 + rng.normal(scale=0.1, size=400)  # b is a, shifted by 0.5 per example
    diff, low, high = paired_bootstrap(a, b, seed=3)
    assert diff == pytest.approx(np.mean(b - a))
    assert low < 0.5 < high and high - low < 0.05
    assert paired_bootstrap(a, b, seed=3) == (diff, low, high)
    same = paired_bootstrap(a, a)
    assert same == (0.0, 0.0, 0.0)
