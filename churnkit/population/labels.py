"""Who is active at a cutoff, and how each active customer's next window ends.

The definitions are those of docs/contract.md ("Time"), with the
tie rules it leaves open made explicit:

- a purchase *recovers* a failed payment when it happens at or after the failure
  (a same-timestamp retry in daily exports is a recovery);
- a purchase *undoes* a cancel only when it happens strictly after it (a renewal
  charged the day a customer cancels does not keep them);
- a cancel *precedes* a failure only when strictly earlier.

Data before the cutoff is read through ``timeline.events_until``; the label window
through ``timeline.events_between(cutoff, cutoff + horizon + grace)``. Nothing
after ``cutoff + horizon + grace`` is ever read.

*Activity* is a purchase, except in a log with no purchase at all (a usage export on
its own), where it is a usage row: there a customer is active while they use the
product, and churns when they stop (``business.BusinessEvidence.activity``). Every
function below takes the activity kinds, purchases by default.

Which customers form the population at a cutoff is decided in two phases:
``population_params`` reads all customers once (the business model and the active
window) into a frozen ``PopulationParams``; ``active_customers`` and
``label_window`` then work customer by customer, so any bucket of customers can run
them on its own.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

import polars as pl

from churnkit.core.config import LabelSettings
from churnkit.core.schema import CHURN_TYPE, CUSTOMER_ID, KIND, TS, ChurnType, EventKind
from churnkit.core.timeline import events_between, events_until
from churnkit.population.business import (
    PURCHASE,
    BusinessEvidence,
    Population,
    PopulationParams,
    detect_business,
    resolve_population,
)

logger = logging.getLogger(__name__)

# A monthly subscriber must count as active whatever the quantile says.
MIN_ACTIVE_WINDOW_DAYS = 35

# The label column (schema.CHURN_TYPE) holds these values.
CHURN_TYPE_DTYPE = pl.Enum([t.value for t in ChurnType])

_US_PER_DAY = 86_400_000_000

_FAILED = pl.col(KIND) == EventKind.PAYMENT_FAILED.value
_CANCEL = pl.col(KIND) == EventKind.CANCEL.value


def _is_activity(activity: tuple[str, ...]) -> pl.Expr:
    if activity == PURCHASE:
        return pl.col(KIND) == EventKind.PURCHASE.value
    return pl.col(KIND).is_in(list(activity))


def _deciding(activity: tuple[str, ...]) -> pl.Expr:
    """The kinds the active and churn definitions look at."""
    return _is_activity(activity) | _FAILED | _CANCEL


def _last(cond: pl.Expr) -> pl.Expr:
    return pl.when(cond).then(pl.col(TS)).max()


def median_gap_days(events: pl.LazyFrame, activity: tuple[str, ...] = PURCHASE) -> pl.LazyFrame:
    """Per customer, the median gap in days between distinct purchase timestamps.

    Line items of one order share a timestamp, so gaps of zero are not gaps.
    Customers with fewer than two distinct purchase times get null.
    """
    times = pl.col("_times")
    # Gaps by slicing (vectorised) rather than ``list.diff``.
    gaps = times.list.slice(1) - times.list.head(times.list.len() - 1)
    return (
        events.filter(_is_activity(activity))
        .group_by(CUSTOMER_ID)
        .agg(pl.col(TS).cast(pl.Int64).alias("_times"))
        .with_columns(times.list.unique().list.sort())
        .select(CUSTOMER_ID, (gaps.list.median() / _US_PER_DAY).alias("median_gap_days"))
    )


def active_window_days(
    events: pl.LazyFrame,
    cutoff: datetime,
    settings: LabelSettings,
    activity: tuple[str, ...] = PURCHASE,
) -> int:
    """How recently a customer must have bought to count as active at ``cutoff``.

    ``labels.active_window`` when set; otherwise the ``active_window_quantile`` of
    customers' median inter-purchase gaps before the cutoff, rounded up, and never
    below 35 days so a monthly subscriber is active. When no customer bought twice
    (a one-off shop), the horizon is used instead (still at least 35 days).
    """
    if settings.active_window is not None:
        return settings.active_window
    gaps = median_gap_days(events_until(events, cutoff), activity)
    q = (
        gaps.select(pl.col("median_gap_days").quantile(settings.active_window_quantile, "linear"))
        .collect(engine="streaming")
        .item()
    )
    if q is None:
        window: int = max(MIN_ACTIVE_WINDOW_DAYS, settings.horizon)
        logger.debug("no repeat purchases before %s; active window %d days", cutoff, window)
        return window
    window = max(MIN_ACTIVE_WINDOW_DAYS, math.ceil(float(q)))
    logger.debug("active window %d days (from customers' purchase gaps)", window)
    return window


def status_aggs(activity: tuple[str, ...] = PURCHASE) -> list[pl.Expr]:
    """Per-customer aggregations the "has the customer ended?" test needs.

    ``_first_unrecovered`` is the first failed payment after the last purchase
    (a failure with a purchase at or after it is recovered).
    """
    last_purchase = _last(_is_activity(activity))
    unrecovered = _FAILED & (last_purchase.is_null() | (pl.col(TS) > last_purchase))
    return [
        last_purchase.alias("_last_purchase"),
        _last(_CANCEL).alias("_last_cancel"),
        pl.when(unrecovered).then(pl.col(TS)).min().alias("_first_unrecovered"),
    ]


def ended_expr(cutoff: datetime, grace: int) -> pl.Expr:
    """Over ``status_aggs`` columns: the customer has already left at ``cutoff``.

    Voluntarily (a cancel not followed by a purchase) or involuntarily (a failed
    payment not recovered by a purchase and older than the grace period).
    """
    last_purchase = pl.col("_last_purchase")
    cancelled = pl.col("_last_cancel").is_not_null() & (
        last_purchase.is_null() | (last_purchase <= pl.col("_last_cancel"))
    )
    failed_out = pl.col("_first_unrecovered") < cutoff - timedelta(days=grace)
    return cancelled | failed_out.fill_null(False)


def active_customers(
    events: pl.LazyFrame,
    cutoff: datetime,
    *,
    active_window: int,
    grace: int,
    activity: tuple[str, ...] = PURCHASE,
    population: Population = "active",
) -> pl.LazyFrame:
    """The population at ``cutoff``, one column ``customer_id``: customers seen at or
    before it and not already ended, with a purchase (activity) within
    ``active_window`` days (``population="active"``) or at any time (``"all"``)."""
    last = pl.col("_last_purchase")
    if population == "all":
        recent = last.is_not_null()
    else:
        recent = last > cutoff - timedelta(days=active_window)
    return (
        events_until(events, cutoff)
        # Only these kinds decide; anyone active has a purchase, so nobody is lost.
        .filter(_deciding(activity))
        .group_by(CUSTOMER_ID)
        .agg(status_aggs(activity))
        .filter(recent.fill_null(False) & ~ended_expr(cutoff, grace))
        .select(CUSTOMER_ID)
    )


def population_params(
    events: pl.LazyFrame,
    cutoff: datetime,
    settings: LabelSettings,
    business: BusinessEvidence | None = None,
) -> PopulationParams:
    """The first phase at ``cutoff``: the business model (``business``, else detected
    from the events up to the cutoff), the population it implies under
    ``labels.population``, and the active window, all from every customer."""
    if business is None:
        business = detect_business(events, cutoff, settings)
    return PopulationParams(
        business=business,
        population=resolve_population(business, settings),
        active_window=active_window_days(events, cutoff, settings, business.activity),
    )


def population_at(
    events: pl.LazyFrame, cutoff: datetime, params: PopulationParams, grace: int
) -> pl.LazyFrame:
    """The second phase: ``active_customers`` under ``params`` (bucket-local)."""
    return active_customers(
        events,
        cutoff,
        active_window=params.active_window,
        grace=grace,
        activity=params.activity,
        population=params.population,
    )


def label_window(
    events: pl.LazyFrame,
    cutoff: datetime,
    *,
    horizon: int,
    grace: int,
    active: pl.LazyFrame | None = None,
    activity: tuple[str, ...] = PURCHASE,
) -> pl.LazyFrame:
    """``customer_id, churn_type`` for the population at ``cutoff``.

    The population is ``active`` (a frame with ``customer_id``) when given, else
    every customer seen at or before the cutoff. With ``W = cutoff + horizon`` and
    ``E = W + grace``, and ``P`` the last purchase in ``(cutoff, E]``:

    - involuntary: a failed payment in ``(cutoff, W]`` after ``P`` (no purchase at
      or after it by ``E``), and no cancel after ``P`` strictly before the first such
      failure;
    - voluntary: otherwise, a cancel in ``(cutoff, W]`` not followed by a purchase by
      ``E``, or no purchase in ``(cutoff, W]`` (a lapse) unless a failed payment in
      the window was recovered in the grace period;
    - retained: otherwise.
    """
    window_end = cutoff + timedelta(days=horizon)
    look_end = window_end + timedelta(days=grace)
    in_window = pl.col(TS) <= window_end
    bought = _is_activity(activity)
    last_purchase = _last(bought)
    after_last_purchase = last_purchase.is_null() | (pl.col(TS) > last_purchase)
    outcome = (
        events_between(events, cutoff, look_end)
        .filter(_deciding(activity))
        .group_by(CUSTOMER_ID)
        .agg(
            last_purchase.alias("_p"),
            (bought & in_window).any().alias("_bought"),
            (_FAILED & in_window).any().alias("_failed"),
            pl.when(_FAILED & in_window & after_last_purchase)
            .then(pl.col(TS))
            .min()
            .alias("_fail"),
            # A cancel at the same moment as the last purchase still stands.
            pl.when(_CANCEL & in_window & (last_purchase.is_null() | (pl.col(TS) >= last_purchase)))
            .then(pl.col(TS))
            .min()
            .alias("_cancel"),
        )
    )
    if active is None:
        population = events_until(events, cutoff).select(CUSTOMER_ID).unique()
    else:
        population = active.select(CUSTOMER_ID).unique()
    fail, cancel = pl.col("_fail"), pl.col("_cancel")
    involuntary = fail.is_not_null() & (cancel.is_null() | (cancel >= fail))
    recovered_in_grace = pl.col("_failed") & pl.col("_p").is_not_null()
    lapsed = ~pl.col("_bought") & ~recovered_in_grace
    churn_type = (
        pl.when(involuntary)
        .then(pl.lit(ChurnType.INVOLUNTARY.value))
        .when(cancel.is_not_null() | lapsed)
        .then(pl.lit(ChurnType.VOLUNTARY.value))
        .otherwise(pl.lit(ChurnType.RETAINED.value))
    )
    return (
        population.join(outcome, on=CUSTOMER_ID, how="left")
        .with_columns(
            pl.col("_bought").fill_null(False),
            pl.col("_failed").fill_null(False),
        )
        .select(CUSTOMER_ID, churn_type.cast(CHURN_TYPE_DTYPE).alias(CHURN_TYPE))
    )


def has_failed_payments(events: pl.LazyFrame) -> bool:
    """Whether the data shows any failed payment: decides multiclass vs binary."""
    found = events.select(_FAILED.any()).collect(engine="streaming").item()
    return bool(found)


def labelled_population(
    events: pl.LazyFrame, cutoff: datetime, settings: LabelSettings
) -> pl.LazyFrame:
    """Labels for the population at ``cutoff``, with the configured windows."""
    params = population_params(events, cutoff, settings)
    active = population_at(events, cutoff, params, settings.grace_period)
    return label_window(
        events,
        cutoff,
        horizon=settings.horizon,
        grace=settings.grace_period,
        active=active,
        activity=params.activity,
    )
