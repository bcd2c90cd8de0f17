"""The value × cost-to-serve matrix: which customers pay for the effort they take.

Customers differ in value and in what it costs to keep them. Cost-to-serve is counted
from the events that take effort, over the RFM window before ``as_of`` (the window
``monetary`` covers): refunds, complaints, failed payments (dunning, retries, support)
and discounted purchases, each at a configured cost (``segments.cost_to_serve``).
Customers are split at the medians of ``monetary`` (value: at or above the median is
high) and of cost-to-serve (cost: above the median is high, so customers who cost
nothing are low-cost even when most cost nothing). Each quadrant has a strategy
(``segments.quadrant_strategies``): by default protect the high-value low-cost
customers everyone courts, build where value is high but dear to serve, harvest the
cheap small ones and reshape the dear small ones onto cheaper channels.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from churnkit.core.config import SegmentSettings
from churnkit.core.schema import CUSTOMER_ID, KIND, TS, EventKind
from churnkit.core.timeline import events_until

COST_TO_SERVE = "cost_to_serve"
QUADRANT = "value_cost_quadrant"
QUADRANT_STRATEGY = "quadrant_strategy"
QUADRANTS = (
    "high_value_low_cost",
    "high_value_high_cost",
    "low_value_low_cost",
    "low_value_high_cost",
)
QUADRANT_LABELS = {
    "high_value_low_cost": "high value, low cost",
    "high_value_high_cost": "high value, high cost",
    "low_value_low_cost": "low value, low cost",
    "low_value_high_cost": "low value, high cost",
}


def cost_to_serve(
    events: pl.LazyFrame,
    customers: pl.LazyFrame,
    *,
    as_of: datetime,
    seg: SegmentSettings,
    discount_column: str | None,
) -> pl.LazyFrame:
    """``customer_id, cost_to_serve`` for ``customers`` (a frame with ``customer_id``)."""
    costs = seg.cost_to_serve
    known = events_until(events, as_of)
    if seg.rfm_window is not None:
        known = known.filter(pl.col(TS) > as_of - timedelta(days=seg.rfm_window))
    kind = pl.col(KIND)
    cost = (
        (kind == EventKind.REFUND.value).cast(pl.Float64) * costs.refund
        + (kind == EventKind.COMPLAINT.value).cast(pl.Float64) * costs.complaint
        + (kind == EventKind.PAYMENT_FAILED.value).cast(pl.Float64) * costs.failed_payment
    )
    if discount_column is not None:
        discounted = (kind == EventKind.PURCHASE.value) & (
            pl.col(discount_column).cast(pl.Float64, strict=False).fill_null(0.0) > 0
        )
        cost = cost + discounted.cast(pl.Float64) * costs.discount
    per_customer = (
        known.join(customers.select(CUSTOMER_ID), on=CUSTOMER_ID, how="semi")
        .group_by(CUSTOMER_ID)
        .agg(cost.sum().alias(COST_TO_SERVE))
    )
    return (
        customers.select(CUSTOMER_ID)
        .join(per_customer, on=CUSTOMER_ID, how="left")
        .select(CUSTOMER_ID, pl.col(COST_TO_SERVE).fill_null(0.0))
    )


def with_value_matrix(
    customers: pl.DataFrame,
    events: pl.LazyFrame,
    *,
    as_of: datetime,
    seg: SegmentSettings,
    discount_column: str | None,
) -> pl.DataFrame:
    """``customers`` (the segment table, with ``monetary``) with ``cost_to_serve``,
    ``value_cost_quadrant`` and ``quadrant_strategy`` added."""
    costs = cost_to_serve(
        events, customers.lazy(), as_of=as_of, seg=seg, discount_column=discount_column
    ).collect(engine="in-memory")
    frame = customers.join(costs, on=CUSTOMER_ID, how="left")
    value_median = frame["monetary"].median()
    cost_median = frame[COST_TO_SERVE].median()
    high_value = pl.col("monetary") >= (value_median if value_median is not None else 0.0)
    high_cost = pl.col(COST_TO_SERVE) > (cost_median if cost_median is not None else 0.0)
    quadrant = (
        pl.when(high_value & ~high_cost)
        .then(pl.lit(QUADRANTS[0]))
        .when(high_value)
        .then(pl.lit(QUADRANTS[1]))
        .when(~high_cost)
        .then(pl.lit(QUADRANTS[2]))
        .otherwise(pl.lit(QUADRANTS[3]))
    )
    configured: dict[str, str] = {str(k): str(v) for k, v in seg.quadrant_strategies.items()}
    strategies = {q: configured.get(q, _DEFAULTS[q]) for q in QUADRANTS}
    return frame.with_columns(quadrant.alias(QUADRANT)).with_columns(
        pl.col(QUADRANT).replace_strict(strategies, return_dtype=pl.String).alias(QUADRANT_STRATEGY)
    )


_DEFAULTS = {
    "high_value_low_cost": "protect",
    "high_value_high_cost": "build",
    "low_value_low_cost": "harvest",
    "low_value_high_cost": "reshape",
}


def quadrant_summary(customers: pl.DataFrame) -> pl.DataFrame:
    """Per quadrant: customers, their share, revenue share, average value and
    cost-to-serve, and the strategy; every quadrant listed, in a fixed order."""
    total = customers.height
    revenue = float(customers["monetary"].sum()) if total else 0.0
    grid = pl.DataFrame({QUADRANT: list(QUADRANTS), "_order": list(range(len(QUADRANTS)))})
    parts = customers.group_by(QUADRANT).agg(
        pl.len().cast(pl.Int64).alias("customers"),
        pl.col("monetary").sum().alias("revenue"),
        pl.col("monetary").mean().alias("average_value"),
        pl.col(COST_TO_SERVE).mean().alias("average_cost_to_serve"),
        pl.col(QUADRANT_STRATEGY).first().alias(QUADRANT_STRATEGY),
    )
    return (
        grid.join(parts, on=QUADRANT, how="left")
        .sort("_order")
        .select(
            QUADRANT,
            pl.col("customers").fill_null(0),
            (pl.col("customers").fill_null(0) / max(total, 1)).alias("customer_share"),
            (pl.col("revenue") / revenue if revenue > 0 else pl.lit(None, pl.Float64)).alias(
                "revenue_share"
            ),
            "average_value",
            "average_cost_to_serve",
            QUADRANT_STRATEGY,
        )
    )
