"""The campaign statistics: Newcombe's interval against published values, p-values,
the success-rate interval, control sizing, and coverage on simulated campaigns."""

from __future__ import annotations

import math

import numpy as np
import pytest

from churnkit.retention.measure import (
    Group,
    compare,
    control_sizing,
    newcombe_interval,
    success_rate_interval,
    two_proportion_p_value,
    wilson_interval,
)

# Newcombe (1998), "Interval estimation for the difference between independent
# proportions: comparison of eleven methods", Statistics in Medicine 17:873-890,
# Table II, method 10 (the hybrid score interval): x1/n1 - x2/n2 -> (low, high).
NEWCOMBE_TABLE_II = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize(("counts", "expected"), NEWCOMBE_TABLE_II)
def test_newcombe_interval_matches_the_published_examples(counts, expected):
    x1, n1, x2, n2 = counts
    difference, low, high = newcombe_interval(x1, n1, x2, n2)
    assert difference == pytest.approx(x1 / n1 - x2 / n2)
    assert (round(low, 4), round(high, 4)) == expected


def test_wilson_interval_of_a_published_example():
    # Newcombe (1998, single proportion) example: 81/263 -> 0.2553 to 0.3662.
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


def test_p_value_uses_fisher_for_small_counts_and_z_otherwise():
    # 1/10 vs 6/10: Fisher's exact two-sided p = 0.0573.
    assert two_proportion_p_value(1, 10, 6, 10) == pytest.approx(0.05728, abs=1e-4)
    # Large counts: the pooled z-test; 100/1000 vs 150/1000 -> z = 3.38, p = 0.00072.
    assert two_proportion_p_value(100, 1000, 150, 1000) == pytest.approx(0.000724, rel=0.01)
    assert two_proportion_p_value(0, 50, 0, 50) == 1.0


def test_success_rate_is_the_share_of_would_be_churners_kept():
    observed, low, high = success_rate_interval(20, 200, 40, 200)
    assert observed == pytest.approx(0.5)
    assert low < 0.5 < high
    assert math.isnan(success_rate_interval(5, 100, 0, 50)[0])  # no control churner


def test_control_sizing_says_when_the_interval_is_too_wide_and_what_would_do():
    _, low, high = newcombe_interval(4, 20, 30, 200)
    sizing = control_sizing(low, high, churn_rate=34 / 220, customers=220)
    assert sizing.too_few
    # 220 customers cannot reach ±5 points at a 15% churn rate: the plan must grow.
    assert sizing.needed_share is None and sizing.needed_customers > 220
    _, low, high = newcombe_interval(30, 200, 250, 1800)
    sizing = control_sizing(low, high, churn_rate=0.14, customers=2000)
    assert sizing.too_few is False
    wide = control_sizing(-0.11, 0.11, churn_rate=0.14, customers=4000)
    assert wide.too_few and wide.needed_share is not None
    n_c = wide.needed_share * 4000
    half = 1.96 * math.sqrt(0.14 * 0.86 * (1 / n_c + 1 / (4000 - n_c)))
    assert half <= 0.0502


def _campaigns(seeds: int, n_t: int, n_c: int, p_t: float, p_c: float) -> list[tuple]:
    rng = np.random.default_rng(2024)
    out = []
    for _ in range(seeds):
        out.append((int(rng.binomial(n_c, p_c)), n_c, int(rng.binomial(n_t, p_t)), n_t))
    return out


def test_with_no_effect_the_interval_covers_zero_about_95_percent_of_the_time():
    trials = _campaigns(2000, n_t=300, n_c=120, p_t=0.2, p_c=0.2)
    covered = [low <= 0 <= high for _, low, high in (newcombe_interval(*t) for t in trials)]
    assert 0.93 <= float(np.mean(covered)) <= 0.975
    # and the p-value is below 5% about as often as the interval misses 0
    rejected = np.mean([two_proportion_p_value(*t) < 0.05 for t in trials])
    assert 0.025 <= rejected <= 0.07


def test_a_planted_effect_is_recovered_within_its_interval():
    trials = _campaigns(500, n_t=600, n_c=250, p_t=0.10, p_c=0.20)  # uplift 0.10
    results = [newcombe_interval(*t) for t in trials]
    assert np.mean([low <= 0.10 <= high for _, low, high in results]) >= 0.93
    assert np.mean([low > 0 for _, low, _ in results]) >= 0.95  # power to see it
    assert np.mean([d for d, _, _ in results]) == pytest.approx(0.10, abs=0.01)


def test_compare_counts_revenue_and_return_on_cost():
    treated = Group(customers=100, voluntary=8, involuntary=2, revenue=10_000.0, revenue_sq=1.1e6)
    control = Group(customers=50, voluntary=8, involuntary=2, revenue=4_000.0, revenue_sq=3.4e5)
    c = compare(treated, control, cost=500.0)
    assert c.treated_rate == pytest.approx(0.10) and c.control_rate == pytest.approx(0.20)
    assert c.uplift == pytest.approx(0.10)
    # (100 - 80) per customer × 100 treated
    assert c.incremental_revenue == pytest.approx(2000.0)
    assert c.net_return == pytest.approx(1500.0)
    assert c.return_per_unit == pytest.approx(4.0)
    assert c.incremental_revenue_low < 2000.0 < c.incremental_revenue_high
