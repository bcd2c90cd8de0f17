"""Bounded training rows: a stable class-stratified customer sample, weighted back."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from churnkit.core.config import LightGBMParams
from churnkit.model.lightgbm import ChurnModel
from churnkit.model.sampling import bounded_sample, quotas

PARAMS = LightGBMParams(num_boost_round=80, learning_rate=0.1, num_leaves=15)


def snapshot_rows(n: int, seed: int) -> pl.DataFrame:
    """Customers whose churn (about 8%, involuntary rare) grows with recency."""
    rng = np.random.default_rng(seed)
    recency = rng.exponential(30, n)
    p = 1 / (1 + np.exp(-(0.05 * recency - 4)))
    churned = rng.random(n) < p
    kind = np.where(churned, np.where(rng.random(n) < 0.1, "involuntary", "voluntary"), "retained")
    return pl.DataFrame(
        {
            "customer_id": [f"C{seed}-{i:06d}" for i in range(n)],
            "recency": recency,
            "noise": rng.normal(size=n),
            "churn_type": kind,
        }
    )


def test_quotas_keep_small_classes_whole_and_share_the_rest():
    got = quotas({"retained": 9000, "voluntary": 800, "involuntary": 50}, 2000)
    assert got == {"involuntary": 50, "voluntary": 800, "retained": 1150}
    assert quotas({"a": 10, "b": 10}, 100) == {"a": 10, "b": 10}


def test_a_frame_within_the_bound_is_used_whole():
    frame = snapshot_rows(500, 1)
    for bound in (None, 500):
        sample = bounded_sample(frame, bound, seed=42)
        assert sample.frame is frame and sample.weights is None


def test_the_sample_is_bounded_keeps_rare_classes_and_weighs_back_the_class_mix():
    frame = snapshot_rows(40_000, 1)
    sample = bounded_sample(frame, 8_000, seed=42)

    assert sample.frame.height == pytest.approx(8_000, rel=0.05)
    rare = frame.filter(pl.col("churn_type") == "involuntary").height
    assert sample.frame.filter(pl.col("churn_type") == "involuntary").height == rare
    weighted = (
        sample.frame.with_columns(w=pl.Series(sample.weights))
        .group_by("churn_type")
        .agg(pl.col("w").sum())
    )
    original = dict(frame["churn_type"].value_counts().iter_rows())
    for kind, total in weighted.iter_rows():
        assert total == pytest.approx(original[kind], rel=0.05)


def test_the_same_customers_are_kept_whatever_the_row_order():
    frame = snapshot_rows(20_000, 2)
    kept = set(bounded_sample(frame, 5_000, seed=42).frame["customer_id"])
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=3)
    assert set(bounded_sample(shuffled, 5_000, seed=42).frame["customer_id"]) == kept
    assert set(bounded_sample(frame, 5_000, seed=7).frame["customer_id"]) != kept


def test_weights_keep_probabilities_calibrated():
    """Trained on a sample where churners are over-represented, the weighted model
    predicts the population's churn rate; the same sample unweighted overstates it."""
    train, valid = snapshot_rows(60_000, 3), snapshot_rows(20_000, 4)
    sample = bounded_sample(train, 12_000, seed=42)
    features = ["recency", "noise"]
    observed = float((valid["churn_type"] != "retained").mean())

    def mean_churn(weights: np.ndarray | None) -> float:
        model = ChurnModel(params=PARAMS, seed=1).fit(
            sample.frame.select(features), sample.frame["churn_type"], weight=weights
        )
        return float((1 - model.predict_proba(valid.select(features))[:, 0]).mean())

    assert mean_churn(sample.weights) == pytest.approx(observed, abs=0.01)
    assert mean_churn(None) > observed + 0.05
