"""Model quality, naive baselines, drift and profit: pure functions on arrays and frames.

Training and evaluation report the same numbers, so they live here once. Ranking
metrics wrap scikit-learn; feature profiles and PSI live in ``model.drift`` and are
named here too. A metric that the data cannot define (one class
only, no rows) is ``nan`` and never an exception: a doubtful number is a warning for
the caller to raise, not a crash.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from sklearn.metrics import average_precision_score, roc_auc_score

from churnkit.core.schema import ChurnType
from churnkit.model.drift import (
    as_numeric,
    feature_profile,
    is_categorical_dtype,
    is_numeric_dtype,
    psi,
    psi_table,
)

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

TOP_SHARE = 0.1
_PROBA_CLIP = 1e-15

NAN = float("nan")


# --- ranking and probability metrics -------------------------------------------------


def binary_metrics(
    y_true: npt.ArrayLike, score: npt.ArrayLike, *, probability: bool = False
) -> dict[str, float]:
    """Ranking quality of ``score`` for the positives in ``y_true``.

    ``lift_top_decile`` is the positive rate among the top 10% by score (ties broken by
    row order) divided by the overall rate; ``capture_top_decile`` is the share of all
    positives found there. With ``probability=True`` the score is also judged as a
    probability (``brier``, ``log_loss``). Undefined values (one class only) are nan.
    """
    y = _as_bool(y_true)
    s = _as_float(score)
    _same_length(y, s)
    n = len(y)
    positives = int(y.sum())
    out: dict[str, float] = {
        "n": float(n),
        "positive_rate": positives / n if n else NAN,
        "auc": auc(y, s),
        "pr_auc": float(average_precision_score(y, s)) if _two_classes(y) else NAN,
    }
    out.update(_top_decile(y, s))
    if probability:
        out["brier"] = float(np.mean((s - y) ** 2)) if n else NAN
        p = np.clip(s, _PROBA_CLIP, 1 - _PROBA_CLIP)
        out["log_loss"] = float(-np.mean(np.where(y, np.log(p), np.log1p(-p)))) if n else NAN
    return out


def auc(y_true: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """ROC AUC, nan when only one class is present."""
    y = _as_bool(y_true)
    if not _two_classes(y):
        return NAN
    return float(roc_auc_score(y, _as_float(score)))


def multiclass_metrics(
    y: Sequence[str] | npt.ArrayLike, proba: npt.ArrayLike, classes: Sequence[str]
) -> dict[str, float]:
    """Quality of class probabilities (columns in ``classes`` order) for churn labels.

    Works for binary models too (classes retained/churned: any label other than
    retained counts as churned). Keys:

    - ``auc``, ``pr_auc``, ``lift_top_decile``, ``capture_top_decile``, ``brier``,
      ``log_loss``: churn vs retained with ``p_churn = 1 - p_retained``, the numbers
      quality gates compare;
    - ``auc_<class>``: one-vs-rest AUC of each class's own probability;
    - ``log_loss_multiclass`` and ``brier_multiclass`` (mean over rows of
      ``sum_k (p_k - 1[y = k])^2``, between 0 and 2);
    - ``auc_involuntary_vs_voluntary``: among actual churners of either kind, how well
      ``p_inv / (p_inv + p_vol)`` ranks involuntary above voluntary (multiclass only).
    """
    labels = _labels(y, classes)
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape != (len(labels), len(classes)):
        raise ValueError(f"proba has shape {p.shape}; expected ({len(labels)}, {len(classes)})")
    retained = _index(classes, ChurnType.RETAINED)
    churned = labels != ChurnType.RETAINED.value
    out = binary_metrics(churned, 1.0 - p[:, retained], probability=True)
    onehot = labels[:, None] == np.asarray(list(classes), dtype=object)[None, :]
    for k, cls in enumerate(classes):
        out[f"auc_{cls}"] = auc(onehot[:, k], p[:, k])
    n = len(labels)
    own = np.clip(p[onehot], _PROBA_CLIP, 1.0)
    out["log_loss_multiclass"] = float(-np.mean(np.log(own))) if n else NAN
    out["brier_multiclass"] = float(np.mean(np.sum((p - onehot) ** 2, axis=1))) if n else NAN
    if ChurnType.VOLUNTARY in classes and ChurnType.INVOLUNTARY in classes:
        inv = _index(classes, ChurnType.INVOLUNTARY)
        vol = _index(classes, ChurnType.VOLUNTARY)
        kinds = (onehot[:, inv]) | (onehot[:, vol])
        out["auc_involuntary_vs_voluntary"] = auc(
            onehot[kinds, inv], involuntary_share(p[kinds, inv], p[kinds, vol])
        )
    return out


def involuntary_share(p_involuntary: npt.ArrayLike, p_voluntary: npt.ArrayLike) -> FloatArray:
    """``p_inv / (p_inv + p_vol)``: which kind a churner is, whatever the churn risk (0.5
    when the model gives both kinds zero)."""
    inv = _as_float(p_involuntary)
    total = inv + _as_float(p_voluntary)
    return np.divide(inv, total, out=np.full_like(inv, 0.5), where=total > 0)


# --- naive baselines ----------------------------------------------------------------


def recency_baseline(recency_days: npt.ArrayLike) -> FloatArray:
    """Rank by days since the last purchase: the rule a model has to beat.

    Customers who never bought (nan) rank above everyone.
    """
    r = _as_float(recency_days)
    finite = r[np.isfinite(r)]
    top = float(finite.max()) + 1.0 if finite.size else 1.0
    return np.where(np.isfinite(r), r, top)


def failed_payment_baseline(failed_payments: npt.ArrayLike) -> FloatArray:
    """1 for a churner with any failed payment, else 0: the rule of thumb for telling
    involuntary from voluntary churn."""
    f = _as_float(failed_payments)
    return (np.nan_to_num(f, nan=0.0) > 0).astype(np.float64)


# --- leakage ------------------------------------------------------------------------


def single_feature_auc(X: pl.DataFrame, y_churn: npt.ArrayLike) -> dict[str, float]:
    """AUC of each numeric feature on its own, as ``max(auc, 1 - auc)``.

    A feature that alone separates churners almost perfectly usually peeks at the
    outcome; training warns about it. Missing values rank below every observed value.
    """
    y = _as_bool(y_churn)
    if X.height != len(y):
        raise ValueError(f"X has {X.height} rows but y has {len(y)}")
    out: dict[str, float] = {}
    for name, dtype in X.schema.items():
        if not is_numeric_dtype(dtype):
            continue
        values = as_numeric(X.get_column(name)).to_numpy().astype(np.float64)
        missing = np.isnan(values)
        if missing.all():
            out[name] = 0.5 if _two_classes(y) else NAN
            continue
        values[missing] = np.nanmin(values) - 1.0
        a = auc(y, values)
        out[name] = max(a, 1.0 - a) if not math.isnan(a) else NAN
    return out


# --- expected profit ----------------------------------------------------------------


def profit_curve(
    y_true: npt.ArrayLike,
    score: npt.ArrayLike,
    *,
    value: npt.ArrayLike | float,
    contact_cost: float,
    success_rate: float,
) -> FloatArray:
    """Expected campaign profit when contacting the top ``k`` by score, for k = 0..n.

    ``profit[k] = sum over the top k of (y_true * success_rate * value) - k * contact_cost``
    (ties in score keep row order).
    """
    y = _as_bool(y_true)
    s = _as_float(score)
    _same_length(y, s)
    v = np.broadcast_to(np.asarray(value, dtype=np.float64), y.shape)
    order = np.argsort(-s, kind="stable")
    gain = np.where(y[order], success_rate * v[order], 0.0) - contact_cost
    return np.concatenate([[0.0], np.cumsum(gain)])


def expected_max_profit(
    y_true: npt.ArrayLike,
    score: npt.ArrayLike,
    *,
    value: npt.ArrayLike | float,
    contact_cost: float,
    success_rate: float,
) -> dict[str, float]:
    """The best expected profit of a retention campaign that contacts the top of the list.

    Customers are ranked by ``score``; contacting the top ``k`` earns
    ``sum_{i in top k} y_i * success_rate * value_i - k * contact_cost`` where ``y_i`` is
    1 for an actual churner (a saved churner keeps ``value_i``; a retained customer
    contacted costs the contact and earns nothing). Keys: ``expected_profit`` (the
    maximum over k, including 0 = contact nobody), ``best_k``, ``best_share`` (k / n),
    ``profit_top_decile`` and ``profit_all`` (contact everyone).
    """
    curve = profit_curve(
        y_true, score, value=value, contact_cost=contact_cost, success_rate=success_rate
    )
    n = len(curve) - 1
    best = int(np.argmax(curve))
    return {
        "expected_profit": float(curve[best]),
        "best_k": float(best),
        "best_share": best / n if n else NAN,
        "profit_top_decile": float(curve[_top_k(n)]) if n else 0.0,
        "profit_all": float(curve[n]),
    }


# --- helpers ------------------------------------------------------------------------


def _top_decile(y: BoolArray, s: FloatArray) -> dict[str, float]:
    n = len(y)
    positives = int(y.sum())
    if n == 0 or positives == 0:
        return {"lift_top_decile": NAN, "capture_top_decile": NAN}
    k = _top_k(n)
    top = np.argsort(-s, kind="stable")[:k]
    hits = int(y[top].sum())
    return {
        "lift_top_decile": (hits / k) / (positives / n),
        "capture_top_decile": hits / positives,
    }


def _top_k(n: int) -> int:
    """How many rows make the top decile: at least one."""
    return max(1, math.ceil(TOP_SHARE * n - 1e-9))


def _labels(y: Sequence[str] | npt.ArrayLike, classes: Sequence[str]) -> npt.NDArray[np.object_]:
    """Labels as strings; for a binary model every churn kind is ``churned``."""
    values = y.to_numpy() if isinstance(y, pl.Series) else np.asarray(y)
    labels = values.astype(str).astype(object)
    if list(classes) == [ChurnType.RETAINED.value, ChurnType.CHURNED.value]:
        labels = np.where(labels == ChurnType.RETAINED.value, labels, ChurnType.CHURNED.value)
    unknown = set(np.unique(labels).tolist()) - set(classes)
    if unknown:
        raise ValueError(f"labels {sorted(unknown)} are not among the classes {list(classes)}")
    return labels.astype(object)


def _index(classes: Sequence[str], cls: ChurnType) -> int:
    for i, c in enumerate(classes):
        if c == cls.value:
            return i
    raise ValueError(f"classes {list(classes)} lack {cls.value!r}")


def _as_bool(values: npt.ArrayLike) -> BoolArray:
    if isinstance(values, pl.Series):
        values = values.to_numpy()
    return np.asarray(values).astype(bool)


def _as_float(values: npt.ArrayLike) -> FloatArray:
    if isinstance(values, pl.Series):
        values = values.cast(pl.Float64).to_numpy()
    return np.asarray(values, dtype=np.float64)


def _two_classes(y: BoolArray) -> bool:
    return bool(y.any()) and not bool(y.all())


def _same_length(y: npt.NDArray[Any], s: npt.NDArray[Any]) -> None:
    if y.shape != s.shape:
        raise ValueError(f"labels have shape {y.shape} but scores {s.shape}")


__all__ = [
    "auc",
    "binary_metrics",
    "expected_max_profit",
    "failed_payment_baseline",
    "feature_profile",
    "involuntary_share",
    "is_categorical_dtype",
    "is_numeric_dtype",
    "multiclass_metrics",
    "profit_curve",
    "psi",
    "psi_table",
    "recency_baseline",
    "single_feature_auc",
]
