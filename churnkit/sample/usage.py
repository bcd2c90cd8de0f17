"""Product usage: weekly counts per customer and event, and the usage export's frames.

Usage follows engagement, so a customer drifting towards a cancel shows it here weeks
before. Each row is dated the Sunday that ends its week: a pre-aggregated row is only
known once its period is over, so dating it at the start would let a mid-week cutoff
see days after it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl

from churnkit.sample.days import Array, to_date
from churnkit.sample.world import Customers, UsageWeek, World, customer_ids, pick

__all__ = ["USAGE_COLUMNS", "USAGE_EVENTS", "empty_usage", "usage_chunks", "weekly_usage"]

USAGE_EVENTS = ("login", "report_run", "export")
USAGE_COLUMNS = ("user_id", "timestamp", "event", "count")


def weekly_usage(
    rng: np.random.Generator,
    usage: list[UsageWeek],
    st: Customers,
    who: Array,
    rate: Array,
    d0: int,
    d7: int,
) -> None:
    """Counts per event for the days of the week ``[d0, d7)`` that each customer in
    ``who`` was signed up and not gone: ``rate`` (weekly, per customer and event)
    scaled by engagement."""
    days = np.minimum(d7, st.end_of[who]).astype(np.int64) - np.maximum(d0, st.signup_day[who])
    keep = days > 0
    who, days = who[keep], np.minimum(days[keep], 7)
    counts = rng.poisson(rate[who] * (np.exp(st.log_e[who]) * days / 7.0)[:, None])
    row, event = np.nonzero(counts)
    if len(row):
        usage.append(
            (
                d0,
                who[row].astype(np.int32),
                event.astype(np.int8),
                counts[row, event].astype(np.int32),
            )
        )


def usage_chunks(world: World) -> Iterator[pl.DataFrame]:
    """The usage export, one frame per complete week."""
    customer = customer_ids(world.n)
    for week_start, cust, event, count in world.usage:
        if week_start + 6 > world.end_day:
            continue  # the export is taken before this week is over
        yield pl.DataFrame(
            {
                "user_id": customer.gather(cust),
                "timestamp": pl.Series([to_date(week_start + 6)]).extend_constant(
                    to_date(week_start + 6), len(cust) - 1
                ),
                "event": pick(USAGE_EVENTS, event),
                "count": count.astype(np.int64),
            }
        )


def empty_usage() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"user_id": pl.String, "timestamp": pl.Date, "event": pl.String, "count": pl.Int64}
    )
