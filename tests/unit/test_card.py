"""The model card: one typed reader and writer, strict about what it reads."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from churnkit import __version__
from churnkit.core.config import LightGBMParams
from churnkit.core.errors import ExitCode, ModelError
from churnkit.features import FeatureLayout
from churnkit.model import store
from churnkit.model.card import (
    CARD_FILE,
    CalibrationBin,
    DecileBin,
    FeatureNote,
    ModelCard,
    TrainingRecord,
)
from churnkit.model.lightgbm import ChurnModel

PARAMS = LightGBMParams(num_boost_round=20, num_leaves=7, min_child_samples=10)
RECORD = TrainingRecord(
    as_of=datetime(2026, 5, 31, 23, 59, 59, 999999),
    horizon=90,
    grace_period=14,
    cutoffs=(datetime(2026, 1, 17, 23, 59, 59, 999999), datetime(2026, 2, 14, 23, 59, 59)),
    validation_cutoff=datetime(2026, 2, 14, 23, 59, 59),
    config_hash="abc123",
    data_fingerprint="1000-00000000deadbeef",
    layout=FeatureLayout(
        kinds=("purchase", "payment_failed"), columns=("plan",), plan_ranks=(("basic", 1),)
    ),
    feature_importance={"recency": 0.7, "plan": 0.3},
    feature_specs={
        "recency": FeatureNote(
            kind="numeric",
            description="days since the last purchase",
            sentence="no purchase for {recency:.0f} days",
            risk_when="high",
        )
    },
    snapshots={"2026-02-14": {"customers": 400, "retained": 300, "churned": 100}},
    metrics={"auc": 0.81, "lift_top_decile": None},
    baseline={"auc": 0.7},
    validation_best_iteration=12,
    calibration_curve=(CalibrationBin(predicted=0.1, observed=0.12, customers=40),),
    feature_deciles={"recency": (DecileBin(low=0.0, high=9.0, churn_rate=0.05, customers=40),)},
    warnings=("the validation snapshot has only 12 churned churners: its metrics are noisy",),
    business_model="non_contractual",
    business_evidence="non-contractual: no cancels, no failed payments and no regular billing",
    population="all",
    activity=("purchase",),
    validation="customer_hash_split",
    min_history_days=48,
    customer_base={
        "r": 0.24,
        "alpha": 4.4,
        "a": 0.79,
        "b": 2.4,
        "customers": 400,
        "log_likelihood": -1000.5,
        "converged": True,
        "horizon_days": 90,
    },
    customer_base_baseline={"auc": 0.74, "brier": 0.2},
    beats_baselines=False,
    calibration_error=0.031,
    weak=True,
    weak_reasons=("the training data holds 40 customers (35 retained, 5 churned)",),
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small binary model saved with a full training record."""
    rng = np.random.default_rng(3)
    recency = rng.exponential(30, 400)
    X = pl.DataFrame({"recency": recency, "plan": rng.choice(["basic", "pro"], 400)})
    y = pl.Series(np.where(rng.random(400) < recency / 120, "voluntary", "retained"))
    directory = tmp_path_factory.mktemp("card") / "models" / "m"
    ChurnModel(params=PARAMS, seed=7).fit(X, y).save(directory, RECORD)
    return directory


def rewrite(directory: Path, change: Callable[[dict[str, Any]], object]) -> Path:
    """Apply ``change`` to the saved card's JSON object in a copy of the model."""
    data = json.loads((directory / CARD_FILE).read_text())
    change(data)
    copy = directory.parent / f"{directory.name}-edited"
    copy.mkdir(exist_ok=True)
    (copy / CARD_FILE).write_text(json.dumps(data))
    return copy


def test_a_card_round_trips_through_its_file(saved: Path, tmp_path: Path) -> None:
    card = ModelCard.read(saved)

    assert card.with_training(RECORD) == card  # every training field came back as written
    assert (card.name, card.model_type, card.mode, card.classes) == (
        "m",
        "lightgbm",
        "binary",
        ("retained", "churned"),
    )
    assert card.feature_names == ["recency", "plan"]
    assert card.categories == {"plan": ("basic", "pro")}
    assert card.descriptions["recency"] == "days since the last purchase"
    assert card.location == saved
    # Writing what was read gives the same file, byte for byte.
    card.write(tmp_path)
    assert (tmp_path / CARD_FILE).read_text() == (saved / CARD_FILE).read_text()


def test_a_card_without_population_fields_reads_as_a_strong_model(saved: Path) -> None:
    keys = ("business_model", "population", "beats_baselines", "weak", "weak_reasons")
    older = rewrite(saved, lambda card: [card.pop(k) for k in keys])
    card = ModelCard.read(older)
    assert (card.weak, card.weak_reasons, card.beats_baselines, card.population) == (
        False,
        (),
        None,
        None,
    )


def test_a_card_written_before_model_families_reads_as_lightgbm(saved: Path) -> None:
    older = rewrite(saved, lambda card: card.pop("model_type"))
    (older / "model.txt").write_bytes((saved / "model.txt").read_bytes())

    assert ModelCard.read(older).model_type == "lightgbm"
    model = store.load_model(older.parent, older.name)
    assert isinstance(model, ChurnModel) and model.card_.horizon == 90


def _drop(key: str) -> Callable[[dict[str, Any]], object]:
    return lambda card: card.pop(key)


def _set(key: str, value: object) -> Callable[[dict[str, Any]], object]:
    return lambda card: card.__setitem__(key, value)


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (_drop("features"), ["`features` is missing"]),
        (_set("classes", ["stay", "go"]), ["`classes` must be"]),
        (_set("mode", "multiclass"), ["`mode` 'multiclass' does not fit"]),
        (_set("horizon", "ninety"), ["`horizon`", "'ninety'"]),
        (_set("as_of", "yesterday"), ["`as_of`", "yesterday"]),
        (_set("layout", {"columns": []}), ["`layout`", "'kinds' is missing"]),
        (
            _set("features", [{"name": "x", "type": "date", "description": "d"}]),
            ["`features`", "neither numeric nor categorical"],
        ),
        (_set("format_version", "one"), ["no format version"]),
        (_set("format_version", 2), ["newer churnkit", "card format 2", "reads format 1"]),
        (_set("churnkit_version", "9.0.0"), ["churnkit 9.0.0", "major version differs"]),
    ],
    ids=[
        "no-features",
        "unknown-classes",
        "mode-against-classes",
        "horizon-not-a-number",
        "as-of-not-a-date",
        "layout-incomplete",
        "feature-of-unknown-type",
        "format-not-a-number",
        "newer-format",
        "other-major-version",
    ],
)
def test_a_corrupt_or_foreign_card_is_refused_naming_its_file(
    saved: Path, change: Callable[[dict[str, Any]], object], fragments: list[str]
) -> None:
    edited = rewrite(saved, change)

    with pytest.raises(ModelError) as caught:
        ModelCard.read(edited)
    message = caught.value.message
    assert str(edited / CARD_FILE) in message
    for fragment in fragments:
        assert fragment in message
    assert caught.value.exit_code == ExitCode.MODEL
    assert "churnkit" in (caught.value.hint or "")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("{ half a card", "is unreadable"), ("[1, 2]", "is not a JSON object")],
)
def test_a_card_that_is_not_a_json_object_is_refused(
    tmp_path: Path, text: str, fragment: str
) -> None:
    (tmp_path / CARD_FILE).write_text(text)
    with pytest.raises(ModelError, match=fragment):
        ModelCard.read(tmp_path)


def test_a_missing_card_says_to_train_first(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no model card at") as caught:
        ModelCard.read(tmp_path / "nothing")
    assert "churnkit train" in (caught.value.hint or "")


def test_a_card_of_this_major_version_from_a_later_minor_one_is_read(saved: Path) -> None:
    major = __version__.split(".")[0]
    edited = rewrite(
        saved, lambda card: card.update(churnkit_version=f"{major}.99.0", added_later=[1, 2])
    )
    assert ModelCard.read(edited).churnkit_version == f"{major}.99.0"
