"""Per-class probability calibration, kept as plain numbers in the model card.

A model's raw probabilities can rank customers well and still be off as
probabilities; calibrating them on held-out rows (the out-of-time validation
snapshot) makes "30% likely to leave" mean 30%. Sigmoid (Platt) scaling or isotonic
regression, one-vs-rest per class; the maps are stored as coefficients or
thresholds, never as pickled objects.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
CalibrationMethod = Literal["none", "sigmoid", "isotonic"]


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


def _calibrated_columns(classes: Sequence[str]) -> range:
    """Binary models calibrate the churned column only; multiclass every column."""
    return range(1, 2) if len(classes) == 2 else range(len(classes))


def _logit(p: FloatArray) -> FloatArray:
    q = np.clip(p, 1e-12, 1 - 1e-12)
    return np.asarray(np.log(q) - np.log1p(-q), dtype=np.float64)
