"""Per-customer frames at a cutoff: the population, its features and labels.

Training, evaluation, scoring and segmentation all look at customers through
:func:`active_features`, so the population and the feature columns are defined the
same way everywhere.

What needs every customer (the business model, the active window, the BG/NBD
parameters) comes in as frozen parameter objects (``PopulationParams``,
``CustomerBaseParams``); given those, the rest is computed customer by customer. When
they are not given they are computed here from ``events``, which must then be the
whole log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl

from churnkit.core.config import Settings
from churnkit.core.schema import (
    AMOUNT,
    CARD_EXPIRY,
    CHURN_TYPE,
    CUSTOMER_ID,
    EVENT,
    EVENT_SCHEMA,
    KIND,
    PLAN,
    QUANTITY,
    REASON,
    RELATED_CUSTOMER_ID,
    RELATION_KIND,
    RELATIONS_SCHEMA,
    SINCE,
    TRANSACTION_ID,
    TS,
    ChurnType,
    EventKind,
)
from churnkit.features import FeatureLayout, FeatureSet, FeatureSpec, compute_features
from churnkit.population import labels
from churnkit.population.business import PopulationParams
from churnkit.population.customer_base import CustomerBaseParams, fit_at

CUTOFF = "cutoff"


@dataclass(frozen=True)
class Snapshot:
    """One row per active customer at ``cutoff``: ``customer_id``, the features and,
    when the outcome window is known, ``churn_type``."""

    cutoff: datetime
    frame: pl.DataFrame
    specs: dict[str, FeatureSpec]
    layout: FeatureLayout
    population: PopulationParams | None = None
    customer_base: CustomerBaseParams | None = None

    @property
    def features(self) -> list[str]:
        return list(self.specs)

    @property
    def categorical(self) -> list[str]:
        return [n for n, s in self.specs.items() if s.kind == "categorical"]


def active_features(
    events: pl.LazyFrame,
    cutoff: datetime,
    *,
    settings: Settings,
    relations: pl.LazyFrame | None,
    layout: FeatureLayout | None = None,
    with_labels: bool = False,
    population: PopulationParams | None = None,
    customer_base: CustomerBaseParams | None = None,
) -> Snapshot:
    """Features (and optionally labels) of the population at ``cutoff``: the customers
    active there, or every customer who has bought and not ended (``population``)."""
    if population is None:
        population = labels.population_params(events, cutoff, settings.labels)
    if customer_base is None:
        customer_base = fit_at(events, cutoff, settings.labels.horizon)
    active = labels.population_at(events, cutoff, population, settings.labels.grace_period).collect(
        engine="streaming"
    )
    feature_set: FeatureSet = compute_features(
        events,
        cutoff,
        settings=settings.features,
        relations=relations,
        active=active.lazy(),
        layout=layout,
        label_settings=settings.labels,
        customer_base=customer_base,
    )
    frame = active.lazy().join(feature_set.frame, on=CUSTOMER_ID, how="left")
    if with_labels:
        outcome = labels.label_window(
            events,
            cutoff,
            horizon=settings.labels.horizon,
            grace=settings.labels.grace_period,
            active=active.lazy(),
            activity=population.activity,
        ).with_columns(pl.col(CHURN_TYPE).cast(pl.String))
        frame = frame.join(outcome, on=CUSTOMER_ID, how="left")
    # Polars 2.1's streaming engine panics on the network-feature joins here; the
    # in-memory engine is correct and the frame is one row per active customer.
    collected = frame.sort(CUSTOMER_ID).collect(engine="in-memory")
    return Snapshot(
        cutoff, collected, feature_set.specs, feature_set.layout, population, customer_base
    )


def as_binary(churn_type: pl.Series) -> pl.Series:
    """Voluntary and involuntary become ``churned``: the labels of a binary model."""
    return churn_type.replace(
        {
            ChurnType.VOLUNTARY.value: ChurnType.CHURNED.value,
            ChurnType.INVOLUNTARY.value: ChurnType.CHURNED.value,
        }
    )


def feature_vocabulary(settings: Settings, model_features: Sequence[str] = ()) -> list[str]:
    """Every feature name churnkit can produce under these settings, plus the model's.

    A playbook rule may name a feature this data happens to lack (a payment rule on a
    shop without failed payments): it then never fires, which is not a mistake. So
    rules are checked against this vocabulary, computed from a tiny event log that has
    every kind and column (usage events appear as ``usage_any_*``; rules use globs such
    as ``usage_*`` for them), not against one model's features.
    """
    day = datetime(2024, 1, 1)
    kinds = [k.value for k in EventKind]
    n = len(kinds)
    extras = [*settings.features.extra_numeric, *settings.features.extra_categorical]
    events = pl.DataFrame(
        {
            CUSTOMER_ID: ["a"] * n + ["b"] * n,
            TS: [day + timedelta(days=i) for i in range(2 * n)],
            AMOUNT: [10.0] * (2 * n),
            KIND: kinds * 2,
            QUANTITY: [1.0] * (2 * n),
            PLAN: ["basic", "pro"] * n,
            REASON: ["card_expired"] * (2 * n),
            EVENT: ["any"] * (2 * n),
            TRANSACTION_ID: [None] * (2 * n),
            CARD_EXPIRY: [date(2025, 1, 1)] * (2 * n),
            **{c: ["1"] * (2 * n) for c in extras},
        },
        schema_overrides=dict(EVENT_SCHEMA),
    ).lazy()
    relations = pl.DataFrame(
        {CUSTOMER_ID: ["a"], RELATED_CUSTOMER_ID: ["b"], RELATION_KIND: ["referral"], SINCE: [day]},
        schema=RELATIONS_SCHEMA,
    ).lazy()
    cutoff = day + timedelta(days=2 * n)
    specs = compute_features(
        events,
        cutoff,
        settings=settings.features,
        relations=relations,
        active=events.select(CUSTOMER_ID).unique(),
        label_settings=settings.labels,
    ).specs
    return sorted({*specs, *model_features})
