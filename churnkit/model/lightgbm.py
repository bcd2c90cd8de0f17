"""``ChurnModel``: a LightGBM churn classifier that saves as text and JSON, never pickle.

The estimator follows scikit-learn's contract: the constructor stores parameters,
``fit`` learns and returns ``self``, learned state ends in ``_``. It is multiclass
(retained / voluntary / involuntary) when the labels hold both churn kinds and binary
(retained / churned) otherwise, because a model must not pretend to split churn it never
saw split. Training is bit-for-bit reproducible for a given seed: the thread count
(``train.lightgbm.num_threads``) and histogram layout are fixed and LightGBM runs in
deterministic mode.

On disk a model is a directory holding ``model.txt`` (LightGBM's own text format) and
``card.json`` (the model card: classes, features with their training distributions,
category lists, calibration, parameters and whatever training adds). The card records
the hash of ``model.txt`` so a half-written or edited model is refused on load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Self

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import polars as pl
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from churnkit import __version__
from churnkit.core.config import LightGBMParams
from churnkit.core.errors import DataError, ModelError
from churnkit.core.jsonable import jsonable
from churnkit.core.schema import ChurnType
from churnkit.core.workspace import write_text_atomic
from churnkit.model.metrics import feature_profile, is_categorical_dtype, is_numeric_dtype

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
CalibrationMethod = Literal["none", "sigmoid", "isotonic"]

MODEL_FILE = "model.txt"
CARD_FILE = "card.json"
# Bump when the card changes in a way older readers would misread.
CARD_FORMAT = 1
# Rarer categories of a categorical feature are treated as missing.
MAX_CATEGORIES = 1000

MULTICLASS: tuple[str, ...] = (
    ChurnType.RETAINED.value,
    ChurnType.VOLUNTARY.value,
    ChurnType.INVOLUNTARY.value,
)
BINARY: tuple[str, ...] = (ChurnType.RETAINED.value, ChurnType.CHURNED.value)
_LABELS = {*MULTICLASS, ChurnType.CHURNED.value}

RETRAIN_HINT = "retrain with `churnkit train`"
TRAIN_FIRST_HINT = "run `churnkit train` first"
# Card keys the model writes itself; ``card_extra`` may not overwrite them.
_CORE_KEYS = frozenset(
    {
        "format_version",
        "churnkit_version",
        "lightgbm_version",
        "created",
        "mode",
        "classes",
        "features",
        "categories",
        "calibration",
        "params",
        "seed",
        "best_iteration",
        "best_score",
        "n_train",
        "class_counts",
        "model_sha256",
    }
)


@dataclass(frozen=True)
class ClassCalibration:
    """The map from a class's raw to calibrated probability.

    Sigmoid: ``p' = 1 / (1 + exp(-(a * logit(p) + b)))``. Isotonic: linear interpolation
    through ``(x_thresholds, y_thresholds)``, clipped at the ends (scikit-learn's
    ``IsotonicRegression(out_of_bounds="clip")`` prediction).
    """

    a: float = 1.0
    b: float = 0.0
    x_thresholds: tuple[float, ...] = ()
    y_thresholds: tuple[float, ...] = ()


@dataclass(frozen=True)
class Calibrator:
    """Per-class one-vs-rest probability calibration, stored as plain numbers in JSON.

    Binary models calibrate ``churned`` and set ``retained = 1 - churned``; multiclass
    models calibrate each class and renormalise every row to sum to 1.
    """

    method: Literal["sigmoid", "isotonic"]
    classes: tuple[str, ...]
    per_class: Mapping[str, ClassCalibration]

    @classmethod
    def fit(
        cls,
        raw_proba: FloatArray,
        y_index: npt.NDArray[np.intp],
        *,
        classes: Sequence[str],
        method: Literal["sigmoid", "isotonic"],
    ) -> Calibrator:
        """Fit on held-out rows: raw probabilities and the index of each row's true class."""
        per_class: dict[str, ClassCalibration] = {}
        for k in _calibrated_columns(classes):
            p = raw_proba[:, k]
            hit = (y_index == k).astype(np.float64)
            if method == "isotonic":
                iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
                iso.fit(p, hit)
                per_class[classes[k]] = ClassCalibration(
                    x_thresholds=tuple(float(v) for v in iso.X_thresholds_),
                    y_thresholds=tuple(float(v) for v in iso.y_thresholds_),
                )
            elif hit.min() == hit.max():
                log.info("calibration: class %s has one outcome only; left as is", classes[k])
                per_class[classes[k]] = ClassCalibration()
            else:
                lr = LogisticRegression(C=1e6).fit(_logit(p)[:, None], hit)
                per_class[classes[k]] = ClassCalibration(
                    a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0])
                )
        return cls(method=method, classes=tuple(classes), per_class=per_class)

    def apply(self, raw_proba: FloatArray) -> FloatArray:
        out = raw_proba.copy()
        for k in _calibrated_columns(self.classes):
            c = self.per_class[self.classes[k]]
            p = raw_proba[:, k]
            if self.method == "sigmoid":
                out[:, k] = 1.0 / (1.0 + np.exp(-(c.a * _logit(p) + c.b)))
            else:
                out[:, k] = np.interp(p, c.x_thresholds, c.y_thresholds)
        if len(self.classes) == 2:
            out[:, 0] = 1.0 - out[:, 1]
            return out
        total = out.sum(axis=1, keepdims=True)
        # a row every class map sends to zero keeps its raw probabilities
        return np.where(total > 0, out / np.where(total > 0, total, 1.0), raw_proba)

    def to_dict(self) -> dict[str, Any]:
        per: dict[str, dict[str, Any]]
        if self.method == "sigmoid":
            per = {k: {"a": c.a, "b": c.b} for k, c in self.per_class.items()}
        else:
            per = {
                k: {"x_thresholds": list(c.x_thresholds), "y_thresholds": list(c.y_thresholds)}
                for k, c in self.per_class.items()
            }
        return {"method": self.method, "classes": list(self.classes), "per_class": per}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibrator:
        method = data["method"]
        if method not in ("sigmoid", "isotonic"):
            raise ValueError(f"unknown calibration method {method!r}")
        per: dict[str, ClassCalibration] = {}
        for name, c in data["per_class"].items():
            if method == "sigmoid":
                per[name] = ClassCalibration(a=float(c["a"]), b=float(c["b"]))
            else:
                per[name] = ClassCalibration(
                    x_thresholds=tuple(float(v) for v in c["x_thresholds"]),
                    y_thresholds=tuple(float(v) for v in c["y_thresholds"]),
                )
        classes = tuple(str(c) for c in data["classes"])
        missing = {classes[k] for k in _calibrated_columns(classes)} - set(per)
        if missing:
            raise ValueError(f"calibration lacks classes {sorted(missing)}")
        return cls(method=method, classes=classes, per_class=per)


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
    feature_types_: dict[str, str]
    feature_descriptions_: dict[str, str]
    categories_: dict[str, list[str]]
    profiles_: dict[str, dict[str, Any]]
    best_iteration_: int
    best_score_: float | None
    n_train_: int
    class_counts_: dict[str, int]
    calibrator_: Calibrator | None
    card_: dict[str, Any]

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
    ) -> Self:
        """Learn from one row per customer-snapshot and its ``churn_type`` label.

        Text columns are categorical even when not listed in ``categorical``. With
        ``valid`` (the out-of-time snapshot), boosting stops once its log loss has not
        improved for ``early_stopping_rounds`` rounds and keeps the best round.
        """
        if X.height == 0:
            raise DataError("no training rows", hint="use an earlier --as-of or more history")
        if X.height != len(y):
            raise DataError(f"training frame has {X.height} rows but {len(y)} labels")
        labels = _label_values(y, what="training labels")
        classes = self._choose_classes(set(labels.unique().to_list()))
        y_index = _encode_labels(labels, classes)
        if not (y_index > 0).any():
            raise DataError(
                "training labels hold no churners",
                hint="use a longer --horizon or an earlier --as-of",
            )

        declared = set(categorical)
        types: dict[str, str] = {}
        for name, dtype in X.schema.items():
            if name in declared or is_categorical_dtype(dtype):
                types[name] = "categorical"
            elif is_numeric_dtype(dtype):
                types[name] = "numeric"
            else:
                raise DataError(
                    f"feature {name!r} has type {dtype}; features must be numeric or text",
                    hint="convert it to a number or declare it categorical",
                )
        unknown = declared - set(types)
        if unknown:
            raise DataError(f"categorical features {sorted(unknown)} are not in the frame")

        self.classes_ = list(classes)
        self.feature_names_ = list(X.columns)
        self.feature_types_ = types
        descriptions = feature_descriptions or {}
        self.feature_descriptions_ = {n: descriptions.get(n, n) for n in X.columns}
        self.categories_ = {
            n: _category_list(X.get_column(n)) for n, t in types.items() if t == "categorical"
        }
        self.profiles_ = feature_profile(X, [n for n, t in types.items() if t == "categorical"])
        self.n_train_ = X.height
        self.class_counts_ = {
            c: int(n)
            for c, n in zip(classes, np.bincount(y_index, minlength=len(classes)), strict=True)
        }
        self.calibrator_ = None

        train_set = lgb.Dataset(
            self._matrix(X),
            label=y_index.astype(np.float64),
            feature_name=_lightgbm_names(self.feature_names_),
            categorical_feature=[
                i for i, n in enumerate(self.feature_names_) if n in self.categories_
            ],
            free_raw_data=True,
        )
        valid_sets: list[lgb.Dataset] = []
        callbacks: list[Any] = []
        if valid is not None:
            vX, vy = valid
            if vX.height == 0 or vX.height != len(vy):
                raise DataError(
                    f"validation frame has {vX.height} rows and {len(vy)} labels",
                    hint="use an earlier --as-of so the validation snapshot has customers",
                )
            v_index = _encode_labels(_label_values(vy, what="validation labels"), classes)
            _require_features(self.feature_names_, vX.columns, what="the validation data")
            valid_sets.append(
                lgb.Dataset(self._matrix(vX), label=v_index.astype(np.float64), reference=train_set)
            )
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
        y_index = _encode_labels(_label_values(y, what="calibration labels"), self.classes_)
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
    def mode(self) -> Literal["multiclass", "binary"]:
        self._require_fitted("report its mode")
        return "binary" if len(self.classes_) == 2 else "multiclass"

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

    def contributions(self, X: pl.DataFrame) -> FloatArray:
        """Per-row feature contributions (SHAP values), shape (n, n_classes, n_features + 1).

        ``[i, k, j]`` is feature ``j``'s push on class ``classes_[k]``'s raw score for row
        ``i``; the last slot ``[i, k, -1]`` is the baseline, so each ``[i, k, :]`` sums to
        the raw score. Raw scores are softmax inputs for multiclass models and log-odds
        for binary ones, where ``[i, 0, :]`` (retained) is the negation of ``[i, 1, :]``
        (churned). Costly (about 165x a prediction): compute for the rows you show.
        """
        self._require_fitted("explain predictions")
        self.check_compatible(X.columns)
        k = len(self.classes_)
        width = len(self.feature_names_) + 1
        if X.height == 0:
            return np.empty((0, k, width), dtype=np.float64)
        raw = np.asarray(self.booster_.predict(self._matrix(X), pred_contrib=True), np.float64)
        if k > 2:
            # LightGBM lays the classes out one after another: [class 0 block, class 1, ...]
            return raw.reshape(X.height, k, width)
        churned = raw.reshape(X.height, 1, width)
        return np.concatenate([-churned, churned], axis=1)

    def check_compatible(self, columns: Sequence[str]) -> None:
        """Refuse scoring data that lacks a feature the model was trained on."""
        self._require_fitted("check features")
        _require_features(self.feature_names_, columns, what="the data")

    # --- persistence ------------------------------------------------------------------

    def save(self, directory: Path, card_extra: Mapping[str, Any] | None = None) -> None:
        """Write ``model.txt`` and ``card.json`` atomically into ``directory``.

        ``card_extra`` adds what training knows (as_of, horizon, config hash, data
        fingerprint, metrics, ...); it may not overwrite the model's own keys.
        """
        self._require_fitted("save")
        extra = dict(card_extra or {})
        clash = sorted(set(extra) & _CORE_KEYS)
        if clash:
            raise ValueError(f"card_extra may not set {clash}")
        text = self.booster_.model_to_string()
        card = jsonable({**self._card(text), **extra})
        try:
            write_text_atomic(directory / MODEL_FILE, text)
            write_text_atomic(
                directory / CARD_FILE, json.dumps(card, indent=2, allow_nan=False) + "\n"
            )
        except OSError as exc:
            raise ModelError(
                f"cannot write the model to {directory}: {exc.strerror or exc}",
                hint="check that the directory is writable",
            ) from None
        self.card_ = card
        log.info("saved model to %s", directory)

    @classmethod
    def load(cls, directory: Path) -> ChurnModel:
        """Read a saved model, refusing missing, corrupt or incompatible ones."""
        model_path = directory / MODEL_FILE
        card_path = directory / CARD_FILE
        if not (model_path.is_file() and card_path.is_file()):
            what = "no model" if not directory.is_dir() else "no complete model"
            raise ModelError(f"{what} in {directory}", hint=TRAIN_FIRST_HINT)
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
            text = model_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(
                f"model files in {directory} are unreadable: {exc}", hint=RETRAIN_HINT
            ) from None
        if not isinstance(card, dict):
            raise ModelError(f"model card {card_path} is not a JSON object", hint=RETRAIN_HINT)
        _check_versions(card, directory)
        if card.get("model_sha256") != _sha256(text):
            raise ModelError(
                f"{model_path} does not match its model card (interrupted save or edited file)",
                hint=RETRAIN_HINT,
            )
        try:
            booster = lgb.Booster(model_str=text)
        except lgb.basic.LightGBMError as exc:
            raise ModelError(f"{model_path} is corrupt: {exc}", hint=RETRAIN_HINT) from None
        try:
            model = cls._from_card(card, booster)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(
                f"model card {card_path} is corrupt: {exc!r}", hint=RETRAIN_HINT
            ) from None
        if booster.num_feature() != len(model.feature_names_):
            raise ModelError(
                f"{model_path} has {booster.num_feature()} features, its card "
                f"{len(model.feature_names_)}",
                hint=RETRAIN_HINT,
            )
        return model

    @classmethod
    def _from_card(cls, card: Mapping[str, Any], booster: lgb.Booster) -> ChurnModel:
        known = LightGBMParams.model_fields
        params = LightGBMParams.model_validate(
            {k: v for k, v in card["params"].items() if k in known}
        )
        classes = [str(c) for c in card["classes"]]
        if tuple(classes) not in (MULTICLASS, BINARY):
            raise ValueError(f"unknown classes {classes}")
        model = cls(params=params, seed=int(card["seed"]), classes=classes)
        features = card["features"]
        model.classes_ = classes
        model.feature_names_ = [str(f["name"]) for f in features]
        model.feature_types_ = {str(f["name"]): f["type"] for f in features}
        model.feature_descriptions_ = {str(f["name"]): str(f["description"]) for f in features}
        model.profiles_ = {str(f["name"]): f["profile"] for f in features}
        model.categories_ = {str(k): [str(c) for c in v] for k, v in card["categories"].items()}
        model.best_iteration_ = int(card["best_iteration"])
        score = card.get("best_score")
        model.best_score_ = None if score is None else float(score)
        model.n_train_ = int(card["n_train"])
        model.class_counts_ = {str(k): int(v) for k, v in card["class_counts"].items()}
        calibration = card.get("calibration")
        model.calibrator_ = None if calibration is None else Calibrator.from_dict(calibration)
        if model.calibrator_ is not None and list(model.calibrator_.classes) != classes:
            raise ValueError("calibration classes differ from the model's")
        model.booster_ = booster
        model.card_ = dict(card)
        return model

    # --- internals --------------------------------------------------------------------

    def _choose_classes(self, present: set[str]) -> tuple[str, ...]:
        unknown = present - _LABELS
        if unknown:
            raise DataError(
                f"labels hold unknown churn types {sorted(unknown)}; expected {sorted(_LABELS)}"
            )
        if self.classes is not None:
            given = tuple(self.classes)
            if given not in (MULTICLASS, BINARY):
                raise ModelError(
                    f"classes must be {list(MULTICLASS)} or {list(BINARY)}; got {list(given)}"
                )
            if given == MULTICLASS and ChurnType.CHURNED.value in present:
                raise DataError("labels say `churned` but the model splits voluntary/involuntary")
            return given
        kinds = present & {ChurnType.VOLUNTARY.value, ChurnType.INVOLUNTARY.value}
        if ChurnType.CHURNED.value in present or len(kinds) < 2:
            log.info("only one churn kind in the labels: training a binary model")
            return BINARY
        return MULTICLASS

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
            "num_threads": p.num_threads,
            "verbosity": -1,
        }

    def _matrix(self, X: pl.DataFrame) -> FloatArray:
        """Features as a float matrix in the model's column order; categories become their
        position in the stored list, unseen or missing ones NaN (LightGBM's missing)."""
        exprs: list[pl.Expr] = []
        for name in self.feature_names_:
            dtype = X.schema[name]
            if name in self.categories_:
                cats = self.categories_[name]
                exprs.append(
                    pl.col(name)
                    .cast(pl.String)
                    .replace_strict(
                        cats, list(range(len(cats))), default=None, return_dtype=pl.Float64
                    )
                )
            elif is_numeric_dtype(dtype):
                exprs.append(pl.col(name).cast(pl.Float64))
            else:
                raise ModelError(
                    f"feature {name!r} is numeric in the model but {dtype} in the data",
                    hint="score with the feature settings used in training",
                )
        return X.select(exprs).to_numpy(order="c").astype(np.float64, copy=False)

    def _card(self, model_text: str) -> dict[str, Any]:
        importance = self.booster_.feature_importance(importance_type="gain")
        return {
            "format_version": CARD_FORMAT,
            "churnkit_version": __version__,
            "lightgbm_version": lgb.__version__,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "mode": self.mode,
            "classes": self.classes_,
            "features": [
                {
                    "name": name,
                    "type": self.feature_types_[name],
                    "description": self.feature_descriptions_[name],
                    "importance_gain": float(importance[i]),
                    "profile": self.profiles_[name],
                }
                for i, name in enumerate(self.feature_names_)
            ],
            "categories": self.categories_,
            "calibration": None if self.calibrator_ is None else self.calibrator_.to_dict(),
            "params": self.params.model_dump(mode="json"),
            "seed": self.seed,
            "best_iteration": self.best_iteration_,
            "best_score": self.best_score_,
            "n_train": self.n_train_,
            "class_counts": self.class_counts_,
            "model_sha256": _sha256(model_text),
        }

    def _require_fitted(self, action: str) -> None:
        if not hasattr(self, "booster_"):
            raise ModelError(f"cannot {action}: the model is not fitted", hint=TRAIN_FIRST_HINT)


# --- helpers --------------------------------------------------------------------------


def _require_features(features: Sequence[str], columns: Sequence[str], *, what: str) -> None:
    present = set(columns)
    missing = [f for f in features if f not in present]
    if not missing:
        return
    known = set(features)
    extra = [c for c in columns if c not in known]
    note = f" (it has {len(extra)} the model does not use: {_few(extra)})" if extra else ""
    raise ModelError(
        f"{what} lacks {len(missing)} feature(s) the model was trained on: {_few(missing)}{note}",
        hint="use the feature settings of training, or " + RETRAIN_HINT,
    )


def _label_values(y: pl.Series, *, what: str) -> pl.Series:
    labels = y.cast(pl.String)
    if labels.null_count():
        raise DataError(f"{what} hold {labels.null_count()} missing value(s)")
    return labels


def _encode_labels(labels: pl.Series, classes: Sequence[str]) -> npt.NDArray[np.intp]:
    """Index of each label in ``classes``; a binary model folds every churn kind into 1."""
    if len(classes) == 2:
        return (labels != ChurnType.RETAINED.value).to_numpy().astype(np.intp)
    unknown = set(labels.unique().to_list()) - set(classes)
    if unknown:
        raise DataError(f"labels hold {sorted(unknown)}, not among the classes {list(classes)}")
    codes = labels.replace_strict(list(classes), list(range(len(classes))), return_dtype=pl.Int64)
    return codes.to_numpy().astype(np.intp)


def _category_list(column: pl.Series) -> list[str]:
    """Known categories: the most frequent ``MAX_CATEGORIES``, in alphabetical order."""
    counts = column.cast(pl.String).drop_nulls().value_counts(name="n")
    top = counts.sort(["n", column.name], descending=[True, False]).head(MAX_CATEGORIES)
    return sorted(top.get_column(column.name).to_list())


def _calibrated_columns(classes: Sequence[str]) -> range:
    """Binary models calibrate the churned column only; multiclass every column."""
    return range(1, 2) if len(classes) == 2 else range(len(classes))


def _logit(p: FloatArray) -> FloatArray:
    q = np.clip(p, 1e-12, 1 - 1e-12)
    return np.asarray(np.log(q) - np.log1p(-q), dtype=np.float64)


def _lightgbm_names(names: Sequence[str]) -> list[str]:
    """Names LightGBM accepts (no JSON punctuation or spaces), kept unique."""
    out: list[str] = []
    for i, name in enumerate(names):
        safe = re.sub(r"[^\w.\-]", "_", name) or f"feature_{i}"
        out.append(safe if safe not in out else f"{safe}__{i}")
    return out


def _check_versions(card: Mapping[str, Any], directory: Path) -> None:
    fmt = card.get("format_version")
    version = str(card.get("churnkit_version", ""))
    if not isinstance(fmt, int):
        raise ModelError(f"model card in {directory} has no format version", hint=RETRAIN_HINT)
    if fmt > CARD_FORMAT:
        raise ModelError(
            f"the model in {directory} was saved by a newer churnkit ({version}, card format "
            f"{fmt}); this churnkit {__version__} reads format {CARD_FORMAT}",
            hint="upgrade churnkit or " + RETRAIN_HINT,
        )
    if version.split(".")[0] != __version__.split(".")[0]:
        raise ModelError(
            f"the model in {directory} was saved by churnkit {version or 'unknown'}; "
            f"this is churnkit {__version__} (major version differs)",
            hint=RETRAIN_HINT,
        )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _few(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")
