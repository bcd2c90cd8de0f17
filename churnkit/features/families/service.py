"""Service events: refunds, complaints (unresolved: no purchase after them) and
past cancellations, each family switched on by its own event kind."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from churnkit.core.schema import AMOUNT, EventKind
from churnkit.features.family import Family, Needs
from churnkit.features.keys import (
    COMPLAINT_ENTRY,
    JUDGED_KEYS,
    after_last_purchase,
    count,
    judged_key_after,
)
from churnkit.features.names import COMPLAINTS_90D, COMPLAINTS_UNRESOLVED
from churnkit.features.query import FeatureQuery, is_kind
from churnkit.features.spec import Sentence

_e = pl.element()


def build_refunds(q: FeatureQuery) -> None:
    is_refund = is_kind(EventKind.REFUND)
    q.other_aggs += [
        is_refund.sum().alias("_r_n"),
        pl.when(is_refund).then(pl.col(AMOUNT).abs()).otherwise(0.0).sum().alias("_r_amt"),
    ]
    q.add(
        pl.col("_r_n").fill_null(0).cast(pl.Float64),
        "refunds_total",
        "refunds up to the cutoff",
        Sentence("{value} in total", noun="refund"),
        "high",
    )
    q.add(
        pl.col("_r_amt").fill_null(0.0),
        "refund_amount_total",
        "amount refunded up to the cutoff",
        Sentence("{value} refunded in total", number=",.2f"),
        "high",
    )


def build_complaints(q: FeatureQuery) -> None:
    """Complaints ride in the failure branch's judged list: a complaint is resolved
    only by a purchase strictly after it."""
    q.judged_keys()
    after = judged_key_after(q.cutoff - timedelta(days=90))
    q.add(
        count(JUDGED_KEYS, COMPLAINT_ENTRY),
        "complaints_total",
        "complaints up to the cutoff",
        Sentence("{value} in total", noun="complaint"),
        "high",
    )
    q.add(
        count(JUDGED_KEYS, COMPLAINT_ENTRY & (_e >= after)),
        COMPLAINTS_90D,
        "complaints in the last 90 days",
        Sentence("{value} in the last 90 days", noun="complaint"),
        "high",
    )
    q.add(
        after_last_purchase(complaints=True),
        COMPLAINTS_UNRESOLVED,
        "complaints not followed by a purchase",
        Sentence("{value} not followed by a purchase", noun="complaint"),
        "high",
    )


def build_cancels(q: FeatureQuery) -> None:
    q.other_aggs.append(is_kind(EventKind.CANCEL).sum().alias("_x_n"))
    q.add(
        pl.col("_x_n").fill_null(0).cast(pl.Float64),
        "cancels_total",
        "cancellations up to the cutoff (later undone by a purchase or not)",
        Sentence("{value}", noun="past cancellation"),
        "high",
    )


REFUNDS = Family(
    name="refunds",
    needs=Needs(kinds=(EventKind.REFUND,)),
    produces=("refunds_total", "refund_amount_total"),
    build=build_refunds,
)
COMPLAINTS = Family(
    name="complaints",
    needs=Needs(kinds=(EventKind.COMPLAINT,)),
    produces=("complaints_total", COMPLAINTS_90D, COMPLAINTS_UNRESOLVED),
    build=build_complaints,
)
CANCELS = Family(
    name="cancels",
    needs=Needs(kinds=(EventKind.CANCEL,)),
    produces=("cancels_total",),
    build=build_cancels,
)
