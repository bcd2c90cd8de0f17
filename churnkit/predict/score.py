"""Score the customers active at an as-of with a saved model: the one scoring path.

``predict``, ``evaluate`` and ``segment`` (model risk) all score through
:func:`score_population`, so a model is judged fit to score by the same rules
everywhere:

- **No peeking.** A model that learned from events after ``as_of`` is refused
  (``ModelError``, exit 5): its scores would know what happened next. A model whose
  as_of is the scoring as_of is fine.
- **The model's population.** The active customers and their features are built with
  the model's own horizon, grace period and feature layout (from its card), so they
  have the columns the model learned from.
- **Compatibility.** The model is refused when the data cannot give it the features
  it learned from (a source column, the relations table or a feature setting is
  missing), or when its classes do not fit the data: a multiclass model (voluntary /
  involuntary) on data with no failed payments up to ``as_of`` would call nobody
  involuntary for lack of evidence, not because nobody is; a binary model trained on
  data *without* failed payments, on data that now holds them, would ignore the
  strongest sign of involuntary churn. Retrain in both cases. A binary model trained
  with failed payments in its data (only one churn kind occurred in its labels)
  scores such data as usual. Event kinds the model learned from that the data lacks
  are a ``DriftWarning``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import polars as pl

from churnkit.core.config import Settings
from churnkit.core.errors import DataError, DriftWarning, ModelError, WeakModelWarning
from churnkit.core.schema import KIND, ChurnType, EventKind
from churnkit.core.timeline import events_until
from churnkit.features import FeatureLayout
from churnkit.features.names import NETWORK_FEATURES
from churnkit.features.snapshot import active_features
from churnkit.model.base import Estimator
from churnkit.model.card import RETRAIN_HINT, ModelCard
from churnkit.model.encoding import few

FloatArray = npt.NDArray[np.float64]
BACKTEST_HINT = (
    "use a later --as-of, or train a model with an earlier --as-of "
    "(e.g. `churnkit train --as-of DATE --model backtest`)"
)


@dataclass(frozen=True)
class ScoredPopulation:
    """The customers active at ``as_of`` as the model sees them, and its probabilities.

    ``frame`` holds ``customer_id``, the features (and ``churn_type`` with labels), one
    row per active customer sorted by id; ``proba`` has one row per row of ``frame``
    and one column per ``model.classes_``.
    """

    model: Estimator
    as_of: datetime
    horizon: int
    grace_period: int
    frame: pl.DataFrame
    proba: FloatArray
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.model.card_.name

    @property
    def features(self) -> pl.DataFrame:
        """The model's inputs, in its column order."""
        return self.frame.select(self.model.feature_names_)

    @property
    def p_churn(self) -> FloatArray:
        """``1 - p(retained)`` per row."""
        retained = self.model.classes_.index(ChurnType.RETAINED.value)
        return np.asarray(1.0 - self.proba[:, retained], dtype=np.float64)


def score_population(
    events: pl.LazyFrame,
    model: Estimator,
    *,
    as_of: datetime,
    settings: Settings,
    relations: pl.LazyFrame | None = None,
    with_labels: bool = False,
) -> ScoredPopulation:
    """Score every customer active at ``as_of`` with ``model`` (see the module docstring).

    With ``with_labels`` the frame also holds each customer's ``churn_type`` over the
    model's horizon (``events`` must then reach ``as_of + horizon + grace``).
    """
    card = model.card_
    refuse_if_trained_after(card, as_of)
    layout, horizon, grace = population_terms(card)
    _require_source_columns(events, layout, card.name)
    notes = _check_classes(model, layout, events_until(events, as_of), as_of)
    lab = settings.labels.model_copy(
        update={"horizon": horizon, "grace_period": grace, **_population_of(card)}
    )
    notes += _model_notes(card)
    snap = active_features(
        events,
        as_of,
        settings=settings.model_copy(update={"labels": lab}),
        relations=relations,
        layout=layout,
        with_labels=with_labels,
    )
    frame = snap.frame
    if frame.height == 0:
        raise DataError(
            f"no customer is active at as-of {as_of:%Y-%m-%d}",
            hint="choose an --as-of within the data, or check the active window setting",
        )
    _require_features(model.feature_names_, frame.columns, relations, card.name)
    proba = model.predict_proba(frame.select(model.feature_names_))
    return ScoredPopulation(model, as_of, horizon, grace, frame, proba, tuple(notes))


def _population_of(card: ModelCard) -> dict[str, str]:
    """Score the population the model was trained on (active, or every past buyer)."""
    return {"population": card.population} if card.population in ("active", "all") else {}


def _model_notes(card: ModelCard) -> list[str]:
    """The business model the model was trained for; a warning when it is weak."""
    notes = []
    if card.business_evidence:
        notes.append(f"business model {card.business_evidence}")
    if card.weak:
        message = (
            f"model {card.name!r} was saved with --force although the data could not "
            f"support it ({'; '.join(card.weak_reasons)}): treat its scores with care"
        )
        warnings.warn(message, WeakModelWarning, stacklevel=3)
        notes.append(message)
    return notes


def refuse_if_trained_after(card: ModelCard, as_of: datetime) -> None:
    """The one rule for a model newer than the as-of: refuse it (``ModelError``)."""
    trained = card.as_of
    if trained is None:
        raise ModelError(
            f"model card {card.path} does not record the as-of the model was trained at",
            hint=RETRAIN_HINT,
        )
    if trained > as_of:
        raise ModelError(
            f"model {card.name!r} learned from events up to {trained:%Y-%m-%d}, after as-of "
            f"{as_of:%Y-%m-%d}: its scores would know what happened next",
            hint=BACKTEST_HINT,
        )


def population_terms(card: ModelCard) -> tuple[FeatureLayout, int, int]:
    """The feature layout, horizon and grace period the model was trained with."""
    layout, horizon, grace = card.layout, card.horizon, card.grace_period
    if layout is None or horizon is None or grace is None:
        recorded = {"feature layout": layout, "horizon": horizon, "grace period": grace}
        absent = [what for what, value in recorded.items() if value is None]
        raise ModelError(
            f"model card {card.path} does not record its {' and '.join(absent)}",
            hint=RETRAIN_HINT,
        )
    return layout, horizon, grace


def _require_source_columns(events: pl.LazyFrame, layout: FeatureLayout, name: str) -> None:
    needed = [*layout.columns, *layout.extra_numeric, *layout.extra_categorical]
    present = set(events.collect_schema().names())
    missing = [c for c in needed if c not in present]
    if missing:
        raise ModelError(
            f"model {name!r} was trained on data with the column(s) "
            f"{', '.join(repr(c) for c in missing)}, which the data lacks",
            hint="ingest the source that holds them (mapped with --map), or " + RETRAIN_HINT,
        )


def _check_classes(
    model: Estimator, layout: FeatureLayout, known: pl.LazyFrame, as_of: datetime
) -> list[str]:
    """Refuse a model whose classes do not fit the data (see the module docstring);
    warn about other event kinds the model learned from that the data lacks."""
    kinds = set(
        known.select(pl.col(KIND).cast(pl.String).unique())
        .collect(engine="streaming")
        .to_series()
        .drop_nulls()
        .to_list()
    )
    failed = EventKind.PAYMENT_FAILED.value
    name = model.card_.name
    if model.mode == "multiclass" and failed not in kinds:
        raise ModelError(
            f"model {name!r} tells voluntary from involuntary churn, but the data up to "
            f"{as_of:%Y-%m-%d} holds no failed payments (event kinds: "
            f"{', '.join(sorted(kinds))}): it cannot judge involuntary churn here",
            hint="ingest the billing export with failed payments, or "
            + RETRAIN_HINT
            + " on this data (it will train a binary model)",
        )
    if model.mode == "binary" and failed in kinds and failed not in layout.kinds:
        raise ModelError(
            f"model {name!r} is binary and never saw a failed payment, but the data up to "
            f"{as_of:%Y-%m-%d} holds failed payments: it would ignore them and could not "
            "tell involuntary churn apart",
            hint=RETRAIN_HINT + " on this data (it will split voluntary and involuntary)",
        )
    gone = [k for k in layout.kinds if k not in kinds]
    if not gone:
        return []
    message = (
        f"the data up to {as_of:%Y-%m-%d} holds no {', '.join(gone)} events, which "
        f"model {name!r} learned from: their features are empty for every customer"
    )
    warnings.warn(message, DriftWarning, stacklevel=3)
    return [message]


def _require_features(
    features: list[str], columns: list[str], relations: pl.LazyFrame | None, name: str
) -> None:
    present = set(columns)
    missing = [f for f in features if f not in present]
    if not missing:
        return
    if relations is None and set(NETWORK_FEATURES) & set(missing):
        hint = "ingest the relations table (churnkit ingest --relations FILE), or " + RETRAIN_HINT
    else:
        hint = "score with the feature settings used in training, or " + RETRAIN_HINT
    raise ModelError(
        f"the data lacks {len(missing)} feature(s) model {name!r} was trained on: {few(missing)}",
        hint=hint,
    )


__all__ = [
    "ScoredPopulation",
    "population_terms",
    "refuse_if_trained_after",
    "score_population",
]
