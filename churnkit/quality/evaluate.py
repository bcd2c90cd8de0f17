"""``evaluate``: back-test a saved model at a past as_of and check quality gates.

A failed gate is a result, not an exception: ``GateReport.passed`` is False and the
CLI exits 1. The as_of must have known outcomes (``as_of + horizon + grace`` within
the data) and must not precede the model's own as_of: every outcome the model learned
from lies before its as_of, so a back-test from there on scores it only on the unseen.
The customers are scored as ``predict`` scores them (``predict.score``), so a model
trained after the as_of is refused with the same ``ModelError`` (exit 5).
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
from churnkit.core.schema import CHURN_TYPE, TS, VALUE, ChurnType
from churnkit.core.timeline import end_of_day, resolve_as_of
from churnkit.features.snapshot import as_binary
from churnkit.model import metrics
from churnkit.model.card import ModelCard
from churnkit.model.store import load_model
from churnkit.predict.score import population_terms, score_population
from churnkit.predict.value import customer_value

Direction = Literal["min", "max"]
# Which way each gate points: "min" fails below the threshold, "max" above it.
GATE_DIRECTIONS: dict[str, Direction] = {
    "auc": "min",
    "pr_auc": "min",
    "lift_top_decile": "min",
    "capture_top_decile": "min",
    "auc_involuntary_vs_voluntary": "min",
    "expected_profit": "min",
    "beats_baseline": "min",  # 1 when the card says the model beat every baseline
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
    model = load_model(model_dir.parent, model_dir.name)
    as_of, known_until = _backtest_date(events, model.card_, as_of)
    population = score_population(
        events.filter(pl.col(TS) <= known_until),
        model,
        as_of=as_of,
        settings=settings,
        relations=relations,
        with_labels=True,
    )
    y = population.frame[CHURN_TYPE]
    if model.mode == "binary":
        y = as_binary(y)
    scores = metrics.multiclass_metrics(y.to_numpy(), population.proba, model.classes_)
    value = customer_value(
        events,
        as_of,
        population.frame,
        measure="trailing_revenue",
        window=settings.predict.value_window,
        class_counts=model.card_.class_counts,
        horizon=population.horizon,
    )[VALUE].to_numpy()
    profit = metrics.expected_max_profit(
        (y != ChurnType.RETAINED.value).to_numpy(),
        population.p_churn,
        value=value,
        contact_cost=settings.evaluate.contact_cost,
        success_rate=settings.evaluate.success_rate,
    )
    drift = (
        metrics.psi_table(model.card_.profiles, population.features)
        .drop_nulls("psi")
        .sort("psi", descending=True, nulls_last=True)
    )
    counts = y.value_counts()
    return GateReport(
        model=population.name,
        as_of=as_of,
        horizon=population.horizon,
        customers=population.frame.height,
        churners={
            str(k): int(v)
            for k, v in zip(counts[CHURN_TYPE], counts["count"], strict=True)
            if k != ChurnType.RETAINED.value
        },
        metrics=scores,
        profit=profit,
        drift=drift,
        checks=_checks(settings, gates, {**scores, **profit, **_beats(model.card_)}, drift),
    )


def _beats(card: ModelCard) -> dict[str, float]:
    return {} if card.beats_baselines is None else {"beats_baseline": float(card.beats_baselines)}


def _backtest_date(
    events: pl.LazyFrame, card: ModelCard, as_of: datetime | None
) -> tuple[datetime, datetime]:
    """The as_of to back-test at (default: the latest with known outcomes) and the end
    of its outcome window, which must lie within the data."""
    _, horizon, grace = population_terms(card)
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
    return as_of, known_until


def _checks(
    settings: Settings,
    gates: Mapping[str, float] | None,
    observed: dict[str, float],
    drift: pl.DataFrame,
) -> tuple[GateCheck, ...]:
    """One check per gate (the config's ``quality_gates``, overridden by ``gates``);
    features drifted beyond the PSI gate are a ``DriftWarning``."""
    thresholds = {k: v for k, v in settings.quality_gates.model_dump().items() if v is not None}
    thresholds.update(gates or {})
    if drift.height:
        observed = {**observed, "psi": float(drift["psi"].max())}  # type: ignore[arg-type]
    psi_limit = thresholds.get("psi")
    if psi_limit is not None:
        drifted = drift.filter(pl.col("psi") > psi_limit)["feature"].to_list()
        if drifted:
            warnings.warn(
                f"{len(drifted)} features drifted beyond PSI {psi_limit}: "
                + ", ".join(drifted[:5]),
                DriftWarning,
                stacklevel=3,
            )
    return tuple(
        GateCheck(m, observed.get(m), t, GATE_DIRECTIONS[m]) for m, t in thresholds.items()
    )
