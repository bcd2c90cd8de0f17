"""The label-free performance estimate: right when the probabilities are calibrated."""

from __future__ import annotations

import numpy as np
import pytest

from churnkit.model.metrics import auc
from churnkit.quality.estimate import (
    calibration_error,
    estimate_performance,
    expected_auc,
    expected_lift,
)

# Estimated vs realised AUC on calibrated probabilities of 5,000 customers.
TOLERANCE = 0.03


@pytest.mark.parametrize(("a", "b", "seed"), [(1, 6, 0), (0.5, 3, 1), (2, 2, 2), (1, 12, 3)])
def test_the_estimate_meets_the_realised_auc_when_outcomes_follow_the_probabilities(a, b, seed):
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, 5000)
    churned = rng.random(5000) < p  # outcomes drawn from the model's own probabilities
    estimate = estimate_performance(p)
    assert abs(estimate.auc - auc(churned, p)) < TOLERANCE
    assert estimate.churn_rate == pytest.approx(churned.mean(), abs=0.02)
    assert estimate.brier == pytest.approx(np.mean((p - churned) ** 2), abs=0.01)


def test_uninformative_and_certain_probabilities():
    assert expected_auc(np.full(100, 0.2)) == pytest.approx(0.5)
    assert expected_auc([0.0, 0.0, 1.0, 1.0]) == pytest.approx(1.0)
    assert np.isnan(expected_auc([0.0, 0.0])) and np.isnan(expected_auc([]))
    assert expected_lift(np.r_[np.full(10, 0.5), np.full(90, 0.0)]) == pytest.approx(10.0)


def test_the_statement_compares_with_validation_and_names_the_assumption():
    estimate = estimate_performance(
        [0.1, 0.2, 0.7, 0.9],
        validation_auc=0.81,
        validation_churn_rate=0.3,
        calibration_error=calibration_error([(0.1, 0.12, 50), (0.5, 0.44, 50)]),
    )
    assert estimate.calibration_error == pytest.approx(0.04)
    assert estimate.churn_rate_shift == pytest.approx(0.475 - 0.3)
    line = estimate.statement
    assert "(validation 0.810)" in line and "expected churn rate 47.5% (validation 30.0%)" in line
    assert "assumes the model is still calibrated" in line and "4.0%" in line
    payload = estimate.to_json()
    assert payload["validation_auc"] == 0.81 and payload["assumes"]
