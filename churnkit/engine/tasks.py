"""Self-contained per-bucket tasks (module-level, so Dask workers import them by name)."""

from __future__ import annotations

import polars as pl

from churnkit.core.schema import CUSTOMER_ID, TS
from churnkit.engine.buckets import BucketSet


def count_events_per_customer(bucket: int, buckets: BucketSet) -> pl.LazyFrame:
    """``customer_id, events, first_ts, last_ts`` for the customers of ``bucket``,
    sorted by customer: the smallest per-customer computation, used to check that
    every engine sees every customer exactly once."""
    return (
        buckets.scan(bucket)
        .group_by(CUSTOMER_ID)
        .agg(
            pl.len().cast(pl.Int64).alias("events"),
            pl.col(TS).min().alias("first_ts"),
            pl.col(TS).max().alias("last_ts"),
        )
        .sort(CUSTOMER_ID)
    )
