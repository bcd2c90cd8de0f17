"""What a model must beat: a naive analyst's rules and the customer-base model.

Both baselines are judged on the validation snapshot, like the model:

- **naive**: rank by days since the last purchase (by days since any activity when
  nobody bought), call customers with failed payments involuntary, and predict the
  training churn rate for everyone (its Brier score and log loss);
- **customer base** (BG/NBD): rank by the probability of no purchase in the horizon,
  from the parameters fitted on every customer at the validation cutoff.

``beats_baselines`` asks for a validation AUC at least ``margin`` above every
baseline's; ``expected_calibration_error`` is the customer-weighted mean gap between
predicted and observed churn over deciles of predicted risk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import polars as pl

from churnkit.core.schema import CUSTOMER_ID, ChurnType
from churnkit.features.names import FAILED_PAYMENTS_30D, FAILED_PAYMENTS_90D, RECENCY_DAYS
from churnkit.model import metrics
from churnkit.model.card import CalibrationBin
from churnkit.population.customer_base import (
    AGE,
    T_X,
    UNIT_DAYS,
    CustomerBaseParams,
    X,
    p_no_purchase,
    purchase_summary,
)

FAILED_FLAG = (FAILED_PAYMENTS_90D, FAILED_PAYMENTS_30D, "unrecovered_failure_streak")
SINCE_ANY_EVENT = "days_since_last_event"
NAIVE, CUSTOMER_BASE = "naive", "customer_base"


def naive_baseline(frame: pl.DataFrame, y: pl.Series, train_rate: float) -> dict[str, float]:
    """The naive analyst's metrics on ``frame`` with labels ``y`` (module docstring)."""
    churned = (y != ChurnType.RETAINED.value).to_numpy()
    out: dict[str, float] = {}
    constant = np.full(len(churned), train_rate)
    calibration = metrics.binary_metrics(churned, constant, probability=True)
    recency_column = _recency_column(frame)
    if recency_column is not None:
        recency = metrics.recency_baseline(frame[recency_column].to_numpy())
        out.update(metrics.binary_metrics(churned, recency))
        out["auc_voluntary"] = metrics.auc((y == ChurnType.VOLUNTARY.value).to_numpy(), recency)
        out["auc_churned"] = out["auc"]
    out["brier"], out["log_loss"] = calibration["brier"], calibration["log_loss"]
    flag = next((c for c in FAILED_FLAG if c in frame.columns), None)
    if flag is not None:
        failed = metrics.failed_payment_baseline(frame[flag].fill_null(0).to_numpy())
        involuntary = (y == ChurnType.INVOLUNTARY.value).to_numpy()
        out["auc_involuntary"] = metrics.auc(involuntary, failed)
        kinds = y.is_in([ChurnType.VOLUNTARY.value, ChurnType.INVOLUNTARY.value]).to_numpy()
        if kinds.any():
            out["auc_involuntary_vs_voluntary"] = metrics.auc(involuntary[kinds], failed[kinds])
    return out


def _recency_column(frame: pl.DataFrame) -> str | None:
    """Days since the last purchase, or since any event when no one in ``frame`` bought."""
    if RECENCY_DAYS in frame.columns and frame[RECENCY_DAYS].null_count() < frame.height:
        return RECENCY_DAYS
    if SINCE_ANY_EVENT in frame.columns:
        return SINCE_ANY_EVENT
    return RECENCY_DAYS if RECENCY_DAYS in frame.columns else None


def customer_base_scores(
    events: pl.LazyFrame, cutoff: datetime, ids: pl.Series, params: CustomerBaseParams
) -> np.ndarray:
    """P(no purchase in the horizon) per customer in ``ids`` (1 for one who never
    bought: the model expects nothing of them)."""
    summary = purchase_summary(events, cutoff).collect(engine="streaming")
    joined = pl.DataFrame({CUSTOMER_ID: ids}).join(summary, on=CUSTOMER_ID, how="left")
    x = joined[X].to_numpy().astype(np.float64)
    out = np.ones(len(x))
    has = ~np.isnan(x)
    weeks = params.horizon_days / UNIT_DAYS
    out[has] = p_no_purchase(
        params,
        weeks,
        x[has],
        joined[T_X].to_numpy().astype(np.float64)[has],
        joined[AGE].to_numpy().astype(np.float64)[has],
    )
    return out


def customer_base_baseline(y: pl.Series, scores: np.ndarray) -> dict[str, float]:
    churned = (y != ChurnType.RETAINED.value).to_numpy()
    return metrics.binary_metrics(churned, scores, probability=True)


def beats_baselines(
    model_auc: float, baselines: Mapping[str, Mapping[str, float]], margin: float
) -> tuple[bool, str | None]:
    """Whether ``model_auc`` is at least ``margin`` above every baseline's AUC, and the
    best baseline's name when it is not."""
    aucs = {
        name: float(b["auc"])
        for name, b in baselines.items()
        if "auc" in b and np.isfinite(b["auc"])
    }
    if not aucs:
        return True, None
    best = max(aucs, key=lambda name: aucs[name])
    ok = bool(np.isfinite(model_auc)) and model_auc >= aucs[best] + margin
    return ok, None if ok else best


def expected_calibration_error(curve: Sequence[CalibrationBin]) -> float:
    """Customer-weighted mean |predicted - observed| over the calibration bins."""
    total = sum(b.customers for b in curve)
    if total == 0:
        return float("nan")
    return float(sum(b.customers * abs(b.predicted - b.observed) for b in curve) / total)
