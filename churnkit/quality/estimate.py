"""How well the model does now, before the outcomes are known: confidence-based
performance estimation (CBPE, as NannyML calls it).

A calibrated model's ``p_churn`` is the chance that the customer churns, so each
customer counts as ``p`` of a churner and ``1 - p`` of a stayer. At every threshold
the expected confusion matrix follows (expected true positives: the sum of ``p`` above
it; expected false positives: the sum of ``1 - p``), and from it the expected ROC
curve and its area, the expected churn rate, Brier score and lift at the top decile.

The estimate holds only as far as the model stays calibrated on today's customers.
So it comes with what can be measured: the calibration error on the validation
snapshot (from the model card) and how far the expected churn rate has moved from the
validation snapshot's churn rate. A model whose calibration was not fitted
(``train.calibration: none``) is as calibrated as LightGBM's probabilities are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from churnkit.core.jsonable import finite
from churnkit.model.card import ModelCard

FloatArray = npt.NDArray[np.float64]
TOP_SHARE = 0.1
NAN = float("nan")


@dataclass(frozen=True)
class PerformanceEstimate:
    """Expected quality of the model on a population whose outcomes are not known yet,
    next to what the model card measured on its validation snapshot."""

    customers: int
    auc: float
    churn_rate: float
    brier: float
    lift_top_decile: float
    validation_auc: float | None = None
    validation_churn_rate: float | None = None
    calibration_error: float | None = None

    @property
    def churn_rate_shift(self) -> float | None:
        """Expected churn rate now minus the validation snapshot's."""
        if self.validation_churn_rate is None or not np.isfinite(self.churn_rate):
            return None
        return self.churn_rate - self.validation_churn_rate

    @property
    def statement(self) -> str:
        """One line for people: the estimate, what it is compared with, what it assumes."""
        parts = [f"estimated AUC {_num(self.auc)}"]
        if self.validation_auc is not None:
            parts[0] += f" (validation {_num(self.validation_auc)})"
        rate = f"expected churn rate {_pct(self.churn_rate)}"
        if self.validation_churn_rate is not None:
            rate += f" (validation {_pct(self.validation_churn_rate)})"
        parts.append(rate)
        assumption = "assumes the model is still calibrated"
        if self.calibration_error is not None:
            error = _pct(self.calibration_error)
            assumption += f"; its calibration error on validation was {error}"
        return ", ".join(parts) + f" — {assumption}"

    def to_json(self) -> dict[str, Any]:
        return {
            "method": "confidence-based (expected confusion matrix from p_churn)",
            "customers": self.customers,
            "auc": finite(self.auc),
            "churn_rate": finite(self.churn_rate),
            "brier": finite(self.brier),
            "lift_top_decile": finite(self.lift_top_decile),
            "validation_auc": finite(self.validation_auc),
            "validation_churn_rate": finite(self.validation_churn_rate),
            "churn_rate_shift": finite(self.churn_rate_shift),
            "calibration_error": finite(self.calibration_error),
            "assumes": "the model is calibrated on today's customers",
        }


def estimate_performance(
    p_churn: npt.ArrayLike,
    *,
    validation_auc: float | None = None,
    validation_churn_rate: float | None = None,
    calibration_error: float | None = None,
) -> PerformanceEstimate:
    """The estimate for one population's churn probabilities, next to the validation
    numbers it is read against (see ``estimate_for_card``)."""
    p = np.asarray(p_churn, dtype=np.float64)
    p = np.clip(p[np.isfinite(p)], 0.0, 1.0)
    return PerformanceEstimate(
        customers=len(p),
        auc=expected_auc(p),
        churn_rate=float(p.mean()) if len(p) else NAN,
        brier=float(np.mean(p * (1.0 - p))) if len(p) else NAN,
        lift_top_decile=expected_lift(p),
        validation_auc=_optional(validation_auc),
        validation_churn_rate=_optional(validation_churn_rate),
        calibration_error=_optional(calibration_error),
    )


def estimate_for_card(p_churn: npt.ArrayLike, card: ModelCard) -> PerformanceEstimate:
    """The estimate with the validation AUC, churn rate and calibration error the model
    card recorded."""
    bins = [(b.predicted, b.observed, b.customers) for b in card.calibration_curve]
    return estimate_performance(
        p_churn,
        validation_auc=card.metrics.get("auc"),
        validation_churn_rate=card.metrics.get("positive_rate"),
        calibration_error=calibration_error(bins),
    )


def expected_auc(p_churn: npt.ArrayLike) -> float:
    """Area under the expected ROC curve: at each distinct probability (highest first)
    the expected true-positive rate ``sum(p above) / sum(p)`` against the expected
    false-positive rate ``sum(1 - p above) / sum(1 - p)``. nan when every customer is
    certain either way."""
    p = np.sort(np.asarray(p_churn, dtype=np.float64))[::-1]
    positives, negatives = p.sum(), (1.0 - p).sum()
    if len(p) == 0 or positives <= 0 or negatives <= 0:
        return NAN
    tp, fp = np.cumsum(p), np.cumsum(1.0 - p)
    # One point per distinct probability: tied customers move together.
    last = np.r_[p[1:] != p[:-1], True]
    tpr = np.r_[0.0, tp[last] / positives]
    fpr = np.r_[0.0, fp[last] / negatives]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def expected_lift(p_churn: npt.ArrayLike) -> float:
    """Expected churn rate among the top decile by ``p_churn`` over the expected rate."""
    p = np.sort(np.asarray(p_churn, dtype=np.float64))[::-1]
    if len(p) == 0 or p.sum() <= 0:
        return NAN
    k = max(1, int(np.ceil(TOP_SHARE * len(p) - 1e-9)))
    return float(p[:k].mean() / p.mean())


def calibration_error(bins: Iterable[tuple[float, float, int]]) -> float | None:
    """Expected calibration error: the customer-weighted mean gap between predicted and
    observed churn over calibration bins ``(predicted, observed, customers)``."""
    rows = list(bins)
    total = sum(n for _, _, n in rows)
    if not total:
        return None
    return float(sum(n * abs(p - o) for p, o, n in rows) / total)


def _optional(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _num(value: float) -> str:
    return f"{value:.3f}" if np.isfinite(value) else "n/a"


def _pct(value: float) -> str:
    return f"{value:.1%}" if np.isfinite(value) else "n/a"
