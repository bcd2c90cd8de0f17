"""``evaluate``: check a saved model against quality gates, for CI and cron jobs.

Two modes, and ``auto`` picks one (the result says which ran):

- **backtest**, when an as-of with known outcomes at or after the model's own as-of
  exists (``as_of + horizon + grace`` within the data): the customers active then are
  scored as ``predict`` scores them (``predict.score``) and compared with what
  happened next. A model trained after that as-of is refused with the same
  ``ModelError`` (exit 5): every outcome it learned from lies before its as-of.
- **validation**, right after training, when no such as-of exists yet: the gates apply
  to the metrics the model card recorded on its out-of-time validation snapshot, and
  the current population (the customers active at the latest as-of) is scored for
  drift and for the label-free performance estimate.

Both modes measure drift of the scored population against the training profiles
(``model.drift``): ``psi`` is the largest per-feature PSI, ``psi_weighted`` the PSI of
each feature weighted by its share of the model's split gain. The default drift gate
is ``psi_weighted``: a feature the model hardly uses may move without the scores
moving. Both modes also estimate the current AUC from the calibrated probabilities
(``quality.estimate``), gated as ``estimated_auc``.

A failed gate is a result, not an exception: ``GateReport.passed`` is False and its
``exit_code`` is 1.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from churnkit.core.config import Settings
from churnkit.core.errors import DataError, DriftWarning, ExitCode, UsageError
from churnkit.core.jsonable import finite
from churnkit.core.schema import CHURN_TYPE, TS, VALUE, ChurnType
from churnkit.core.timeline import end_of_day, resolve_as_of
from churnkit.features.snapshot import as_binary
from churnkit.model import metrics
from churnkit.model.card import ModelCard
from churnkit.model.store import load_model
from churnkit.predict.score import ScoredPopulation, population_terms, score_population
from churnkit.predict.value import customer_value
from churnkit.quality.estimate import PerformanceEstimate, estimate_for_card

Direction = Literal["min", "max"]
Mode = Literal["validation", "backtest"]
ModeChoice = Literal["auto", "validation", "backtest"]
# Which way each gate points: "min" fails below the threshold, "max" above it.
GATE_DIRECTIONS: dict[str, Direction] = {
    "auc": "min",
    "pr_auc": "min",
    "lift_top_decile": "min",
    "capture_top_decile": "min",
    "auc_involuntary_vs_voluntary": "min",
    "expected_profit": "min",
    "estimated_auc": "min",
    "beats_baseline": "min",  # 1 when the card says the model beat every baseline
    "brier": "max",
    "log_loss": "max",
    "psi": "max",
    "psi_weighted": "max",
}
# Features whose own PSI exceeds this are named in a DriftWarning (unless a `psi` gate
# sets another limit): above 0.25 is the usual "shift worth acting on".
DRIFT_WARNING_PSI = 0.25
TOP_DRIFT = 10


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

    @property
    def failure(self) -> str:
        """Why the check failed, in a few words (``auc 0.712 < 0.75``)."""
        if self.value is None or not np.isfinite(self.value):
            return f"{self.metric} not measured"
        sign = "<" if self.direction == "min" else ">"
        return f"{self.metric} {self.value:.4g} {sign} {self.threshold:g}"


@dataclass(frozen=True)
class GateReport:
    """What ``evaluate`` found: the metrics of the mode that ran, drift, the estimate and
    the gates. ``drift`` has ``feature, psi, importance, weighted, binning`` (largest
    PSI first); ``churners`` and ``profit`` are measured in a back-test only."""

    model: str
    mode: Mode
    as_of: datetime
    trained_as_of: datetime | None
    horizon: int
    customers: int
    churners: dict[str, int]
    metrics: dict[str, float]
    profit: dict[str, float]
    drift: pl.DataFrame
    estimate: PerformanceEstimate
    checks: tuple[GateCheck, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.passed else ExitCode.GATE_FAILED

    @property
    def reason(self) -> str:
        """One line: which gates failed, or that all passed."""
        failed = [c.failure for c in self.checks if not c.passed]
        if not failed:
            return "all gates passed" if self.checks else "no gates set"
        return f"{len(failed)} of {len(self.checks)} gates failed: " + "; ".join(failed)

    @property
    def psi_max(self) -> float | None:
        values = self.drift.get_column("psi").drop_nans()
        return float(values.max()) if values.len() else None  # type: ignore[arg-type]

    @property
    def psi_weighted(self) -> float | None:
        return _finite(_weighted(self.drift))

    def to_json(self) -> dict[str, Any]:
        """The verdict first, then every number; metrics and profit also stand at the top
        level, as they did before ``metrics`` and ``profit`` grouped them."""
        measured = {k: finite(v) for k, v in self.metrics.items()}
        profit = {k: finite(v) for k, v in self.profit.items()}
        return {
            "passed": self.passed,
            "exit_code": int(self.exit_code),
            "reason": self.reason,
            "mode": self.mode,
            **measured,
            "psi_max": finite(self.psi_max),
            "psi_weighted": finite(self.psi_weighted),
            "estimated_auc": finite(self.estimate.auc),
            **profit,
            "model": self.model,
            "as_of": self.as_of.isoformat(),
            "trained_as_of": self.trained_as_of.isoformat() if self.trained_as_of else None,
            "horizon": self.horizon,
            "customers": self.customers,
            "churners": self.churners,
            "metrics": measured,
            "profit": profit,
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
            "drift": {
                "psi_max": finite(self.psi_max),
                "psi_weighted": finite(self.psi_weighted),
                "features": [
                    {k: finite(v) if isinstance(v, float) else v for k, v in row.items()}
                    for row in self.drift.head(TOP_DRIFT).iter_rows(named=True)
                ],
            },
            "estimate": self.estimate.to_json(),
            "notes": list(self.notes),
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
    mode: ModeChoice = "auto",
) -> GateReport:
    """Check the model in ``model_dir`` against the gates (see the module docstring).

    ``as_of``: in a back-test, the past date to score (default: the latest with known
    outcomes); in validation mode, the date of the population checked for drift
    (default: the last day of the data)."""
    model = load_model(model_dir.parent, model_dir.name)
    card = model.card_
    chosen = _choose_mode(events, card, as_of) if mode == "auto" else mode
    if chosen == "backtest":
        as_of, known_until = _backtest_date(events, card, as_of)
        population = score_population(
            events.filter(pl.col(TS) <= known_until),
            model,
            as_of=as_of,
            settings=settings,
            relations=relations,
            with_labels=True,
        )
        measured, churners, profit = _backtest(events, population, settings)
    else:
        now = resolve_as_of(events, as_of)
        population = score_population(
            events, model, as_of=now, settings=settings, relations=relations
        )
        measured = {k: float(v) for k, v in card.metrics.items() if v is not None}
        churners, profit = {}, {}
    drift = drift_table(card, population.features)
    estimate = estimate_for_card(population.p_churn, card)
    observed = {
        **measured,
        **profit,
        **_beats(card),
        "estimated_auc": estimate.auc,
        "psi": _finite(drift.get_column("psi").max()),
        "psi_weighted": _finite(_weighted(drift)),
    }
    return GateReport(
        model=population.name,
        mode=chosen,
        as_of=population.as_of,
        trained_as_of=card.as_of,
        horizon=population.horizon,
        customers=population.frame.height,
        churners=churners,
        metrics=measured,
        profit=profit,
        drift=drift,
        estimate=estimate,
        checks=_checks(settings, gates, observed, drift),
        notes=(*population.notes, *_drift_notes(drift)),
    )


def drift_table(card: ModelCard, features: pl.DataFrame) -> pl.DataFrame:
    """PSI of each profiled feature with its importance (share of split gain, over the
    features with a PSI) and ``weighted`` = importance × PSI; largest PSI first."""
    table = metrics.psi_table(card.profiles, features).drop_nulls("psi")
    gain = dict(card.feature_importance) or {
        f.name: f.importance_gain for f in card.features if f.importance_gain is not None
    }
    weights = table.get_column("feature").replace_strict(
        {k: float(v) for k, v in gain.items()}, default=0.0, return_dtype=pl.Float64
    )
    if table.height and float(weights.sum()) <= 0:
        weights = pl.Series([1.0] * table.height)  # no importance recorded: all alike
    share = weights / weights.sum() if table.height else weights
    return (
        table.with_columns(importance=share, weighted=share * pl.col("psi"))
        .select("feature", "psi", "importance", "weighted", "binning")
        .sort(["psi", "feature"], descending=[True, False], nulls_last=True)
    )


def _backtest(
    events: pl.LazyFrame, population: ScoredPopulation, settings: Settings
) -> tuple[dict[str, float], dict[str, int], dict[str, float]]:
    """Metrics, churners by kind and expected profit of a back-tested population."""
    model = population.model
    y = population.frame[CHURN_TYPE]
    if model.mode == "binary":
        y = as_binary(y)
    scores = metrics.multiclass_metrics(y.to_numpy(), population.proba, model.classes_)
    value = customer_value(
        events,
        population.as_of,
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
    counts = y.value_counts()
    churners = {
        str(k): int(v)
        for k, v in zip(counts[CHURN_TYPE], counts["count"], strict=True)
        if k != ChurnType.RETAINED.value
    }
    return scores, churners, profit


def _choose_mode(events: pl.LazyFrame, card: ModelCard, as_of: datetime | None) -> Mode:
    """``backtest`` when the as-of (given, or the latest with known outcomes) has known
    outcomes and does not precede the model's as-of; else ``validation``."""
    _, horizon, grace = population_terms(card)
    last_event = resolve_as_of(events, None)
    target = _latest_known(last_event, card) if as_of is None else as_of
    trained = card.as_of
    known = target + timedelta(days=horizon + grace) <= last_event
    return "backtest" if known and trained is not None and trained <= target else "validation"


def _latest_known(last_event: datetime, card: ModelCard) -> datetime:
    """The latest as-of whose outcomes the data holds. When the model's snapshots all
    fell on its as-of's weekday (weekly steps), the back-test keeps that weekday too,
    so weekly exports are seen at the same point of their week as in training; never
    before the model's own as-of."""
    _, horizon, grace = population_terms(card)
    latest = end_of_day((last_event - timedelta(days=horizon + grace)).date())
    trained = card.as_of
    if (
        trained is None
        or not card.cutoffs
        or any(c.weekday() != trained.weekday() for c in card.cutoffs)
    ):
        return latest
    aligned = latest - timedelta(days=(latest.weekday() - trained.weekday()) % 7)
    return aligned if aligned >= trained else latest


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
        as_of = _latest_known(last_event, card)
    as_of = resolve_as_of(events, as_of)
    known_until = as_of + timedelta(days=horizon + grace)
    if known_until > last_event:
        raise DataError(
            f"outcomes after as-of {as_of:%Y-%m-%d} are not known yet: the {horizon}-day "
            f"horizon plus {grace} days' grace needs data up to {known_until:%Y-%m-%d}, "
            f"the data ends {last_event:%Y-%m-%d}",
            hint="choose an earlier --as-of, omit it to use the latest possible one, or "
            "use --mode validation",
        )
    return as_of, known_until


def _checks(
    settings: Settings,
    gates: Mapping[str, float] | None,
    observed: Mapping[str, float | None],
    drift: pl.DataFrame,
) -> tuple[GateCheck, ...]:
    """One check per gate (the config's ``quality_gates``, overridden by ``gates``);
    features drifted beyond the per-feature limit are a ``DriftWarning``."""
    thresholds = {k: v for k, v in settings.quality_gates.model_dump().items() if v is not None}
    thresholds.update(gates or {})
    limit = thresholds.get("psi", DRIFT_WARNING_PSI)
    drifted = drift.filter(pl.col("psi") > limit)
    if drifted.height:
        named = ", ".join(
            f"{f} (PSI {p:.2f}, importance {w:.0%})"
            for f, p, w in drifted.select("feature", "psi", "importance").head(5).iter_rows()
        )
        warnings.warn(
            f"{drifted.height} features drifted beyond PSI {limit:g}: {named}",
            DriftWarning,
            stacklevel=3,
        )
    return tuple(
        GateCheck(m, observed.get(m), t, GATE_DIRECTIONS[m]) for m, t in thresholds.items()
    )


def _drift_notes(drift: pl.DataFrame) -> list[str]:
    older = drift.filter(pl.col("binning") == "raw").height
    if not older:
        return []
    return [
        f"{older} features have drift profiles from an older churnkit, binned on raw "
        "values: calendar noise in day-valued features can look like drift there; "
        "retrain to bin them by whole days"
    ]


def _weighted(drift: pl.DataFrame) -> float:
    known = drift.filter(pl.col("psi").is_not_nan())
    if known.height == 0:
        return float("nan")
    share = known.get_column("importance")
    total = float(share.sum())
    return float((share * known.get_column("psi")).sum()) / total if total > 0 else float("nan")


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None
