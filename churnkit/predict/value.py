"""What a customer is worth: the money that leaving would cost.

Two measures, chosen by ``predict.value``:

- ``trailing_revenue``: net purchases minus refunds over the last ``value_window``
  days (what the customer brought in over the last year, by default);
- ``expected_remaining``: the customer's monthly revenue run-rate (trailing revenue
  per 30 days) times the expected remaining lifetime in months of a typical retained
  customer, ``1 / monthly churn rate`` of the population, capped at
  ``MAX_LIFETIME_MONTHS``. It ranks like trailing revenue but is in the unit a
  retention budget is set in: the money a saved customer keeps bringing.

The monthly churn rate ``predict`` uses is the model's own: the share of churners
among its training rows (``class_counts`` in the model card), a rate per
``horizon`` days, turned into a 30-day rate by :func:`monthly_churn_rate`,
``m = 1 - (1 - r) ** (30 / horizon)`` (a constant hazard over the horizon). For a
90-day rate of 20% that is 7.2% a month, an expected lifetime of 13.9 months.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Literal

import polars as pl

from churnkit.core.schema import AMOUNT, CUSTOMER_ID, KIND, TS, VALUE, ChurnType, EventKind
from churnkit.core.timeline import events_until

log = logging.getLogger(__name__)

MAX_LIFETIME_MONTHS = 36.0


def customer_value(
    events: pl.LazyFrame,
    as_of: datetime,
    ids: pl.DataFrame,
    *,
    measure: Literal["trailing_revenue", "expected_remaining"],
    window: int,
    class_counts: Mapping[str, int],
    horizon: int,
) -> pl.DataFrame:
    """``customer_id, value`` for every customer of ``ids`` (0 without revenue).

    ``class_counts`` (the model's training rows per class) gives the churn rate per
    ``horizon`` days that ``expected_remaining`` turns into a lifetime.
    """
    revenue = trailing_revenue(events, as_of, window).collect(engine="streaming")
    base = (
        ids.select(CUSTOMER_ID)
        .join(revenue, on=CUSTOMER_ID, how="left")
        .with_columns(pl.col(VALUE).fill_null(0.0))
    )
    if measure == "expected_remaining":
        total = sum(class_counts.values())
        rate = 1.0 - class_counts.get(ChurnType.RETAINED.value, 0) / total if total else 0.0
        monthly = monthly_churn_rate(rate, horizon)
        log.info(
            "value: expected remaining revenue at a monthly churn rate of %.1f%% "
            "(the model's training rate of %.1f%% per %d days)",
            100 * monthly,
            100 * rate,
            horizon,
        )
        base = expected_remaining(base, days=window, monthly_churn_rate=monthly)
    return base.select(CUSTOMER_ID, VALUE)


def trailing_revenue(events: pl.LazyFrame, as_of: datetime, days: int) -> pl.LazyFrame:
    """``customer_id, value``: purchases minus refunds in ``(as_of - days, as_of]``."""
    start = as_of - timedelta(days=days)
    money = pl.col(KIND).is_in([EventKind.PURCHASE.value, EventKind.REFUND.value])
    refund = pl.col(KIND) == EventKind.REFUND.value
    signed = pl.when(refund).then(-pl.col(AMOUNT).abs()).otherwise(pl.col(AMOUNT))
    return (
        events_until(events, as_of)
        .filter(money & (pl.col(TS) > start))
        .group_by(CUSTOMER_ID)
        .agg(signed.sum().clip(lower_bound=0.0).alias(VALUE))
    )


def expected_remaining(
    revenue: pl.DataFrame, *, days: int, monthly_churn_rate: float
) -> pl.DataFrame:
    """Replace trailing revenue by run-rate × expected remaining lifetime (see module).

    The run-rate spreads the revenue over the whole ``days`` window even for customers
    younger than it: annualising a new customer's first big order would value them
    far above what they have shown, so young customers are valued conservatively.
    """
    lifetime = MAX_LIFETIME_MONTHS
    if monthly_churn_rate > 0:
        lifetime = min(MAX_LIFETIME_MONTHS, 1.0 / monthly_churn_rate)
    run_rate = pl.col(VALUE) / (days / 30.0)
    return revenue.with_columns((run_rate * lifetime).alias(VALUE))


def monthly_churn_rate(horizon_rate: float, horizon_days: int) -> float:
    """A churn rate over ``horizon_days`` as a 30-day rate, assuming a constant hazard:
    ``1 - (1 - r) ** (30 / horizon_days)``. Rates are clipped to [0, 1]."""
    if horizon_days < 1:
        raise ValueError(f"horizon_days must be at least 1; got {horizon_days}")
    rate = min(max(horizon_rate, 0.0), 1.0)
    return float(1.0 - (1.0 - rate) ** (30.0 / horizon_days))
