"""Each customer's standing at every month end of a churn-health report, in one pass.

At a month end ``e`` a customer seen by then is **active** (bought within the active
window, not ended), **involuntary** (an unrecovered failed payment not preceded by a
cancel), **back** (buys within the grace period after ``e``), and on a **plan**
(their latest plan on a purchase or plan change). These are the definitions of
``churnkit.population.labels`` (``status_aggs`` and ``ended_expr``), evaluated at
every end at once: the grid of (customer, end) pairs is joined "as of" each end
with the customer's purchases, cancels, failures and plans, instead of scanning the
log once per end.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from churnkit.core.schema import CUSTOMER_ID, KIND, PLAN, TS, EventKind
from churnkit.core.timeline import events_until
from churnkit.engine.buckets import BucketSet

_PURCHASE = pl.col(KIND) == EventKind.PURCHASE.value
_FAILED = pl.col(KIND) == EventKind.PAYMENT_FAILED.value
_CANCEL = pl.col(KIND) == EventKind.CANCEL.value
_PLAN_CHANGE = pl.col(KIND) == EventKind.PLAN_CHANGE.value
_END = "_end"
# Stands for "no purchase yet" when looking for the first failure after the last one.
_BEFORE_ALL = datetime(1, 1, 1)


def status_schema(with_plan: bool) -> dict[str, pl.DataType]:
    return {
        CUSTOMER_ID: pl.String(),
        **({PLAN: pl.String()} if with_plan else {}),
        "i": pl.Int32(),
        "active": pl.Boolean(),
        "involuntary": pl.Boolean(),
        "back": pl.Boolean(),
    }


def month_end_statuses(
    known: pl.LazyFrame, ends: list[datetime], *, window: int, grace: int, with_plan: bool
) -> pl.DataFrame:
    """One row per month end (index ``i`` into ``ends``) and customer seen by then:
    ``customer_id, [plan], i, active, involuntary, back``, sorted by ``i`` and customer."""
    if not ends:
        return pl.DataFrame(schema=status_schema(with_plan))
    last_end = ends[-1]
    # Nothing after the last end's grace period can change any status.
    relevant = known.filter(pl.col(TS) <= last_end + timedelta(days=grace))
    end_frame = pl.LazyFrame(
        {"i": range(len(ends)), _END: ends}, schema={"i": pl.Int32, _END: pl.Datetime("us")}
    )
    grid = (
        relevant.filter(pl.col(TS) <= last_end)
        .group_by(CUSTOMER_ID)
        .agg(pl.col(TS).min().alias("_first"))
        .join(end_frame, how="cross")
        .filter(pl.col("_first") <= pl.col(_END))
        .drop("_first")
        .sort(_END)
    )
    purchases = _times(relevant, _PURCHASE, "_last_purchase")
    grid = (
        _as_of(grid, purchases, _END, "backward")
        .pipe(_as_of, _times(relevant, _CANCEL, "_last_cancel"), _END, "backward")
        .pipe(_as_of, purchases.rename({"_last_purchase": "_next_purchase"}), _END, "forward")
    )
    if with_plan:
        plans = (
            relevant.filter((_PURCHASE | _PLAN_CHANGE) & pl.col(PLAN).is_not_null())
            .select(CUSTOMER_ID, pl.col(TS).alias("_plan_ts"), PLAN)
            # At one moment the first row's plan stands (as ``max_by`` picks it).
            .unique([CUSTOMER_ID, "_plan_ts"], keep="first", maintain_order=True)
            .sort("_plan_ts")
        )
        grid = _as_of(grid, plans, _END, "backward")
    # The first failure strictly after the last purchase (a purchase at the same
    # moment recovers it), if it came by the end.
    after = pl.coalesce(pl.col("_last_purchase"), pl.lit(_BEFORE_ALL, dtype=pl.Datetime("us")))
    grid = _as_of(
        grid.with_columns(after.alias("_after")).sort("_after"),
        _times(relevant, _FAILED, "_fail"),
        "_after",
        "forward",
    )
    end = pl.col(_END)
    last_purchase, last_cancel = pl.col("_last_purchase"), pl.col("_last_cancel")
    first_open = pl.when(pl.col("_fail") <= end).then(pl.col("_fail"))
    cancelled = last_cancel.is_not_null() & (
        last_purchase.is_null() | (last_purchase <= last_cancel)
    )
    failed_out = (first_open < end - timedelta(days=grace)).fill_null(False)
    recent = (last_purchase > end - timedelta(days=window)).fill_null(False)
    back = pl.col("_next_purchase") <= end + timedelta(days=grace)
    cancel_first = (cancelled & (last_cancel < first_open)).fill_null(False)
    return (
        grid.select(
            CUSTOMER_ID,
            *([PLAN] if with_plan else []),
            "i",
            (recent & ~(cancelled | failed_out)).alias("active"),
            (first_open.is_not_null() & ~cancel_first).alias("involuntary"),
            back.fill_null(False).alias("back"),
        )
        .sort("i", CUSTOMER_ID)
        .collect(engine="in-memory")
    )


def bucket_statuses(
    bucket: int,
    buckets: BucketSet,
    as_of: datetime,
    ends: list[datetime],
    window: int,
    grace: int,
    with_plan: bool,
) -> pl.DataFrame:
    """The statuses of one bucket's customers: a task for ``engine.map_buckets``."""
    columns = [CUSTOMER_ID, TS, KIND, *([PLAN] if with_plan else [])]
    known = events_until(buckets.scan(bucket), as_of).select(columns)
    return month_end_statuses(known, ends, window=window, grace=grace, with_plan=with_plan)


def _times(events: pl.LazyFrame, kind: pl.Expr, name: str) -> pl.LazyFrame:
    """``customer_id`` and the time of each event of ``kind``, as ``name``, by time."""
    return events.filter(kind).select(CUSTOMER_ID, pl.col(TS).alias(name)).sort(name)


def _as_of(left: pl.LazyFrame, right: pl.LazyFrame, on: str, strategy: str) -> pl.LazyFrame:
    """Per customer, the right row at or before (backward) or strictly after (forward)
    each left row's ``on``; both sides are sorted by time."""
    right_on = right.collect_schema().names()[1]
    return left.join_asof(
        right,
        left_on=on,
        right_on=right_on,
        by=CUSTOMER_ID,
        strategy="backward" if strategy == "backward" else "forward",
        allow_exact_matches=strategy == "backward",
        check_sortedness=False,
    )
