"""The month-end statuses of churn health, computed in one pass, equal the plain
definition evaluated one month end at a time (the labels' status rules)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from churnkit.core.schema import CUSTOMER_ID, KIND, KIND_DTYPE, PLAN, TS, EventKind
from churnkit.core.timeline import end_of_day
from churnkit.population import labels
from churnkit.segment.month_ends import month_end_statuses, status_schema

_PURCHASE = pl.col(KIND) == EventKind.PURCHASE.value
_PLAN_CHANGE = pl.col(KIND) == EventKind.PLAN_CHANGE.value


def one_end_at_a_time(
    known: pl.LazyFrame, ends: list[datetime], *, window: int, grace: int, with_plan: bool
) -> pl.DataFrame:
    """The definition, literally: scan the log up to each month end."""
    frames = []
    for i, end in enumerate(ends):
        aggs = labels.status_aggs()
        if with_plan:
            has_plan = (_PURCHASE | _PLAN_CHANGE) & pl.col(PLAN).is_not_null()
            aggs.append(pl.col(PLAN).max_by(pl.when(has_plan).then(pl.col(TS))).alias(PLAN))
        last_purchase, last_cancel = pl.col("_last_purchase"), pl.col("_last_cancel")
        first_open = pl.col("_first_unrecovered")
        cancelled = last_cancel.is_not_null() & (
            last_purchase.is_null() | (last_purchase <= last_cancel)
        )
        recent = (last_purchase > end - timedelta(days=window)).fill_null(False)
        back = (
            known.filter(_PURCHASE & (pl.col(TS) > end) & (pl.col(TS) <= end + timedelta(grace)))
            .select(CUSTOMER_ID)
            .unique()
            .with_columns(pl.lit(True).alias("back"))
        )
        frames.append(
            known.filter(pl.col(TS) <= end)
            .group_by(CUSTOMER_ID)
            .agg(aggs)
            .with_columns(
                pl.lit(i, dtype=pl.Int32).alias("i"),
                (recent & ~labels.ended_expr(end, grace)).alias("active"),
                (
                    first_open.is_not_null()
                    & ~(cancelled & (last_cancel < first_open)).fill_null(False)
                ).alias("involuntary"),
            )
            .join(back, on=CUSTOMER_ID, how="left")
            .with_columns(pl.col("back").fill_null(False))
            .select(list(status_schema(with_plan)))
        )
    return pl.concat(frames).sort("i", CUSTOMER_ID).collect()


KINDS = [
    EventKind.PURCHASE,
    EventKind.PURCHASE,
    EventKind.PURCHASE,
    EventKind.PAYMENT_FAILED,
    EventKind.PAYMENT_FAILED,
    EventKind.CANCEL,
    EventKind.PLAN_CHANGE,
    EventKind.USAGE,
    EventKind.SIGNUP,
]


def random_log(seed: int, customers: int = 60, events: int = 1500) -> pl.LazyFrame:
    """Events on whole days (so same-moment ties are common) over a year and a half."""
    rng = np.random.default_rng(seed)
    start = datetime(2024, 1, 1)
    days = rng.integers(0, 540, events)
    kinds = [KINDS[k].value for k in rng.integers(0, len(KINDS), events)]
    plans = rng.choice(np.array(["basic", "pro", "team", ""], dtype=object), events)
    return (
        pl.DataFrame(
            {
                CUSTOMER_ID: [f"c{c}" for c in rng.integers(0, customers, events)],
                TS: [start + timedelta(days=int(d), hours=int(d % 3) * 8) for d in days],
                KIND: kinds,
                PLAN: [p or None for p in plans],
            },
            schema_overrides={PLAN: pl.String},
        )
        .with_columns(pl.col(KIND).cast(KIND_DTYPE))
        .lazy()
    )


ENDS = [end_of_day(datetime(2024, m, 1) - timedelta(days=1)) for m in range(3, 13)]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("with_plan", [True, False])
def test_one_pass_equals_the_definition_at_every_month_end(seed, with_plan):
    known = random_log(seed)
    window, grace = (45, 5) if seed % 2 else (35, 14)
    got = month_end_statuses(known, ENDS, window=window, grace=grace, with_plan=with_plan)
    want = one_end_at_a_time(known, ENDS, window=window, grace=grace, with_plan=with_plan)
    assert got.height > 0 and got["active"].any() and got["involuntary"].any()
    assert_frame_equal(got, want)


def test_no_month_end_gives_an_empty_frame_with_the_columns():
    got = month_end_statuses(random_log(0), [], window=35, grace=14, with_plan=True)
    assert got.height == 0
    assert got.schema == pl.Schema(status_schema(True))
