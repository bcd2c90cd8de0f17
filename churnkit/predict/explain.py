"""Who gets drivers, and which: the model's contributions turned into sentences.

Drivers cost ~165x a prediction, so they are computed only for the customers a report
can show: the top ``predict.drivers_top_n`` by value at risk plus every customer in
the highest risk tier. Each driver is a feature that pushes the customer's likelier
churn kind up against staying (binary: the churned log-odds), strongest first, as a
sentence with the customer's values (``predict.drivers``). A feature whose value sits
on the safe side of today's median (``risk_when`` in the card: "card expires in 1,189
days", "0 failed payments") is not offered as a reason even when its push is
positive (``drivers.drop_implausible``). Customers outside that set have null drivers
and a null ``driver_features``; customers inside it whose model output has no
risk-raising feature get an empty list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from churnkit.core.schema import CUSTOMER_ID, DRIVERS, RISK_TIER, VALUE_AT_RISK, ChurnType
from churnkit.model.base import Estimator
from churnkit.model.card import FeatureNote
from churnkit.predict.drivers import (
    CANDIDATES_PER_DRIVER,
    driver_sentences,
    drop_implausible,
    risk_contributions,
    top_drivers,
)

TOP_DRIVERS = len(DRIVERS)


def driver_rows(scored: pl.DataFrame, top_n: int, top_tier: str | None) -> np.ndarray[Any, Any]:
    """Row positions of the customers who get drivers: the top ``top_n`` by value at
    risk (ties by id) and everyone in the top risk tier, in row order."""
    ranked = (
        scored.select(CUSTOMER_ID, VALUE_AT_RISK, RISK_TIER)
        .with_row_index("_pos")
        .sort([VALUE_AT_RISK, CUSTOMER_ID], descending=[True, False])
    )
    picked = ranked.head(top_n)
    if top_tier is not None:
        picked = pl.concat([picked, ranked.filter(pl.col(RISK_TIER) == top_tier)])
    return np.unique(picked["_pos"].to_numpy()).astype(np.intp)


def explain(
    model: Estimator,
    frame: pl.DataFrame,
    rows: np.ndarray[Any, Any],
    kind_index: np.ndarray[Any, Any],
) -> pl.DataFrame:
    """``customer_id, driver_1..3, driver_features`` for the chosen ``rows`` of
    ``frame`` (the scored population); ``kind_index`` is each row's explained class."""
    card = model.card_
    names = model.feature_names_
    chosen = frame[rows]
    contributions = model.contributions(chosen.select(names))
    reference = None if model.mode == "binary" else model.classes_.index(ChurnType.RETAINED.value)
    risk = risk_contributions(contributions, kind_index[rows], reference=reference)
    specs = card.feature_specs
    categorical = {f.name for f in card.features if f.type == "categorical"}
    directions = [
        specs[n].risk_when if n in specs and n not in categorical else None for n in names
    ]
    numeric = [
        pl.col(n).cast(pl.Float64) if d is not None else pl.lit(None, dtype=pl.Float64).alias(n)
        for n, d in zip(names, directions, strict=True)
    ]
    medians = frame.select(e.fill_nan(None).median() for e in numeric).to_numpy()[0]
    values = chosen.select(numeric).to_numpy().astype(np.float64)
    risk = drop_implausible(risk, values, directions, medians.astype(np.float64))
    candidates = top_drivers(risk, TOP_DRIVERS * CANDIDATES_PER_DRIVER)
    described = {f.name: f.description for f in card.features}
    templates = {name: _template(name, specs, described) for name in names}
    said = driver_sentences(chosen, candidates, names, templates, top=TOP_DRIVERS)
    return pl.concat([chosen.select(CUSTOMER_ID), said], how="horizontal")


def _template(name: str, specs: Mapping[str, FeatureNote], described: dict[str, str]) -> str:
    """The feature's sentence; for a card without one, its description and value."""
    spec = specs.get(name)
    if spec is not None and spec.sentence is not None:
        return str(spec.sentence)
    text = described.get(name, name).replace("{", "{{").replace("}", "}}")
    return f"{text}: {{{name}}}"
