"""What every churn model family offers: the estimator protocol.

Scoring (``predict.score``), driver sentences (``predict.explain``) and the model
store only use these members, so a second family (a customer-base model, a model
trained on another engine) plugs in by implementing them and registering its
``model_type`` with ``churnkit.model.store.register``; nothing downstream changes.

The contract follows scikit-learn's: the constructor stores parameters, ``fit``
learns and returns the estimator, learned state ends in ``_``.

- ``classes_``: ``MULTICLASS`` or ``BINARY`` (``churnkit.model.card``), retained first.
- ``feature_names_``: the feature columns it reads, in its order.
- ``mode``: ``"multiclass"`` or ``"binary"``.
- ``card_``: its ``ModelCard``, once saved or loaded (scoring reads the population
  settings, layout and as_of from it).
- ``predict_proba(X)``: shape ``(n, len(classes_))``, rows summing to 1; extra
  columns of ``X`` are ignored, missing features are a ``ModelError``.
- ``contributions(X)``: shape ``(n, len(classes_), len(feature_names_) + 1)``, each
  feature's push on each class's raw score, the baseline last (see
  ``predict.drivers.risk_contributions``). A family without a natural decomposition
  may return zeros: its customers then get no drivers, not wrong ones.
- ``save(directory, training)``: writes its own file(s) and the card (with the
  training record) and returns the card; ``load(directory, card)`` reads it back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Self

import numpy as np
import numpy.typing as npt
import polars as pl

from churnkit.model.card import Mode, ModelCard, TrainingRecord

FloatArray = npt.NDArray[np.float64]


class Estimator(Protocol):
    """A fitted or loadable churn model (see the module docstring)."""

    classes_: list[str]
    feature_names_: list[str]
    card_: ModelCard

    @property
    def mode(self) -> Mode: ...

    def fit(
        self,
        X: pl.DataFrame,
        y: pl.Series,
        *,
        valid: tuple[pl.DataFrame, pl.Series] | None = None,
    ) -> Self: ...

    def predict_proba(self, X: pl.DataFrame) -> FloatArray: ...

    def contributions(self, X: pl.DataFrame) -> FloatArray: ...

    def save(self, directory: Path, training: TrainingRecord | None = None) -> ModelCard: ...

    @classmethod
    def load(cls, directory: Path, card: ModelCard) -> Self: ...
