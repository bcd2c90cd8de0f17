"""``ChurnModel``: a LightGBM churn classifier that saves as text and JSON, never pickle.

It implements the estimator protocol (``churnkit.model.base``). Multiclass or binary
as ``encoding.choose_classes`` decides. Training is bit-for-bit reproducible for a
given seed and thread count: LightGBM runs in deterministic mode with a forced
(row-wise) histogram layout, on every core by default (``train.lightgbm.num_threads``
0); a fixed thread count gives the same trees on every machine.

On disk a model is a directory holding ``model.txt`` (LightGBM's own text format) and
``card.json`` (``churnkit.model.card``). The card records the hash of ``model.txt`` so
a half-written or edited model is refused on load.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import lightgbm as lgb
import numpy as np
import polars as pl
from pydantic import ValidationError

from churnkit import __version__
from churnkit.core.config import LightGBMParams
from churnkit.core.errors import DataError, ModelError
from churnkit.core.workspace import write_text_atomic
from churnkit.model.calibration import CalibrationMethod, Calibrator
from churnkit.model.card import (
    CARD_FILE,
    RETRAIN_HINT,
    TRAIN_FIRST_HINT,
    CardFeature,
    FeatureType,
    Mode,
    ModelCard,
    TrainingRecord,
    mode_of,
)
from churnkit.model.encoding import (
    FloatArray,
    category_list,
    choose_classes,
    encode_labels,
    feature_matrix,
    feature_types,
    label_values,
    require_features,
)
from churnkit.model.metrics import feature_profile

log = logging.getLogger(__name__)

MODEL_TYPE = "lightgbm"
MODEL_FILE = "model.txt"
__all__ = ["MODEL_FILE", "MODEL_TYPE", "ChurnModel"]


class ChurnModel:
    """LightGBM churn classifier over a per-customer feature frame.

    Parameters
    ----------
    params:
        LightGBM hyper-parameters (``train.lightgbm`` in the settings). To refit on all
        data with the rounds early stopping chose, pass
        ``params.model_copy(update={"num_boost_round": model.best_iteration_})``.
    seed:
        Seeds every random choice of LightGBM (bagging, feature fraction).
    classes:
        ``MULTICLASS`` or ``BINARY`` to force a mode; by default ``fit`` picks multiclass
        when the labels hold both voluntary and involuntary churners.

    Attributes
    ----------
    booster_: the LightGBM booster, cut at ``best_iteration_``.
    classes_: class names in probability-column order (retained first).
    feature_names_: the feature columns, in the model's order.
    feature_types_: ``"numeric"`` or ``"categorical"`` per feature.
    feature_descriptions_: a plain-words description per feature.
    categories_: the known categories of each categorical feature (code = position).
    profiles_: training distribution of each feature (see ``metrics.feature_profile``).
    best_iteration_: boosting rounds kept (chosen by early stopping when validated).
    best_score_: validation log loss at ``best_iteration_`` (None without validation).
    calibrator_: the probability calibration, or None.
    card_: the model card, once saved or loaded.
    """

    booster_: lgb.Booster
    classes_: list[str]
    feature_names_: list[str]
    feature_types_: dict[str, FeatureType]
    feature_descriptions_: dict[str, str]
    categories_: dict[str, list[str]]
    profiles_: dict[str, dict[str, Any]]
    best_iteration_: int
    best_score_: float | None
    n_train_: int
    class_counts_: dict[str, int]
    calibrator_: Calibrator | None
    card_: ModelCard

    def __init__(
        self, *, params: LightGBMParams, seed: int, classes: Sequence[str] | None = None
    ) -> None:
        self.params = params
        self.seed = seed
        self.classes = classes

    # --- fitting ----------------------------------------------------------------------

    def fit(
        self,
        X: pl.DataFrame,
        y: pl.Series,
        *,
        valid: tuple[pl.DataFrame, pl.Series] | None = None,
        categorical: Sequence[str] = (),
        feature_descriptions: Mapping[str, str] | None = None,
        feature_units: Mapping[str, str | None] | None = None,
        weight: FloatArray | None = None,
        population: pl.DataFrame | None = None,
    ) -> Self:
        """Learn from one row per customer-snapshot and its ``churn_type`` label.

        Text columns are categorical even when not listed in ``categorical``. With
        ``valid`` (the out-of-time snapshot), boosting stops once its log loss has not
        improved for ``early_stopping_rounds`` rounds and keeps the best round.
        ``feature_units`` (``FeatureSpec.unit`` by name) tells the drift profiles
        which features count days. ``weight`` weighs each row (a sample weighted back
        to its population, see ``churnkit.model.sampling``); the drift profiles then
        describe ``population`` (the rows before sampling) rather than ``X``.
        """
        if X.height == 0:
            raise DataError("no training rows", hint="use an earlier --as-of or more history")
        if X.height != len(y):
            raise DataError(f"training frame has {X.height} rows but {len(y)} labels")
        labels = label_values(y, what="training labels")
        classes = choose_classes(set(labels.unique().to_list()), self.classes)
        y_index = encode_labels(labels, classes)
        if not (y_index > 0).any():
            raise DataError(
                "training labels hold no churners",
                hint="use a longer --horizon or an earlier --as-of",
            )
        self._describe(X, y_index, classes, categorical, feature_descriptions or {})
        profiled = X if population is None else population.select(X.columns)
        self.profiles_ = feature_profile(profiled, self.categories_, feature_units)
        train_set = lgb.Dataset(
            self._matrix(X),
            label=y_index.astype(np.float64),
            weight=weight,
            feature_name=_lightgbm_names(self.feature_names_),
            categorical_feature=[
                i for i, n in enumerate(self.feature_names_) if n in self.categories_
            ],
            free_raw_data=True,
        )
        valid_sets: list[lgb.Dataset] = []
        callbacks: list[Any] = []
        if valid is not None:
            valid_sets.append(self._valid_set(valid, classes, train_set))
            callbacks.append(lgb.early_stopping(self.params.early_stopping_rounds, verbose=False))
        try:
            booster = lgb.train(
                self._lightgbm_params(),
                train_set,
                num_boost_round=self.params.num_boost_round,
                valid_sets=valid_sets,
                valid_names=["valid"] * len(valid_sets),
                callbacks=callbacks,
            )
        except lgb.basic.LightGBMError as exc:
            raise ModelError(
                f"LightGBM could not train: {exc}", hint="check the features"
            ) from None
        best = booster.best_iteration if valid is not None else booster.current_iteration()
        self.best_iteration_ = int(best) if best > 0 else booster.current_iteration()
        scores = booster.best_score.get("valid", {}) if valid is not None else {}
        self.best_score_ = float(next(iter(scores.values()))) if scores else None
        # Rebuilt from its own text, the in-memory model is exactly what load() will read.
        text = booster.model_to_string(num_iteration=self.best_iteration_)
        self.booster_ = lgb.Booster(model_str=text)
        log.info(
            "trained %s model: %d rows, %d features, %d rounds",
            self.mode,
            X.height,
            len(self.feature_names_),
            self.best_iteration_,
        )
        return self

    def _describe(
        self,
        X: pl.DataFrame,
        y_index: np.ndarray[Any, Any],
        classes: tuple[str, ...],
        categorical: Sequence[str],
        descriptions: Mapping[str, str],
    ) -> None:
        """Learn what the features and classes are, before any boosting."""
        types = feature_types(X, categorical)
        self.classes_ = list(classes)
        self.feature_names_ = list(X.columns)
        self.feature_types_ = types
        self.feature_descriptions_ = {n: descriptions.get(n, n) for n in X.columns}
        self.categories_ = {
            n: category_list(X.get_column(n)) for n, t in types.items() if t == "categorical"
        }
        self.n_train_ = X.height
        self.class_counts_ = {
            c: int(n)
            for c, n in zip(classes, np.bincount(y_index, minlength=len(classes)), strict=True)
        }
        self.calibrator_ = None

    def _valid_set(
        self,
        valid: tuple[pl.DataFrame, pl.Series],
        classes: tuple[str, ...],
        train_set: lgb.Dataset,
    ) -> lgb.Dataset:
        vX, vy = valid
        if vX.height == 0 or vX.height != len(vy):
            raise DataError(
                f"validation frame has {vX.height} rows and {len(vy)} labels",
                hint="use an earlier --as-of so the validation snapshot has customers",
            )
        v_index = encode_labels(label_values(vy, what="validation labels"), classes)
        require_features(self.feature_names_, vX.columns, what="the validation data")
        return lgb.Dataset(self._matrix(vX), label=v_index.astype(np.float64), reference=train_set)

    def calibrate(self, X: pl.DataFrame, y: pl.Series, *, method: CalibrationMethod) -> Self:
        """Fit probability calibration on held-out rows (the out-of-time validation).

        ``"none"`` removes any calibration. The calibrator is kept as numbers (sigmoid
        coefficients or isotonic thresholds) in the model card.
        """
        self._require_fitted("calibrate")
        if method == "none":
            self.calibrator_ = None
            return self
        raw = self.predict_proba(X, calibrated=False)
        y_index = encode_labels(label_values(y, what="calibration labels"), self.classes_)
        self.calibrator_ = Calibrator.fit(raw, y_index, classes=self.classes_, method=method)
        return self

    def set_calibrator(self, calibrator: Calibrator | None) -> Self:
        """Attach a calibrator fitted on another model with the same classes (e.g. the
        validated model before the refit on all snapshots)."""
        self._require_fitted("calibrate")
        if calibrator is not None and list(calibrator.classes) != self.classes_:
            raise ModelError(
                f"calibration is for classes {list(calibrator.classes)}, "
                f"the model has {self.classes_}"
            )
        self.calibrator_ = calibrator
        return self

    # --- prediction -------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        self._require_fitted("report its mode")
        return mode_of(self.classes_)

    def predict_proba(self, X: pl.DataFrame, *, calibrated: bool = True) -> FloatArray:
        """Class probabilities, shape (n, n_classes), columns in ``classes_`` order.

        Extra columns of ``X`` are ignored; missing features raise ``ModelError``.
        """
        self._require_fitted("predict")
        self.check_compatible(X.columns)
        k = len(self.classes_)
        if X.height == 0:
            return np.empty((0, k), dtype=np.float64)
        raw = np.asarray(self.booster_.predict(self._matrix(X)), dtype=np.float64)
        proba = raw if k > 2 else np.column_stack([1.0 - raw, raw])
        if calibrated and self.calibrator_ is not None:
            proba = self.calibrator_.apply(proba)
        return proba

    def contributions(self, X: pl.DataFrame, *, num_threads: int = 0) -> FloatArray:
        """Per-row feature contributions (SHAP values), shape (n, n_classes, n_features + 1).

        ``[i, k, j]`` is feature ``j``'s push on class ``classes_[k]``'s raw score for row
        ``i``; the last slot ``[i, k, -1]`` is the baseline, so each ``[i, k, :]`` sums to
        the raw score. Raw scores are softmax inputs for multiclass models and log-odds
        for binary ones, where ``[i, 0, :]`` (retained) is the negation of ``[i, 1, :]``
        (churned). Costly (about 165x a prediction): compute for the rows you show.
        ``num_threads`` (0: LightGBM's default, every core) does not change the result.
        """
        self._require_fitted("explain predictions")
        self.check_compatible(X.columns)
        k = len(self.classes_)
        width = len(self.feature_names_) + 1
        if X.height == 0:
            return np.empty((0, k, width), dtype=np.float64)
        raw = np.asarray(
            self.booster_.predict(self._matrix(X), pred_contrib=True, num_threads=num_threads),
            np.float64,
        )
        if k > 2:
            # LightGBM lays the classes out one after another: [class 0 block, class 1, ...]
            return raw.reshape(X.height, k, width)
        churned = raw.reshape(X.height, 1, width)
        return np.concatenate([-churned, churned], axis=1)

    def check_compatible(self, columns: Sequence[str]) -> None:
        """Refuse scoring data that lacks a feature the model was trained on."""
        self._require_fitted("check features")
        require_features(self.feature_names_, columns, what="the data")

    # --- persistence ------------------------------------------------------------------

    def save(self, directory: Path, training: TrainingRecord | None = None) -> ModelCard:
        """Write ``model.txt`` and ``card.json`` atomically into ``directory``.

        ``training`` adds what training knows (as_of, horizon, layout, metrics, ...).
        """
        self._require_fitted("save")
        text = self.booster_.model_to_string()
        card = self._card(text)
        if training is not None:
            card = card.with_training(training)
        try:
            write_text_atomic(directory / MODEL_FILE, text)
        except OSError as exc:
            raise ModelError(
                f"cannot write the model to {directory}: {exc.strerror or exc}",
                hint="check that the directory is writable",
            ) from None
        self.card_ = card.write(directory)
        log.info("saved model to %s", directory)
        return self.card_

    @classmethod
    def load(cls, directory: Path, card: ModelCard | None = None) -> Self:
        """Read a saved model, refusing missing, corrupt or incompatible ones."""
        model_path = directory / MODEL_FILE
        if not (model_path.is_file() and (directory / CARD_FILE).is_file()):
            what = "no model" if not directory.is_dir() else "no complete model"
            raise ModelError(f"{what} in {directory}", hint=TRAIN_FIRST_HINT)
        card = card or ModelCard.read(directory)
        if card.model_type != MODEL_TYPE:
            raise ModelError(
                f"model card {card.path} is for a {card.model_type!r} model, not {MODEL_TYPE!r}",
                hint=RETRAIN_HINT,
            )
        try:
            text = model_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelError(f"{model_path} is unreadable: {exc}", hint=RETRAIN_HINT) from None
        if card.model_sha256 != _sha256(text):
            raise ModelError(
                f"{model_path} does not match its model card (interrupted save or edited file)",
                hint=RETRAIN_HINT,
            )
        try:
            booster = lgb.Booster(model_str=text)
        except lgb.basic.LightGBMError as exc:
            raise ModelError(f"{model_path} is corrupt: {exc}", hint=RETRAIN_HINT) from None
        model = cls._from_card(card)
        model.booster_ = booster
        if booster.num_feature() != len(model.feature_names_):
            raise ModelError(
                f"{model_path} has {booster.num_feature()} features, its card "
                f"{len(model.feature_names_)}",
                hint=RETRAIN_HINT,
            )
        return model

    @classmethod
    def _from_card(cls, card: ModelCard) -> Self:
        if card.seed is None or card.best_iteration is None or card.n_train is None:
            raise ModelError(
                f"model card {card.path} lacks the LightGBM fields seed, best_iteration and "
                "n_train",
                hint=RETRAIN_HINT,
            )
        known = LightGBMParams.model_fields
        try:
            params = LightGBMParams.model_validate(
                {k: v for k, v in card.params.items() if k in known}
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise ModelError(
                f"model card {card.path} holds invalid parameters: {problems}", hint=RETRAIN_HINT
            ) from None
        model = cls(params=params, seed=card.seed, classes=card.classes)
        model.classes_ = list(card.classes)
        model.feature_names_ = card.feature_names
        model.feature_types_ = {f.name: f.type for f in card.features}
        model.feature_descriptions_ = {f.name: f.description for f in card.features}
        model.profiles_ = {f.name: dict(f.profile) for f in card.features}
        model.categories_ = {k: list(v) for k, v in card.categories.items()}
        model.best_iteration_ = card.best_iteration
        model.best_score_ = card.best_score
        model.n_train_ = card.n_train
        model.class_counts_ = dict(card.class_counts)
        model.calibrator_ = card.calibration
        model.card_ = card
        return model

    # --- internals --------------------------------------------------------------------

    def _lightgbm_params(self) -> dict[str, Any]:
        p = self.params
        k = len(self.classes_)
        objective = {"objective": "multiclass", "num_class": k, "metric": "multi_logloss"}
        if k == 2:
            objective = {"objective": "binary", "metric": "binary_logloss"}
        return {
            **objective,
            "num_leaves": p.num_leaves,
            "learning_rate": p.learning_rate,
            "min_data_in_leaf": p.min_child_samples,
            "feature_fraction": p.feature_fraction,
            "bagging_fraction": p.bagging_fraction,
            "bagging_freq": p.bagging_freq,
            "lambda_l2": p.lambda_l2,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": threads(p.num_threads),
            "verbosity": -1,
        }

    def _matrix(self, X: pl.DataFrame) -> FloatArray:
        return feature_matrix(X, self.feature_names_, self.categories_)

    def _card(self, model_text: str) -> ModelCard:
        importance = self.booster_.feature_importance(importance_type="gain")
        return ModelCard(
            model_type=MODEL_TYPE,
            lightgbm_version=lgb.__version__,
            created=datetime.now(UTC).replace(microsecond=0),
            mode=self.mode,
            classes=tuple(self.classes_),
            features=tuple(
                CardFeature(
                    name=name,
                    type=self.feature_types_[name],
                    description=self.feature_descriptions_[name],
                    importance_gain=float(importance[i]),
                    profile=self.profiles_[name],
                )
                for i, name in enumerate(self.feature_names_)
            ),
            categories={k: tuple(v) for k, v in self.categories_.items()},
            calibration=self.calibrator_,
            params={
                **self.params.model_dump(mode="json"),
                "num_threads": threads(self.params.num_threads),
            },
            seed=self.seed,
            best_iteration=self.best_iteration_,
            best_score=self.best_score_,
            n_train=self.n_train_,
            class_counts=self.class_counts_,
            model_sha256=_sha256(model_text),
            churnkit_version=__version__,
        )

    def _require_fitted(self, action: str) -> None:
        if not hasattr(self, "booster_"):
            raise ModelError(f"cannot {action}: the model is not fitted", hint=TRAIN_FIRST_HINT)


def threads(configured: int) -> int:
    """The thread count LightGBM runs with: ``configured``, or every core for 0. The
    count is resolved here, not left to OpenMP, so the card records the one used."""
    return configured or os.cpu_count() or 1


def _lightgbm_names(names: Sequence[str]) -> list[str]:
    """Names LightGBM accepts (no JSON punctuation or spaces), kept unique."""
    out: list[str] = []
    for i, name in enumerate(names):
        safe = re.sub(r"[^\w.\-]", "_", name) or f"feature_{i}"
        out.append(safe if safe not in out else f"{safe}__{i}")
    return out


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
