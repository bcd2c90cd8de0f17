"""Per-customer lists of packed integers, and the list operations that read them.

Aggregating a list of packed integers once per customer, then deriving counts,
sums, windows and sequences with list operations, costs a fraction of one grouped
aggregation per feature, and the log is never sorted as a whole. Two packings:

purchase key (purchases and plan changes): seconds since 1900, is-purchase, plan
  rank (0: unknown), from high to low bits. Sorting orders a customer's rows by
  time, a plan change before a purchase on the new plan at the same second.
  Windows are therefore resolved to the second (exact for end-of-day cutoffs).
judged key (failed payments and complaints): microseconds since 1970, a reason
  code (0 other, 1 expired card, 2 insufficient funds), is-complaint.

The lists and the values every family shares are columns with the names below;
families read them by these constants.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import polars as pl

from churnkit.core.schema import KIND, PLAN, REASON, TS, EventKind

# Purchase branch: the key and amount lists, the key list in time order, the last
# purchase time, the number of purchases and their revenue.
PURCHASE_KEYS = "_s_key"
AMOUNTS = "_s_amount"
SORTED_KEYS = "_seq_key"
LAST_PURCHASE = "_p_last"
PURCHASES = "_p_n"
REVENUE = "_p_rev"
# Failure branch: failed payments and complaints, judged against the last purchase.
JUDGED_KEYS = "_fc_key"

RANK_BITS = 20
PURCHASE_BIT = 1 << RANK_BITS
SECOND_UNIT = 1 << (RANK_BITS + 1)
JUDGED_UNIT = 8
EPOCH_1900 = datetime(1900, 1, 1)
EPOCH_1970 = datetime(1970, 1, 1)
# Stands for "no purchase yet" when counting events after the last purchase (eight
# times it, subtracted from a judged key, still fits in 64 bits).
_NO_PURCHASE = -(2**59)

_e = pl.element()
_ts = pl.col(TS)
_kind = pl.col(KIND)
_is_purchase = _kind == EventKind.PURCHASE.value
_is_failed = _kind == EventKind.PAYMENT_FAILED.value
_is_complaint = _kind == EventKind.COMPLAINT.value

# What a list element is (read inside ``list.eval``).
PURCHASE_ENTRY = (_e // PURCHASE_BIT) % 2 == 1
RANK_ENTRY = _e % PURCHASE_BIT
FAILURE_ENTRY = _e % 2 == 0
COMPLAINT_ENTRY = _e % 2 == 1
REASON_ENTRY = (_e // 2) % 4


def purchase_key(plan_ranks: Sequence[tuple[str, int]]) -> pl.Expr:
    """The purchase key of a row (plans outside ``plan_ranks`` rank 0)."""
    ranks = {plan: rank for plan, rank in plan_ranks if rank < PURCHASE_BIT}
    rank: pl.Expr = pl.lit(0, dtype=pl.Int64)
    if ranks:
        rank = pl.col(PLAN).replace_strict(ranks, default=0, return_dtype=pl.Int64).fill_null(0)
    seconds = (_ts - pl.lit(EPOCH_1900)).dt.total_seconds()
    return seconds * SECOND_UNIT + _is_purchase.cast(pl.Int64) * PURCHASE_BIT + rank


def purchase_key_after(t: datetime) -> int:
    """The smallest purchase key of an event after ``t`` (to the second)."""
    return ((t - EPOCH_1900) // timedelta(seconds=1) + 1) * SECOND_UNIT


def judged_key(with_reason: bool) -> pl.Expr:
    """The judged key of a row; the reason code is 0 without a reason column."""
    reason = pl.lit(0)
    if with_reason:
        text = pl.col(REASON)
        reason = (
            pl.when(text.str.contains("(?i)expir"))
            .then(1)
            .when(text.str.contains("(?i)insufficient|fund"))
            .then(2)
            .otherwise(0)
        )
    code = pl.when(_is_failed).then(reason.fill_null(0)).otherwise(0).cast(pl.Int64)
    return _ts.cast(pl.Int64) * JUDGED_UNIT + code * 2 + _is_complaint.cast(pl.Int64)


def judged_key_after(t: datetime) -> int:
    """The smallest judged key of an event after ``t``."""
    return ((t - EPOCH_1970) // timedelta(microseconds=1) + 1) * JUDGED_UNIT


def count(lst: str, cond: pl.Expr) -> pl.Expr:
    """Entries of list column ``lst`` meeting ``cond``, as a float."""
    return pl.col(lst).list.eval(cond).list.sum().fill_null(0).cast(pl.Float64)


def amount_where(cond: pl.Expr) -> pl.Expr:
    """Sum of the amounts over the purchase-key entries meeting ``cond``."""
    mask = pl.col(PURCHASE_KEYS).list.eval(cond.cast(pl.Float64))
    return (pl.col(AMOUNTS) * mask).list.sum().fill_null(0.0)


def after_last_purchase(*, complaints: bool) -> pl.Expr:
    """Failed payments after the last purchase (a purchase at or after a failure
    recovers it), or complaints at or after it (unresolved); all of them when the
    customer never bought. Counted on the list, so the failure branch needs no join
    to the purchase branch and both run side by side."""
    last = pl.col(LAST_PURCHASE).cast(pl.Int64).fill_null(_NO_PURCHASE)
    # An entry minus 8·last is 8·(time - last) + low bits.
    counts = (COMPLAINT_ENTRY & (_e >= 0)) if complaints else (FAILURE_ENTRY & (_e >= 8))
    shifted = pl.col(JUDGED_KEYS) - last * JUDGED_UNIT
    return shifted.list.eval(counts).list.sum().fill_null(0).cast(pl.Float64)


def pairs(column: str) -> tuple[pl.Expr, pl.Expr]:
    """Each element of a time-ordered list and the one before it, as two aligned
    lists (slicing is vectorised; ``shift`` inside ``list.eval`` runs list by list)."""
    values = pl.col(column)
    return values.list.slice(1), values.list.head(values.list.len() - 1)


def mask(values: pl.Expr, cond: pl.Expr) -> pl.Expr:
    """1.0 where ``cond`` holds on an element, else 0.0 (null stays null)."""
    return values.list.eval(cond.cast(pl.Float64))
