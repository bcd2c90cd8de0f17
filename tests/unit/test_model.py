"""ChurnModel: learns known signal, reproducible to the byte, safe to save and load."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from churnkit.core.config import LightGBMParams
from churnkit.core.errors import DataError, ModelError
from churnkit.model.card import BINARY, CARD_FILE, MULTICLASS, TrainingRecord
from churnkit.model.lightgbm import MODEL_FILE, ChurnModel
from churnkit.model.metrics import binary_metrics, multiclass_metrics

PARAMS = LightGBMParams(
    num_boost_round=150,
    learning_rate=0.1,
    num_leaves=15,
    min_child_samples=20,
    early_stopping_rounds=10,
)
KINDS = np.array(["retained", "voluntary", "involuntary"])


def make_problem(n: int, seed: int, *, kinds: int = 3) -> tuple[pl.DataFrame, pl.Series]:
    """Voluntary churn grows with recency and the basic plan, involuntary with failed
    payments; ``noise`` carries nothing."""
    rng = np.random.default_rng(seed)
    recency = rng.exponential(30, n)
    failed = rng.poisson(0.3, n).astype(float)
    plan = rng.choice(["basic", "pro", "team"], n)
    logits = np.column_stack(
        [np.zeros(n), 0.06 * recency - 3 + (plan == "basic"), 1.8 * failed - 3]
    )[:, :kinds]
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    X = pl.DataFrame(
        {"recency": recency, "failed": failed, "noise": rng.normal(size=n), "plan": plan}
    )
    return X, pl.Series("churn_type", KINDS[y])


@pytest.fixture(scope="module")
def train() -> tuple[pl.DataFrame, pl.Series]:
    return make_problem(3000, seed=1)


@pytest.fixture(scope="module")
def valid() -> tuple[pl.DataFrame, pl.Series]:
    return make_problem(1500, seed=2)


@pytest.fixture(scope="module")
def model(train, valid) -> ChurnModel:  # type: ignore[no-untyped-def]
    X, y = train
    return ChurnModel(params=PARAMS, seed=7).fit(
        X, y, valid=valid, feature_descriptions={"recency": "days since the last purchase"}
    )


def test_multiclass_model_learns_known_signal(model, valid):
    X, y = valid
    proba = model.predict_proba(X)

    assert model.classes_ == list(MULTICLASS)
    assert model.feature_types_ == {
        "recency": "numeric",
        "failed": "numeric",
        "noise": "numeric",
        "plan": "categorical",
    }
    assert proba.shape == (X.height, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    scores = multiclass_metrics(y.to_numpy(), proba, model.classes_)
    assert scores["auc"] > 0.75
    assert scores["auc_involuntary_vs_voluntary"] > 0.75
    assert 1 <= model.best_iteration_ < PARAMS.num_boost_round  # early stopping chose
    assert model.best_score_ is not None


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_same_seed_and_threads_give_byte_identical_model_text(train, valid, tmp_path, threads):
    X, y = train
    params = PARAMS.model_copy(update={"num_threads": threads})
    for name in ("a", "b"):
        ChurnModel(params=params, seed=7).fit(X, y, valid=valid).save(tmp_path / name)

    first = (tmp_path / "a" / MODEL_FILE).read_bytes()
    assert first == (tmp_path / "b" / MODEL_FILE).read_bytes()
    card = json.loads((tmp_path / "a" / CARD_FILE).read_text())
    assert card["params"]["num_threads"] == threads


def test_every_core_by_default_and_the_card_says_how_many(model, tmp_path):
    assert PARAMS.num_threads == 0
    model.save(tmp_path / "m")
    card = json.loads((tmp_path / "m" / CARD_FILE).read_text())
    assert card["params"]["num_threads"] == (os.cpu_count() or 1)


def test_save_then_load_predicts_identically_and_keeps_the_card(model, valid, tmp_path):
    X, _ = valid
    record = TrainingRecord(as_of=datetime(2024, 6, 30), horizon=90, metrics={"auc": 0.8})
    saved = model.save(tmp_path / "m", record)
    loaded = ChurnModel.load(tmp_path / "m")

    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.contributions(X[:5]), model.contributions(X[:5]))
    card = json.loads((tmp_path / "m" / CARD_FILE).read_text())
    assert card["classes"] == list(MULTICLASS)
    assert card["as_of"] == "2024-06-30T00:00:00" and card["metrics"] == {"auc": 0.8}
    assert card["model_type"] == "lightgbm"
    assert card["categories"] == {"plan": ["basic", "pro", "team"]}
    recency = next(f for f in card["features"] if f["name"] == "recency")
    assert recency["description"] == "days since the last purchase"
    assert len(recency["profile"]["proportions"]) == len(recency["profile"]["edges"]) + 1
    assert loaded.card_ == saved and loaded.card_.horizon == 90
    assert loaded.best_iteration_ == model.best_iteration_


@pytest.mark.parametrize("call", ["predict_proba", "contributions", "save"])
def test_using_an_unfitted_model_is_a_model_error(call, train, tmp_path):
    X, _ = train
    fresh = ChurnModel(params=PARAMS, seed=7)
    method = getattr(fresh, call)
    with pytest.raises(ModelError, match="not fitted"):
        method(tmp_path) if call == "save" else method(X)


def test_loading_a_missing_model_says_to_train_first(tmp_path):
    with pytest.raises(ModelError) as info:
        ChurnModel.load(tmp_path / "nope")
    assert "nope" in info.value.message
    assert info.value.hint is not None and "churnkit train" in info.value.hint


def test_loading_a_corrupt_or_edited_model_is_a_model_error(model, tmp_path):
    model.save(tmp_path / "m")
    (tmp_path / "m" / MODEL_FILE).write_text("tree\nnot a model\n")
    with pytest.raises(ModelError, match="does not match its model card"):
        ChurnModel.load(tmp_path / "m")

    model.save(tmp_path / "m")
    (tmp_path / "m" / CARD_FILE).write_text("{ half a card")
    with pytest.raises(ModelError, match="unreadable"):
        ChurnModel.load(tmp_path / "m")


@pytest.mark.parametrize(
    ("change", "message"),
    [({"format_version": 99}, "newer churnkit"), ({"churnkit_version": "7.0.0"}, "major")],
)
def test_loading_a_model_from_another_version_is_refused(model, tmp_path, change, message):
    model.save(tmp_path / "m")
    card_path = tmp_path / "m" / CARD_FILE
    card_path.write_text(json.dumps({**json.loads(card_path.read_text()), **change}))

    with pytest.raises(ModelError, match=message):
        ChurnModel.load(tmp_path / "m")


def test_check_compatible_names_the_missing_feature_and_the_extra_one(model, valid):
    X, _ = valid
    scoring = X.drop("failed").with_columns(pl.lit(1).alias("tenure"))

    with pytest.raises(ModelError, match=r"lacks 1 feature.*failed.*tenure"):
        model.check_compatible(scoring.columns)
    with pytest.raises(ModelError, match="failed"):
        model.predict_proba(scoring)
    model.check_compatible([*X.columns, "customer_id"])  # extra columns are fine


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_calibration_round_trips_through_json_and_rows_sum_to_one(method, train, valid, tmp_path):
    X, y = train
    vX, vy = valid
    model = ChurnModel(params=PARAMS, seed=7).fit(X, y, valid=valid)
    raw = model.predict_proba(vX)
    model.calibrate(vX, vy, method=method)
    calibrated = model.predict_proba(vX)
    model.save(tmp_path / "m")
    loaded = ChurnModel.load(tmp_path / "m")

    assert not np.allclose(calibrated, raw)
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    assert ((calibrated >= 0) & (calibrated <= 1)).all()
    np.testing.assert_array_equal(loaded.predict_proba(vX), calibrated)
    np.testing.assert_array_equal(loaded.predict_proba(vX, calibrated=False), raw)
    card = json.loads((tmp_path / "m" / CARD_FILE).read_text())
    assert card["calibration"]["method"] == method
    assert set(card["calibration"]["per_class"]) == set(MULTICLASS)


def test_isotonic_calibration_of_a_binary_model_improves_held_out_brier():
    X, y = make_problem(3000, seed=3, kinds=2)
    vX, vy = make_problem(1500, seed=4, kinds=2)
    model = ChurnModel(params=PARAMS, seed=7).fit(X, y)
    churned = (vy != "retained").to_numpy()
    before = binary_metrics(churned, model.predict_proba(vX)[:, 1], probability=True)

    model.calibrate(vX, vy, method="isotonic")
    after = binary_metrics(churned, model.predict_proba(vX)[:, 1], probability=True)
    assert after["brier"] <= before["brier"]


def test_one_churn_kind_gives_a_binary_model(tmp_path):
    X, y = make_problem(3000, seed=3, kinds=2)  # retained and voluntary only
    model = ChurnModel(params=PARAMS, seed=7).fit(X, y)
    proba = model.predict_proba(X[:50])
    contrib = model.contributions(X[:50])

    assert model.classes_ == list(BINARY) and model.mode == "binary"
    assert proba.shape == (50, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert contrib.shape == (50, 2, X.width + 1)
    np.testing.assert_array_equal(contrib[:, 0], -contrib[:, 1])
    log_odds = np.log(proba[:, 1] / proba[:, 0])
    np.testing.assert_allclose(contrib[:, 1].sum(axis=1), log_odds, rtol=1e-6)
    model.save(tmp_path / "m")
    assert ChurnModel.load(tmp_path / "m").classes_ == list(BINARY)


def test_multiclass_contributions_sum_to_each_class_score(model, valid):
    X, _ = valid
    contrib = model.contributions(X[:40])
    proba = model.predict_proba(X[:40])

    assert contrib.shape == (40, 3, X.width + 1)
    scores = contrib.sum(axis=2)  # softmax inputs: their softmax is the probability
    softmax = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(softmax, proba, rtol=1e-6)


def test_unseen_category_at_predict_is_treated_as_missing(model, valid):
    X, _ = valid
    unseen = X[:20].with_columns(pl.lit("enterprise").alias("plan"))
    missing = X[:20].with_columns(pl.lit(None, dtype=pl.String).alias("plan"))

    proba = model.predict_proba(unseen)
    assert np.isfinite(proba).all()
    np.testing.assert_array_equal(proba, model.predict_proba(missing))


def test_categorical_column_may_arrive_as_polars_categorical(model, valid):
    X, _ = valid
    as_categorical = X.with_columns(pl.col("plan").cast(pl.Categorical))

    np.testing.assert_array_equal(model.predict_proba(as_categorical), model.predict_proba(X))


def test_labels_without_churners_are_a_data_error(train):
    X, _ = train
    with pytest.raises(DataError, match="no churners"):
        ChurnModel(params=PARAMS, seed=7).fit(X, pl.Series(["retained"] * X.height))


def test_feature_of_unsupported_type_is_a_data_error(train):
    X, y = train
    dated = X.with_columns(pl.lit(None, dtype=pl.Date).alias("signup"))
    with pytest.raises(DataError, match="signup"):
        ChurnModel(params=PARAMS, seed=7).fit(dated, y)


def test_a_card_of_another_model_type_is_refused(model, tmp_path: Path):
    model.save(tmp_path / "m")
    card_path = tmp_path / "m" / CARD_FILE
    card_path.write_text(json.dumps({**json.loads(card_path.read_text()), "model_type": "bgnbd"}))

    with pytest.raises(ModelError, match="'bgnbd' model"):
        ChurnModel.load(tmp_path / "m")
