"""metrics: hand-computed small cases for lift, profit, PSI and the baselines."""

from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl
import pytest

from churnkit.model.metrics import (
    binary_metrics,
    expected_max_profit,
    failed_payment_baseline,
    feature_profile,
    involuntary_share,
    multiclass_metrics,
    profit_curve,
    psi,
    psi_table,
    recency_baseline,
    single_feature_auc,
)

MULTI = ["retained", "voluntary", "involuntary"]


def test_lift_and_capture_of_the_top_decile_by_hand():
    # 20 customers, 4 churners; the top 2 by score hold one of them.
    y = np.zeros(20, dtype=bool)
    y[[0, 5, 6, 7]] = True
    score = np.linspace(1.0, 0.0, 20)
    score[0], score[1] = 0.99, 1.0  # rank 1: retained, rank 2: churner

    m = binary_metrics(y, score)
    assert m["lift_top_decile"] == pytest.approx((1 / 2) / (4 / 20))  # 2.5
    assert m["capture_top_decile"] == pytest.approx(1 / 4)
    assert m["positive_rate"] == pytest.approx(0.2)


def test_perfect_ranking_and_probability_scores_by_hand():
    m = binary_metrics(np.array([True, False]), np.array([0.8, 0.4]), probability=True)

    assert m["auc"] == 1.0 and m["pr_auc"] == 1.0
    assert m["brier"] == pytest.approx((0.2**2 + 0.4**2) / 2)
    assert m["log_loss"] == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)


def test_single_class_labels_give_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = binary_metrics(np.zeros(10, dtype=bool), np.linspace(0, 1, 10), probability=True)

    assert math.isnan(m["auc"]) and math.isnan(m["pr_auc"])
    assert math.isnan(m["lift_top_decile"]) and math.isnan(m["capture_top_decile"])
    assert m["brier"] == pytest.approx(np.mean(np.linspace(0, 1, 10) ** 2))


def test_multiclass_metrics_for_a_perfect_model():
    y = np.array(["retained", "voluntary", "involuntary", "voluntary", "retained"])
    proba = np.array(
        [[0.8, 0.1, 0.1], [0.1, 0.7, 0.2], [0.1, 0.2, 0.7], [0.2, 0.6, 0.2], [0.9, 0.05, 0.05]]
    )
    m = multiclass_metrics(y, proba, MULTI)

    assert m["auc"] == 1.0
    assert m["auc_retained"] == m["auc_voluntary"] == m["auc_involuntary"] == 1.0
    assert m["auc_involuntary_vs_voluntary"] == 1.0
    expected_loss = -np.mean(np.log([0.8, 0.7, 0.7, 0.6, 0.9]))
    assert m["log_loss_multiclass"] == pytest.approx(expected_loss)


def test_multiclass_brier_by_hand():
    m = multiclass_metrics(["retained"], np.array([[0.5, 0.3, 0.2]]), MULTI)
    assert m["brier_multiclass"] == pytest.approx(0.5**2 + 0.3**2 + 0.2**2)


def test_binary_model_metrics_fold_churn_kinds_into_churned():
    y = ["retained", "voluntary", "involuntary", "retained"]
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])
    m = multiclass_metrics(y, proba, ["retained", "churned"])

    assert m["auc"] == 1.0 and m["auc_churned"] == 1.0
    assert "auc_involuntary_vs_voluntary" not in m


def test_involuntary_share_of_two_zero_probabilities_is_even():
    np.testing.assert_allclose(involuntary_share([0.3, 0.0], [0.1, 0.0]), [0.75, 0.5])


def test_expected_max_profit_on_five_customers_by_hand():
    # value 100, 50% saved, contact costs 10; ranked churners at positions 1 and 3:
    # k=1: 50-10=40, k=2: 50-20=30, k=3: 100-30=70, k=4: 60, k=5: 50.
    y = np.array([1, 0, 1, 0, 0], dtype=bool)
    score = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    result = expected_max_profit(y, score, value=100.0, contact_cost=10.0, success_rate=0.5)

    assert result == {
        "expected_profit": 70.0,
        "best_k": 3.0,
        "best_share": 0.6,
        "profit_top_decile": 40.0,
        "profit_all": 50.0,
    }


def test_profit_curve_uses_each_customers_value_in_score_order():
    curve = profit_curve(
        np.array([True, True, False]),
        np.array([0.2, 0.9, 0.5]),
        value=np.array([10.0, 100.0, 1000.0]),
        contact_cost=1.0,
        success_rate=1.0,
    )
    np.testing.assert_allclose(curve, [0.0, 99.0, 98.0, 107.0])


def test_contacting_nobody_is_the_best_when_contacts_cost_more_than_they_save():
    y = np.array([True, False, False])
    result = expected_max_profit(y, [0.9, 0.5, 0.1], value=10.0, contact_cost=50, success_rate=1)
    assert result["expected_profit"] == 0.0 and result["best_share"] == 0.0


def test_psi_is_zero_for_the_training_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    X = pl.DataFrame({"spend": rng.normal(0, 1, 5000), "plan": rng.choice(["a", "b"], 5000)})
    profile = feature_profile(X)
    shifted = pl.DataFrame(
        {"spend": rng.normal(1.5, 1, 5000), "plan": rng.choice(["a", "b"], 5000, p=[0.1, 0.9])}
    )

    assert psi(profile["spend"], X.get_column("spend")) == 0.0
    assert psi(profile["spend"], rng.normal(0, 1, 5000)) < 0.05
    assert psi(profile["spend"], shifted.get_column("spend")) > 0.25
    table = psi_table(profile, shifted)
    assert table.get_column("feature").to_list() == ["spend", "plan"]
    assert (table.get_column("psi") > 0.25).all()


def test_unseen_categories_and_missing_values_count_as_drift():
    profile = feature_profile(pl.DataFrame({"plan": ["a", "b"] * 50}))
    assert psi(profile["plan"], pl.Series(["a", "b"] * 50)) == 0.0
    assert psi(profile["plan"], pl.Series(["a", "b", "c", "c"] * 25)) > 0.25
    assert psi(profile["plan"], pl.Series(["a", "b", None, None] * 25)) > 0.25


def test_psi_table_reports_absent_features_as_null_and_empty_data_as_nan():
    profile = feature_profile(pl.DataFrame({"x": [1.0, 2.0, 3.0], "y": [1, 2, 3]}))
    table = psi_table(profile, pl.DataFrame({"x": [1.0, 2.0]}))
    assert table.get_column("psi").to_list()[1] is None

    empty = psi_table(profile, pl.DataFrame({"x": []}, schema={"x": pl.Float64}))
    assert math.isnan(empty.get_column("psi")[0])


def test_feature_profile_of_small_columns_by_hand():
    X = pl.DataFrame(
        {
            "visits": [0, 0, 0, 0, 0, 1, 1, 2, 5, None],
            "ratio": [0.1, float("nan"), 0.2, 0.2, 0.3, 0.3, 0.4, 0.5, 0.6, 0.7],
            "plan": ["a", "a", "a", "b", "b", "c", None, "a", "b", "a"],
        }
    )
    profile = feature_profile(X)

    visits = profile["visits"]
    assert visits["type"] == "numeric" and visits["missing"] == pytest.approx(0.1)
    assert visits["edges"] == [0.0, 1.0, 2.0]  # distinct deciles of the observed values
    np.testing.assert_allclose(visits["proportions"], [0.5, 0.2, 0.1, 0.1])  # last: (2, inf)
    assert profile["ratio"]["missing"] == pytest.approx(0.1)  # NaN is missing
    plan = profile["plan"]
    assert plan["type"] == "categorical"
    assert plan["categories"] == ["a", "b", "c"]
    np.testing.assert_allclose(plan["proportions"], [0.5, 0.3, 0.1])
    assert plan["missing"] == pytest.approx(0.1) and plan["other"] == 0.0


def test_recency_baseline_ranks_never_bought_first():
    score = recency_baseline(np.array([5.0, np.nan, 40.0]))
    assert np.argsort(-score).tolist() == [1, 2, 0]
    y = np.array([False, True, True])
    assert binary_metrics(y, score)["auc"] == 1.0


def test_failed_payment_baseline_flags_any_failure():
    np.testing.assert_array_equal(failed_payment_baseline([0, 2, np.nan, 1]), [0, 1, 0, 1])


def test_single_feature_auc_flags_a_leaking_feature():
    rng = np.random.default_rng(1)
    y = rng.random(400) < 0.3
    X = pl.DataFrame(
        {
            "leak": y.astype(float),
            "inverse_leak": (~y).astype(int),
            "noise": rng.normal(size=400),
            "with_nulls": pl.Series(np.where(y, 1.0, np.nan)).fill_nan(None),
            "plan": ["a"] * 400,
        }
    )
    aucs = single_feature_auc(X, y)

    assert set(aucs) == {"leak", "inverse_leak", "noise", "with_nulls"}
    assert aucs["leak"] == aucs["inverse_leak"] == aucs["with_nulls"] == 1.0
    assert 0.5 <= aucs["noise"] < 0.6
