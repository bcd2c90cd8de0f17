"""The scoring path is the estimator protocol's only client: a second model family plugs
in by registering its model_type, and the one rule for a model newer than the as-of
holds for it too."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from pathlib import Path
from typing import Self

import numpy as np
import polars as pl
import pytest

from churnkit.core.config import Settings, load_settings
from churnkit.core.errors import ExitCode, ModelError
from churnkit.core.io import scan_events, scan_relations
from churnkit.core.schema import CUSTOMER_ID
from churnkit.core.timeline import resolve_as_of
from churnkit.core.workspace import Workspace
from churnkit.features import feature_layout
from churnkit.model import store
from churnkit.model.base import Estimator
from churnkit.model.card import BINARY, CardFeature, Mode, ModelCard, TrainingRecord
from churnkit.predict.pipeline import predict
from churnkit.predict.score import score_population

TRAINED_AS_OF = datetime(2026, 8, 31, 23, 59, 59, 999999)


class RecencyModel:
    """A whole model family in a few lines: the churn probability grows with the days
    since the last purchase. It knows nothing of LightGBM, and scoring knows nothing
    of it but the protocol."""

    MODEL_TYPE = "recency"
    FILE = "recency.json"
    classes_: list[str]
    feature_names_: list[str]
    card_: ModelCard

    def __init__(self, *, scale: float = 120.0) -> None:
        self.scale = scale
        self.classes_ = list(BINARY)
        self.feature_names_ = ["recency_days"]

    @property
    def mode(self) -> Mode:
        return "binary"

    def fit(
        self,
        X: pl.DataFrame,
        y: pl.Series,
        *,
        valid: tuple[pl.DataFrame, pl.Series] | None = None,
    ) -> Self:
        return self

    def predict_proba(self, X: pl.DataFrame) -> np.ndarray:
        days = X["recency_days"].cast(pl.Float64).fill_null(self.scale).to_numpy()
        p = np.clip(days / self.scale, 0.01, 0.99)
        return np.column_stack([1.0 - p, p])

    def contributions(self, X: pl.DataFrame) -> np.ndarray:
        return np.zeros((X.height, 2, len(self.feature_names_) + 1))

    def save(self, directory: Path, training: TrainingRecord | None = None) -> ModelCard:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / self.FILE).write_text(json.dumps({"scale": self.scale}))
        card = ModelCard(
            model_type=self.MODEL_TYPE,
            mode="binary",
            classes=BINARY,
            features=(CardFeature(name="recency_days", type="numeric", description="days since"),),
            class_counts={"retained": 80, "churned": 20},
        )
        self.card_ = card.with_training(training or TrainingRecord()).write(directory)
        return self.card_

    @classmethod
    def load(cls, directory: Path, card: ModelCard) -> Self:
        model = cls(**json.loads((directory / cls.FILE).read_text()))
        model.card_ = card
        return model


_: type[Estimator] = RecencyModel  # mypy checks the protocol here


@pytest.fixture
def settings() -> Settings:
    return load_settings(None, env={}, overrides={"predict": {"drivers_top_n": 20}})


@pytest.fixture
def recency_model(sample_workspace, tmp_path, settings, monkeypatch):  # type: ignore[no-untyped-def]
    """The family registered and one of its models saved as `recent` in a workspace."""
    monkeypatch.setitem(store.FAMILIES, RecencyModel.MODEL_TYPE, RecencyModel)
    events = scan_events(sample_workspace)
    record = TrainingRecord(
        as_of=TRAINED_AS_OF,
        horizon=90,
        grace_period=14,
        layout=feature_layout(events, TRAINED_AS_OF, settings.features),
    )
    workspace = Workspace(tmp_path / "ws")
    store.save_model(RecencyModel(scale=90.0), workspace, "recent", record)
    return workspace


def test_a_registered_family_is_loaded_and_scored_by_the_shared_path(
    sample_workspace, recency_model, settings
):
    events = scan_events(sample_workspace)
    model = store.load_model(recency_model, "recent")
    assert isinstance(model, RecencyModel) and model.scale == 90.0

    as_of = resolve_as_of(events, None)
    scored = score_population(
        events, model, as_of=as_of, settings=settings, relations=scan_relations(sample_workspace)
    )
    assert scored.name == "recent" and scored.horizon == 90
    assert scored.frame[CUSTOMER_ID].is_unique().all() and scored.frame.height > 100
    expected = np.clip(scored.frame["recency_days"].cast(pl.Float64).to_numpy() / 90.0, 0.01, 0.99)
    np.testing.assert_allclose(scored.p_churn, expected)


def test_predict_runs_end_to_end_on_another_family(
    sample_workspace, recency_model, settings, tmp_path
):
    with contextlib.chdir(tmp_path):
        result = predict(
            scan_events(sample_workspace),
            settings=settings,
            model_dir=recency_model.model_dir("recent"),
            relations=scan_relations(sample_workspace),
        )
    frame = result.frame
    assert result.mode == "binary" and result.model_name == "recent"
    assert set(frame["churn_type"].unique().to_list()) <= {"churned", "retained"}
    # A family without contributions gives the explained customers no drivers, not wrong ones.
    explained = frame.filter(pl.col("driver_features").is_not_null())
    assert explained.height >= 20
    assert explained["driver_features"].list.len().max() == 0


def test_the_one_rule_for_a_model_newer_than_the_as_of_holds_for_any_family(
    sample_workspace, recency_model, settings
):
    model = store.load_model(recency_model, "recent")
    events = scan_events(sample_workspace)
    with pytest.raises(ModelError) as caught:
        score_population(events, model, as_of=datetime(2026, 6, 30, 23, 59), settings=settings)
    assert caught.value.exit_code == ExitCode.MODEL
    assert caught.value.message == (
        "model 'recent' learned from events up to 2026-08-31, after as-of 2026-06-30: "
        "its scores would know what happened next"
    )
    # Scoring at the model's own as-of is fine.
    scored = score_population(
        events,
        model,
        as_of=TRAINED_AS_OF,
        settings=settings,
        relations=scan_relations(sample_workspace),
    )
    assert scored.as_of == TRAINED_AS_OF


def test_a_card_without_its_training_record_cannot_score(sample_workspace, settings, tmp_path):
    model = RecencyModel()
    model.save(tmp_path / "bare")
    with pytest.raises(ModelError, match="does not record the as-of") as caught:
        score_population(
            scan_events(sample_workspace), model, as_of=TRAINED_AS_OF, settings=settings
        )
    assert "churnkit train" in (caught.value.hint or "")
