"""Per-segment summaries of the segment table: customers, revenue, value, risk and,
when the outcome is known, the observed churn rates, for each dimension."""

from __future__ import annotations

import polars as pl

from churnkit.core.schema import (
    CUSTOMER_TYPE,
    LIFECYCLE_STAGE,
    OBSERVED_CHURN,
    RFM_SEGMENT,
    STRATEGY,
    VALUE_TIER,
    ChurnType,
)

__all__ = ["DIMENSIONS", "summarise"]

# The segment columns summarised, in the order they are shown.
DIMENSIONS = (RFM_SEGMENT, LIFECYCLE_STAGE, CUSTOMER_TYPE, VALUE_TIER, STRATEGY)


def summarise(customers: pl.DataFrame) -> pl.DataFrame:
    """Per dimension and segment: customers, revenue, average value and risk, and the
    observed churn rates when ``observed_churn`` is present (null otherwise)."""
    total_customers = customers.height
    total_revenue = float(customers["monetary"].sum())
    observed = OBSERVED_CHURN in customers.columns
    parts = []
    for dim in DIMENSIONS:
        aggs = [
            pl.len().alias("customers"),
            pl.col("monetary").sum().alias("revenue"),
            pl.col("monetary").mean().alias("average_value"),
            pl.col("risk").mean().alias("average_risk"),
        ]
        if observed:
            churned = pl.col(OBSERVED_CHURN) != ChurnType.RETAINED.value
            aggs += [
                churned.mean().alias("churn_rate"),
                (pl.col(OBSERVED_CHURN) == ChurnType.VOLUNTARY.value)
                .mean()
                .alias("voluntary_rate"),
                (pl.col(OBSERVED_CHURN) == ChurnType.INVOLUNTARY.value)
                .mean()
                .alias("involuntary_rate"),
            ]
        else:
            aggs += [
                pl.lit(None, dtype=pl.Float64).alias(name)
                for name in ("churn_rate", "voluntary_rate", "involuntary_rate")
            ]
        part = (
            customers.group_by(dim)
            .agg(aggs)
            .sort(dim)
            .select(
                pl.lit(dim).alias("dimension"),
                pl.col(dim).cast(pl.String).alias("segment"),
                pl.col("customers").cast(pl.Int64),
                (pl.col("customers") / total_customers).alias("customer_share"),
                pl.col("revenue"),
                (
                    pl.col("revenue") / total_revenue
                    if total_revenue > 0
                    else pl.lit(None, dtype=pl.Float64)
                ).alias("revenue_share"),
                pl.col("average_value"),
                pl.col("average_risk"),
                pl.col("churn_rate").cast(pl.Float64),
                pl.col("voluntary_rate").cast(pl.Float64),
                pl.col("involuntary_rate").cast(pl.Float64),
            )
        )
        parts.append(part)
    return pl.concat(parts, how="vertical")
