"""Gaps between purchases and how overdue the next one is.

Gaps run between distinct purchase times: line items of one order share a time,
so zero gaps are dropped. A single purchase gives no gap (null).
"""

from __future__ import annotations

import polars as pl

from churnkit.features.families.recency import OVERDUE
from churnkit.features.family import Family, Needs
from churnkit.features.keys import PURCHASE_ENTRY, SECOND_UNIT, SORTED_KEYS, pairs
from churnkit.features.names import GAP_CV, GAP_MEDIAN_DAYS, OVERDUE_RATIO, RECENCY_DAYS
from churnkit.features.query import FeatureQuery, ratio
from churnkit.features.spec import Sentence

_e = pl.element()


def build(q: FeatureQuery) -> None:
    q.prepare(
        1, pl.col(SORTED_KEYS).list.eval(_e.filter(PURCHASE_ENTRY) // SECOND_UNIT).alias("_times")
    )
    later, earlier = pairs("_times")
    q.prepare(2, ((later - earlier).list.eval(_e.filter(_e > 0)) / 86_400).alias("_gaps"))
    gaps = pl.col("_gaps")
    q.add(
        q.local(3, gaps.list.median(), "_gap_median"),
        GAP_MEDIAN_DAYS,
        "median days between purchases (null with a single purchase)",
        Sentence("usual gap between purchases {value}", noun="day"),
        unit="days",
    )
    q.add(
        q.local(3, gaps.list.mean(), "_gap_mean"),
        "gap_mean_days",
        "mean days between purchases (null with a single purchase)",
        Sentence("average gap between purchases {value}", noun="day"),
        unit="days",
    )
    q.add(
        q.local(3, gaps.list.std(), "_gap_std"),
        "gap_std_days",
        "standard deviation of days between purchases",
        Sentence("purchase gaps vary by {value}", noun="day"),
        unit="days",
    )
    q.add(
        q.local(3, gaps.list.last(), "_gap_last"),
        "gap_last_days",
        "days between the last two purchases",
        Sentence(
            "last gap between purchases {value}, {times}x the usual {reference}",
            noun="day",
            reference="usual",
            against=GAP_MEDIAN_DAYS,
            alone="last gap between purchases {value}",
        ),
        "high",
        unit="days",
    )
    _derived(q)


def _derived(q: FeatureQuery) -> None:
    """Features read from the gap features (and recency) once those exist."""
    q.add(
        ratio(pl.col("gap_std_days"), pl.col("gap_mean_days")),
        GAP_CV,
        "irregularity of purchase timing (std / mean of gaps)",
        Sentence("gap variation {value}x the mean gap", number=".1f"),
        stage="derived",
        unit="ratio",
    )
    q.add(
        ratio(pl.col(RECENCY_DAYS), pl.col(GAP_MEDIAN_DAYS)),
        OVERDUE_RATIO,
        "days since the last purchase over the usual gap (null with a single purchase)",
        OVERDUE,
        "high",
        stage="derived",
    )


FAMILY = Family(
    name="gaps",
    needs=Needs(),
    produces=(
        GAP_MEDIAN_DAYS,
        "gap_mean_days",
        "gap_std_days",
        "gap_last_days",
        GAP_CV,
        OVERDUE_RATIO,
    ),
    build=build,
    reads=(RECENCY_DAYS,),
)
