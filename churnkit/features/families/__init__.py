"""The registry of feature families, in column order.

``compute_features`` runs every family whose needs the layout meets, in this
order, so the order fixes the feature columns' order. A family may read features
of families before it (``Family.reads``); the network family joins its ties to
the finished frame, so it comes last.

A new family is a module here with a ``build(q)`` that adds aggregations and
features to the ``FeatureQuery``, and a ``Family`` declaring what it needs and
the names it makes; list it below and give it a case file in
``tests/fixtures/features/``.
"""

from __future__ import annotations

from churnkit.features.families import (
    attributes,
    customer_base,
    failures,
    gaps,
    network,
    plan,
    recency,
    service,
    usage,
)
from churnkit.features.family import Family

FAMILIES: tuple[Family, ...] = (
    recency.FAMILY,
    gaps.FAMILY,
    failures.FAMILY,
    failures.REASONS,
    service.REFUNDS,
    service.COMPLAINTS,
    service.CANCELS,
    usage.FAMILY,
    customer_base.FAMILY,
    plan.FAMILY,
    attributes.CARD,
    attributes.EXTRAS,
    network.FAMILY,
)

__all__ = ["FAMILIES", "Family"]
