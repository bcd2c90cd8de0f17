"""Stickiness through the customer network: ties to other customers, from the
relations table.

Ties count only when ``since`` is at or before the cutoff (or unknown), in both
directions. Own stickiness ``a = 0.5 · min(1, tenure_days / 365) + 0.5 · m / 3``
where ``m`` is the number of the last three 30-day months with any event;
``network_stickiness = a + coupling · Σ a_j`` over related customers ``j``
active at the cutoff (``a + n·b`` with ``n = features.network_coupling``).
``related_churned`` counts related customers seen before the cutoff who are no
longer active (ended or lapsed).

The ties are joined to the finished feature frame (they need every customer's
own stickiness), so these features come last.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from churnkit.core.schema import CUSTOMER_ID, RELATED_CUSTOMER_ID, SINCE, require_columns
from churnkit.features.family import Family, Needs
from churnkit.features.names import (
    NETWORK_STICKINESS,
    RELATED_ACTIVE,
    RELATED_CHURNED,
    RELATED_CUSTOMERS,
    TENURE_DAYS,
)
from churnkit.features.query import ACTIVE_MONTHS, ACTIVITY_MONTHS, FeatureQuery
from churnkit.features.spec import Sentence

# Own stickiness: half tenure (saturating at a year), half recent activity.
STICKINESS_TENURE_DAYS = 365


def build(q: FeatureQuery) -> None:
    assert q.relations is not None and q.active is not None  # guaranteed by the needs
    require_columns(q.relations, [CUSTOMER_ID, RELATED_CUSTOMER_ID], what="the relations table")
    q.activity = True
    edges = _edges(q.relations, q.cutoff)
    tenure = (pl.col(TENURE_DAYS) / STICKINESS_TENURE_DAYS).clip(0.0, 1.0)
    own = 0.5 * tenure + 0.5 * pl.col(ACTIVE_MONTHS) / ACTIVITY_MONTHS
    active = q.active

    def join_ties(frame: pl.LazyFrame) -> pl.LazyFrame:
        ties = _ties(edges, frame.select(CUSTOMER_ID, own.alias("_a")), active)
        return frame.with_columns(own.alias("_own")).join(
            ties, left_on=CUSTOMER_ID, right_on="_me", how="left"
        )

    q.extend(join_ties)
    _features(q)


def _edges(relations: pl.LazyFrame, cutoff: datetime) -> pl.LazyFrame:
    """Distinct ``(_me, _other)`` pairs, both directions, known at the cutoff."""
    rel = relations
    if SINCE in rel.collect_schema().names():
        since = pl.col(SINCE).cast(pl.Datetime("us"))
        rel = rel.filter(since.is_null() | (since <= cutoff))
    me, other = pl.col(CUSTOMER_ID).cast(pl.String), pl.col(RELATED_CUSTOMER_ID).cast(pl.String)
    return (
        pl.concat(
            [
                rel.select(me.alias("_me"), other.alias("_other")),
                rel.select(other.alias("_me"), me.alias("_other")),
            ]
        )
        .filter(pl.col("_me").is_not_null() & pl.col("_other").is_not_null())
        .filter(pl.col("_me") != pl.col("_other"))
        .unique()
    )


def _ties(edges: pl.LazyFrame, own: pl.LazyFrame, active: pl.LazyFrame) -> pl.LazyFrame:
    """Per customer: ties, active and churned related customers, and the summed
    stickiness of the active ones (``own``: ``customer_id, _a``)."""
    status = own.join(
        active.select(CUSTOMER_ID).unique().with_columns(pl.lit(True).alias("_active")),
        on=CUSTOMER_ID,
        how="left",
    ).with_columns(pl.col("_active").fill_null(False))
    return (
        edges.join(status, left_on="_other", right_on=CUSTOMER_ID, how="left")
        .group_by("_me")
        .agg(
            pl.len().alias("_n"),
            pl.col("_active").fill_null(False).sum().alias("_n_active"),
            (pl.col("_a").is_not_null() & ~pl.col("_active").fill_null(False))
            .sum()
            .alias("_n_churned"),
            pl.when(pl.col("_active")).then(pl.col("_a")).otherwise(0.0).sum().alias("_a_nb"),
        )
    )


def _features(q: FeatureQuery) -> None:
    q.add(
        pl.col("_n").fill_null(0).cast(pl.Float64),
        RELATED_CUSTOMERS,
        "customers tied to this one (referrals, shared accounts, teams)",
        Sentence("{value}", noun="related customer"),
        "low",
        stage="late",
    )
    q.add(
        pl.col("_n_active").fill_null(0).cast(pl.Float64),
        RELATED_ACTIVE,
        "related customers active at the cutoff",
        Sentence("{value} still active", noun="related customer"),
        "low",
        stage="late",
    )
    q.add(
        pl.col("_n_churned").fill_null(0).cast(pl.Float64),
        RELATED_CHURNED,
        "related customers seen before who are no longer active",
        Sentence("{value} who left", noun="related customer"),
        "high",
        stage="late",
    )
    q.add(
        pl.col("_own") + q.settings.network_coupling * pl.col("_a_nb").fill_null(0.0),
        NETWORK_STICKINESS,
        "own stickiness plus coupling × stickiness of active related customers",
        Sentence("network stickiness {value}", number=".2f"),
        "low",
        stage="late",
    )


FAMILY = Family(
    name="network",
    needs=Needs(relations=True),
    produces=(RELATED_CUSTOMERS, RELATED_ACTIVE, RELATED_CHURNED, NETWORK_STICKINESS),
    build=build,
    reads=(TENURE_DAYS,),
)
