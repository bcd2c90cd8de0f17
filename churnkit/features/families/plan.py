"""Current plan, plan changes (downgrades and upgrades by the plans' price rank)
and price increases on the same plan.

Read from each customer's purchase-key and amount lists put in time order; plan
changes ride in the purchase branch when plans are known.
"""

from __future__ import annotations

import polars as pl

from churnkit.core.schema import PLAN, EventKind
from churnkit.features.family import Family, Needs
from churnkit.features.keys import (
    AMOUNTS,
    PURCHASE_BIT,
    PURCHASE_ENTRY,
    PURCHASE_KEYS,
    RANK_ENTRY,
    SORTED_KEYS,
    count,
    mask,
    pairs,
)
from churnkit.features.names import LAST_PRICE_INCREASE_PCT, PRICE_INCREASES
from churnkit.features.query import FeatureQuery
from churnkit.features.spec import Sentence

_e = pl.element()


def build(q: FeatureQuery) -> None:
    names = {rank: plan for plan, rank in q.layout.plan_ranks if rank < PURCHASE_BIT}
    latest = pl.col(PURCHASE_KEYS).list.eval(_e.filter(RANK_ENTRY > 0)).list.max() % PURCHASE_BIT
    q.add(
        q.local(0, latest.replace_strict(names, default=None, return_dtype=pl.String), "_plan"),
        "plan",
        "the customer's current plan (latest plan seen)",
        Sentence("on the {value} plan", reference="category"),
        kind="categorical",
    )
    _steps(q)
    if q.has_kind(EventKind.PLAN_CHANGE):
        _changes(q)
    _increases(q)


def _steps(q: FeatureQuery) -> None:
    """Each purchase-branch row against the one before it, as aligned lists."""
    order = pl.col(PURCHASE_KEYS).list.eval(_e.arg_sort())
    q.prepare(0, pl.col(AMOUNTS).list.gather(order).alias("_seq_amount"))
    key, key_before = pairs(SORTED_KEYS)
    amount, amount_before = pairs("_seq_amount")
    q.prepare(
        1,
        mask(key, PURCHASE_ENTRY).alias("_is_p"),
        mask(key_before, PURCHASE_ENTRY).alias("_was_p"),
        (key.list.eval(RANK_ENTRY) - key_before.list.eval(RANK_ENTRY)).alias("_rank_step"),
        (mask(key, RANK_ENTRY > 0) * mask(key_before, RANK_ENTRY > 0)).alias("_known"),
        (amount - amount_before).alias("_amount_step"),
        mask(amount_before, _e > 0).alias("_paid_before"),
        ((amount / amount_before - 1.0) * 100.0).alias("_amount_pct"),
    )
    # Consecutive purchases on one known plan where the amount went up.
    q.prepare(
        2,
        (
            pl.col("_is_p")
            * pl.col("_was_p")
            * pl.col("_known")
            * mask(pl.col("_rank_step"), _e == 0)
            * pl.col("_paid_before")
            * mask(pl.col("_amount_step"), _e > 0)
        ).alias("_inc"),
    )


def _changes(q: FeatureQuery) -> None:
    """Plan changes, and those between two known plans by the direction of the step."""
    key, _ = pairs(SORTED_KEYS)
    step = pl.col("_rank_step")
    change = mask(key, ~PURCHASE_ENTRY) * pl.col("_known")
    q.add(
        q.local(0, count(PURCHASE_KEYS, ~PURCHASE_ENTRY), "_pc_n"),
        "plan_changes_total",
        "plan changes up to the cutoff",
        Sentence("{value}", noun="plan change"),
    )
    q.add(
        q.local(2, (change * mask(step, _e < 0)).list.sum().fill_null(0.0), "_down"),
        "downgrades_total",
        "plan changes to a cheaper plan",
        Sentence("{value} to a cheaper plan", noun="downgrade"),
        "high",
    )
    q.add(
        q.local(2, (change * mask(step, _e > 0)).list.sum().fill_null(0.0), "_up"),
        "upgrades_total",
        "plan changes to a dearer plan",
        Sentence("{value} to a dearer plan", noun="upgrade"),
        "low",
    )


def _increases(q: FeatureQuery) -> None:
    q.add(
        q.local(3, pl.col("_inc").list.sum().fill_null(0.0), "_increases"),
        PRICE_INCREASES,
        "times the customer paid more than last time on the same plan",
        Sentence("{value} on the same plan", noun="price increase"),
        "high",
    )
    pct = (pl.col("_amount_pct") * pl.col("_inc")).list.eval(_e.filter(_e > 0)).list.last()
    q.add(
        q.local(3, pct, "_last_pct"),
        LAST_PRICE_INCREASE_PCT,
        "size of the latest price increase on the same plan, in percent",
        Sentence("price went up {value}% last time"),
        "high",
    )


FAMILY = Family(
    name="plan",
    needs=Needs(columns=(PLAN,), plan_ranks=True),
    produces=(
        "plan",
        "plan_changes_total",
        "downgrades_total",
        "upgrades_total",
        PRICE_INCREASES,
        LAST_PRICE_INCREASE_PCT,
    ),
    build=build,
)
