"""The per-customer feature frame at a cutoff, computed only from events up to it.

One row per customer seen at or before the cutoff. Features come in families
(``churnkit.features.families``); which ones exist depends on what the data holds
(a ``FeatureLayout``): a family whose event kinds or columns the data lacks is
absent from both the frame and the specs. All families add to one query
(``FeatureQuery``), so the log is still grouped once per branch of event kinds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from churnkit.core.config import FeatureSettings, LabelSettings
from churnkit.core.errors import ConfigError
from churnkit.core.schema import AMOUNT, CUSTOMER_ID, KIND, TS, EventKind, require_columns
from churnkit.core.timeline import naive_utc
from churnkit.features.families import FAMILIES
from churnkit.features.layout import FeatureLayout, feature_layout
from churnkit.features.names import slug
from churnkit.features.query import FeatureQuery, assemble
from churnkit.features.spec import FeatureSpec
from churnkit.population import labels
from churnkit.population.customer_base import CustomerBaseParams, fit_at

# Re-exported for modules that import them from here.
__all__ = [
    "FeatureLayout",
    "FeatureSet",
    "FeatureSpec",
    "build_families",
    "compute_features",
    "feature_layout",
    "slug",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureSet:
    """``frame``: ``customer_id`` plus one column per feature (categorical ones as
    strings); ``specs``: one ``FeatureSpec`` per feature column, in column order;
    ``families``: the features each family that ran added, in the same order."""

    frame: pl.LazyFrame
    specs: dict[str, FeatureSpec]
    layout: FeatureLayout
    families: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def numeric(self) -> list[str]:
        return [n for n, s in self.specs.items() if s.kind == "numeric"]

    @property
    def categorical(self) -> list[str]:
        return [n for n, s in self.specs.items() if s.kind == "categorical"]


def compute_features(
    events: pl.LazyFrame,
    cutoff: datetime,
    *,
    settings: FeatureSettings,
    relations: pl.LazyFrame | None = None,
    active: pl.LazyFrame | None = None,
    layout: FeatureLayout | None = None,
    label_settings: LabelSettings | None = None,
    customer_base: CustomerBaseParams | None = None,
) -> FeatureSet:
    """Features for every customer seen at or before ``cutoff``.

    Families (see ``FAMILIES``): recency, tenure and signup cohort; purchases and
    revenue per window of ``settings.windows`` (``(cutoff - w, cutoff]``, to the
    second) with the window before it and a trend; purchase gaps and the overdue
    ratio; failed payments (windows, reasons, unrecovered, recovered share);
    refunds, complaints, cancels; usage of the top usage events; plan, plan changes
    and price increases; card expiry; configured extra columns; and with
    ``relations`` the network.

    ``layout`` fixes which features exist (default: derived from the events up to
    the cutoff). ``relations`` adds the network features; they need the customers
    active at the cutoff, taken from ``active`` (a ``customer_id`` frame) or else
    derived with ``labels.active_customers`` under ``label_settings``.
    ``customer_base`` holds the BG/NBD parameters; without them they are fitted here
    on ``events`` (a caller running bucket by bucket passes the ones fitted on all).
    """
    cutoff = naive_utc(cutoff)
    bad = [w for w in settings.windows if w < 1]
    if bad:
        raise ConfigError(
            f"setting `features.windows` must hold whole days of at least 1; got {bad}"
        )
    require_columns(events, [CUSTOMER_ID, TS, KIND, AMOUNT], what="the event log")
    if layout is None:
        layout = feature_layout(events, cutoff, settings)
    require_columns(
        events,
        [*layout.columns, *layout.extra_numeric, *layout.extra_categorical],
        what="the event log",
    )
    if relations is not None and active is None:
        active = _active_at(events, cutoff, label_settings or LabelSettings())
    if customer_base is None and EventKind.PURCHASE.value in layout.kinds:
        horizon = (label_settings or LabelSettings()).horizon
        customer_base = fit_at(events, cutoff, horizon)
    schema = events.collect_schema()
    q = FeatureQuery(
        cutoff,
        layout,
        settings,
        schema,
        relations=relations,
        active=active,
        customer_base=customer_base,
    )
    families = build_families(q)
    logger.debug("%d features at cutoff %s", len(q.specs), cutoff)
    return FeatureSet(frame=assemble(q, events), specs=q.specs, layout=layout, families=families)


def build_families(q: FeatureQuery) -> dict[str, tuple[str, ...]]:
    """Run every registered family whose needs ``q``'s layout (and relations) meet,
    in registry order; the names of the features each one added."""
    added: dict[str, tuple[str, ...]] = {}
    for family in FAMILIES:
        if family.needs.met(q.layout, relations=q.relations is not None):
            before = len(q.specs)
            family.build(q)
            added[family.name] = tuple(q.specs)[before:]
    return added


def _active_at(events: pl.LazyFrame, cutoff: datetime, settings: LabelSettings) -> pl.LazyFrame:
    """The customers active at ``cutoff`` by the labels' definition."""
    window = labels.active_window_days(events, cutoff, settings)
    return labels.active_customers(
        events, cutoff, active_window=window, grace=settings.grace_period
    )
