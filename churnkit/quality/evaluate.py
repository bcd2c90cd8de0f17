"""``evaluate``: back-test a saved model at a past as_of and check quality gates.

A failed gate is a result, not an exception: ``GateReport.passed`` is False and the
CLI exits 1. The as_of must have known outcomes (``as_of + horizon + grace`` within
the data) and must not precede the model's own as_of: every outcome the model learned
from lies before its as_of, so a back-test from there on scores it only on the unseen.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from churnkit.core.config import Settings
from churnkit.core.errors import DataError, DriftWarning, UsageError
from churnkit.core.jsonable import finite
from churnkit.core.schema import CHURN_TYPE, CUSTOMER_ID, TS, VALUE, ChurnType
from churnkit.core.timeline import end_of_day, resolve_as_of
from churnkit.features import FeatureLayout
from churnkit.features.snapshot import active_features, as_binary
from churnkit.model import metrics
from churnkit.model.lightgbm import ChurnModel
from churnkit.predict.value import trailing_revenue

Direction = Literal["min", "max"]
# Which way each gate points: "min" fails below the threshold, "max" above it.
GATE_DIRECTIONS: dict[str, Direction] = {
    "auc": "min",
    "pr_auc": "min",
    "lift_top_decile": "min",
    "capture_top_decile": "min",
    "auc_involuntary_vs_voluntary": "min",
    "expected_profit": "min",
    "brier": "max",
    "log_loss": "max",
    "psi": "max",
}


@dataclass(frozen=True)
class GateCheck:
    metric: str
    value: float | None
    threshold: float
    direction: Direction

    @property
    def passed(self) -> bool:
        if self.value is None or not np.isfinite(self.value):
            return False
        if self.direction == "min":
            return self.value >= self.threshold
        return self.value <= self.threshold


@dataclass(frozen=True)
class GateReport:
    model: str
    as_of: datetime
    horizon: int
    customers: int
    churners: dict[str, int]
    metrics: dict[str, float]
    profit: dict[str, float]
    drift: pl.DataFrame  # feature, psi (descending)
    checks: tuple[GateCheck, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        top = self.drift.head(10)
        return {
            "passed": self.passed,
            **{k: finite(v) for k, v in self.metrics.items()},
            "psi_max": finite(self.drift["psi"].max() if self.drift.height else None),
            **{k: finite(v) for k, v in self.profit.items()},
            "model": self.model,
            "as_of": self.as_of.isoformat(),
            "horizon": self.horizon,
            "customers": self.customers,
            "churners": self.churners,
            "gates": [
                {
                    "metric": c.metric,
                    "value": finite(c.value),
                    "threshold": c.threshold,
                    "direction": c.direction,
                    "passed": c.passed,
                }
                for c in self.checks
            ],
            "drift": dict(zip(top["feature"].to_list(), map(finite, top["psi"]), strict=True)),
        }


def parse_gates(pairs: Mapping[str, str], *, flag: str, direction: Direction) -> dict[str, float]:
    """``{"auc": "0.75"}`` from ``--fail-under auc=0.75``; unknown metrics are usage errors."""
    gates: dict[str, float] = {}
    allowed = sorted(m for m, d in GATE_DIRECTIONS.items() if d == direction)
    for metric, raw in pairs.items():
        if metric not in allowed:
            raise UsageError(f"{flag} {metric}=...: unknown metric; allowed: {', '.join(allowed)}")
        try:
            gates[metric] = float(raw)
        except ValueError:
            raise UsageError(f"{flag} {metric}={raw!r}: the threshold must be a number") from None
    return gates


def evaluate(
    events: pl.LazyFrame,
    *,
    settings: Settings,
    model_dir: Path,
    relations: pl.LazyFrame | None = None,
    as_of: datetime | None = None,
    gates: Mapping[str, float] | None = None,
) -> GateReport:
    """Score the customers active at ``as_of`` and compare with what happened next."""
    model = ChurnModel.load(model_dir)
    card = model.card_
    horizon = int(card["horizon"])
    grace = int(card.get("grace_period", settings.labels.grace_period))
    last_event = resolve_as_of(events, None)
    if as_of is None:
        as_of = end_of_day((last_event - timedelta(days=horizon + grace)).date())
    as_of = resolve_as_of(events, as_of)
    known_until = as_of + timedelta(days=horizon + grace)
    if known_until > last_event:
        raise DataError(
            f"outcomes after as-of {as_of:%Y-%m-%d} are not known yet: the {horizon}-day "
            f"horizon plus {grace} days' grace needs data up to {known_until:%Y-%m-%d}, "
            f"the data ends {last_event:%Y-%m-%d}",
            hint="choose an earlier --as-of, or omit it to use the latest possible one",
        )
    trained_until = datetime.fromisoformat(card["as_of"])
    if as_of < trained_until:
        raise UsageError(
            f"model {model_dir.name!r} learned from events up to {trained_until:%Y-%m-%d}; "
            f"a back-test at {as_of:%Y-%m-%d} would score it on outcomes it has seen",
            hint="evaluate at a later --as-of, or train a model with an earlier --as-of "
            "(e.g. `churnkit train --as-of DATE --model backtest`)",
        )
    lab = settings.labels.model_copy(update={"horizon": horizon, "grace_period": grace})
    used = settings.model_copy(update={"labels": lab})
    snap = active_features(
        events.filter(pl.col(TS) <= known_until),
        as_of,
        settings=used,
        relations=relations,
        layout=FeatureLayout.from_dict(card["layout"]),
        with_labels=True,
    )
    model.check_compatible(snap.frame.columns)
    X = snap.frame.select(model.feature_names_)
    y = snap.frame[CHURN_TYPE]
    if model.mode == "binary":
        y = as_binary(y)
    proba = model.predict_proba(X)
    scores = metrics.multiclass_metrics(y.to_numpy(), proba, model.classes_)
    churned = (y != ChurnType.RETAINED.value).to_numpy()
    value = (
        snap.frame.select(CUSTOMER_ID)
        .join(
            trailing_revenue(events, as_of, settings.predict.value_window).collect(),
            on=CUSTOMER_ID,
            how="left",
        )[VALUE]
        .fill_null(0.0)
        .to_numpy()
    )
    profit = metrics.expected_max_profit(
        churned,
        1.0 - proba[:, 0],
        value=value,
        contact_cost=settings.evaluate.contact_cost,
        success_rate=settings.evaluate.success_rate,
    )
    drift = (
        metrics.psi_table(model.profiles_, X)
        .drop_nulls("psi")
        .sort("psi", descending=True, nulls_last=True)
    )
    thresholds = {k: v for k, v in settings.quality_gates.model_dump().items() if v is not None}
    thresholds.update(gates or {})
    observed = {**scores, **profit}
    if drift.height:
        observed["psi"] = float(drift["psi"].max())  # type: ignore[arg-type]
    checks = tuple(
        GateCheck(m, observed.get(m), t, GATE_DIRECTIONS[m]) for m, t in thresholds.items()
    )
    psi_limit = thresholds.get("psi")
    if psi_limit is not None:
        drifted = drift.filter(pl.col("psi") > psi_limit)["feature"].to_list()
        if drifted:
            warnings.warn(
                f"{len(drifted)} features drifted beyond PSI {psi_limit}: "
                + ", ".join(drifted[:5]),
                DriftWarning,
                stacklevel=2,
            )
    counts = y.value_counts()
    return GateReport(
        model=model_dir.name,
        as_of=as_of,
        horizon=horizon,
        customers=snap.frame.height,
        churners={
            str(k): int(v)
            for k, v in zip(counts[CHURN_TYPE], counts["count"], strict=True)
            if k != ChurnType.RETAINED.value
        },
        metrics=scores,
        profit=profit,
        drift=drift,
        checks=checks,
    )
